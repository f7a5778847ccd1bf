"""Normalization then (Leaky)ReLU: the pair every image-to-image network repeats after a conv.

    y = act(norm(x)),   act(v) = v if v >= 0 else negative_slope * v   (negative_slope 0 is ReLU)

`norm` is one of
- "batch":    BatchNorm2d, statistics over (N, H, W) per channel (pix2pix), then the activation;
- "instance": instance norm, statistics over (H, W) per sample and channel, no affine (CycleGAN).
              Norm and activation run as ONE fused op, `minigan.InstanceNormLeakyReLU`: it reads the
              feature map once instead of twice, the hot path of CycleGAN training;
- "none":     the activation alone (the first layer of pix2pix's encoder and discriminator).

Batch norm stays two layers: in training its statistics span the whole batch, which the fused
per-sample kernel does not compute.

>>> import torch
>>> norm_act("batch", 8, 0.2)
Sequential(
  (norm): BatchNorm2d(8, eps=1e-05, momentum=0.1, ...)
  (act): LeakyReLU(negative_slope=0.2)
)
>>> norm_act("none", 8, 0.0)
ReLU()
>>> norm_act("instance", 8, 0.2)(torch.randn(2, 8, 5, 5)).shape
torch.Size([2, 8, 5, 5])
"""
from collections import OrderedDict

from torch import nn

from ..layers.instance_norm import InstanceNormLeakyReLU

NORMS = ("batch", "instance", "none")


def activation(negative_slope):
    """LeakyReLU(negative_slope), or plain ReLU when the slope is 0 (it prints as what it is)."""
    return nn.ReLU() if negative_slope == 0 else nn.LeakyReLU(negative_slope)


def norm_act(norm, channels, negative_slope):
    """The module computing act(norm(x)) for `channels` feature maps; see the module docstring."""
    if norm == "instance":
        # affine=False as in CycleGAN: the conv before it keeps its bias instead.
        return InstanceNormLeakyReLU(channels, negative_slope=negative_slope)
    if norm == "batch":
        # Named children so the parameters read as `...norm.weight`, not `...0.weight`.
        return nn.Sequential(OrderedDict(norm=nn.BatchNorm2d(channels),
                                         act=activation(negative_slope)))
    if norm == "none":
        return activation(negative_slope)
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
