"""Instance norm (placeholder: being written)."""


def instance_norm(input, weight=None, bias=None, eps=1e-5):
    raise NotImplementedError


def instance_norm_leaky_relu(input, weight=None, bias=None, negative_slope=0.2, eps=1e-5, impl="auto"):
    raise NotImplementedError


class InstanceNorm2d:
    pass


class InstanceNormLeakyReLU:
    pass
