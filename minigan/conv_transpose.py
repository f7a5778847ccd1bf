"""Transposed convolution (placeholder: being written)."""


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    raise NotImplementedError


class ConvTranspose2d:
    pass
