"""Transposed convolution: minigan's fast path (and the matrix view) against F.conv_transpose2d.

    python -m minigan.bench conv [--device cpu|cuda]

The shapes are the generators' upsampling layers: the ResNet generator's decoder (k3 s2 p1 op1 at
batch 1: the CycleGAN CPU recipe's and the paper's), the U-Net's (k4 s2 p1, batch 1) and DCGAN's (k4
s2 p1 at batch 64). minigan's fast path is timed in both its forms, stamps and sub-pixel (the
module docstring of `minigan.layers.conv_transpose`); the ratio is the form it picks for the shape
("auto": stamps at batch 1) over torch. Each implementation is timed in turn, the round repeated
and the best round kept, so that a busy machine hurts every column alike.
"""
import functools

import torch
import torch.nn.functional as F

from . import forward_and_backward_times
from ..layers.conv_transpose import conv_transpose2d, conv_transpose2d_matrix, fast_form

# (input shape, out_channels, kernel, stride, padding, output_padding)
SHAPES = [((1, 64, 16, 16), 32, 3, 2, 1, 1),
          ((1, 32, 32, 32), 16, 3, 2, 1, 1),
          ((1, 256, 64, 64), 128, 3, 2, 1, 1),
          ((1, 128, 128, 128), 64, 3, 2, 1, 1),
          ((1, 1024, 2, 2), 512, 4, 2, 1, 0),
          ((1, 1024, 8, 8), 512, 4, 2, 1, 0),
          ((1, 256, 64, 64), 64, 4, 2, 1, 0),
          ((64, 512, 4, 4), 256, 4, 2, 1, 0),
          ((64, 128, 16, 16), 64, 4, 2, 1, 0)]
IMPLS = {"torch": F.conv_transpose2d, "stamps": functools.partial(conv_transpose2d, form="stamps"),
         "subpixel": functools.partial(conv_transpose2d, form="subpixel"), "matrix": conv_transpose2d_matrix}


def measure(shape, out_channels, kernel, stride, padding, output_padding, device, rounds=3):
    """{impl: (forward seconds, forward+backward seconds)}, best of `rounds` interleaved rounds."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen).to(device).requires_grad_()
    weight = (0.02 * torch.randn(shape[1], out_channels, kernel, kernel, generator=gen)).to(device)
    weight.requires_grad_()
    bias = torch.zeros(out_channels, device=device, requires_grad=True)
    best = {}
    for _ in range(rounds):
        for name, conv in IMPLS.items():
            def fn(x, weight, bias, conv=conv):
                return conv(x, weight, bias, stride, padding, output_padding)
            forward, both = forward_and_backward_times(fn, x, weight, bias, device=device)
            old = best.get(name, (float("inf"),) * 2)
            best[name] = (min(old[0], forward), min(old[1], both))
    return best


def main(device):
    print(f"transposed convolution on {device} ({torch.get_num_threads()} threads): milliseconds, "
          "best of 3 rounds; ratio = minigan (the form it picks: stamps at batch 1) / torch")
    head = (f"{'input -> out, kernel':34} {'':6}" + "".join(f"{name:>9}" for name in IMPLS)
            + f"{'ratio':>8}")
    print(head)
    for shape, out_channels, kernel, stride, padding, output_padding in SHAPES:
        best = measure(shape, out_channels, kernel, stride, padding, output_padding, device)
        label = (f"{tuple(shape)} -> {out_channels} k{kernel} s{stride} p{padding}"
                 + (f" op{output_padding}" if output_padding else ""))
        for i, what in enumerate(["fwd", "fwd+bwd"]):
            times = "".join(f"{1e3 * best[name][i]:9.2f}" for name in IMPLS)
            ratio = best[fast_form(shape[0])][i] / best["torch"][i]
            print(f"{label if i == 0 else '':34} {what:6}{times}{ratio:8.2f}")
