"""Torch-native twins of minigan's nets: the same functions built from torch's own layers, as the reference
implementation (junyanz/pytorch-CycleGAN-and-pix2pix) builds them, for `python -m minigan.bench step`.

- `resnet_twin`: the reference's ResnetGenerator, one nn.Sequential of ReflectionPad2d, Conv2d,
  nn.InstanceNorm2d, ReLU, ResnetBlocks and nn.ConvTranspose2d, under the reference's own parameter
  names (so `minigan.nets.reference.to_reference` fills it with a minigan net's weights);
- `torch_twin(net)`: any other net with minigan's layers swapped for torch's -- every
  `minigan.ConvTranspose2d` for an `nn.ConvTranspose2d` and every fused `InstanceNormLeakyReLU` for
  `nn.InstanceNorm2d` then `nn.LeakyReLU` / `nn.ReLU` (the PatchGAN then is the reference's
  conv, norm, LeakyReLU triples; the U-Net and DCGAN keep their structure).

A twin computes the same function from the same weights (tests/bench/test_bench.py checks it), so
the two time the same work and differ only in minigan's layers.

>>> import torch
>>> from minigan.nets import ResnetGenerator
>>> net = ResnetGenerator(ngf=4, n_blocks=1)
>>> x = torch.randn(1, 3, 16, 16)
>>> torch.allclose(twin(net)(x), net(x), atol=1e-5)
True
"""
import copy

from torch import nn

from ..layers.conv_transpose import ConvTranspose2d
from ..layers.instance_norm import InstanceNormLeakyReLU
from ..nets.reference import to_reference
from ..nets.resnet_generator import ResnetGenerator


class ResnetBlock(nn.Module):
    """The reference's residual block: x + conv_block(x), conv_block = pad, conv, IN, ReLU, pad, conv, IN."""

    def __init__(self, dim):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim))

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetTwin(nn.Module):
    """The reference's ResnetGenerator (instance norm, so every conv keeps its bias)."""

    def __init__(self, in_channels=3, out_channels=3, ngf=64, n_blocks=9):
        super().__init__()
        model = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
        for mult in (1, 2):
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1),
                      nn.InstanceNorm2d(ngf * mult * 2), nn.ReLU(True)]
        model += [ResnetBlock(4 * ngf) for _ in range(n_blocks)]
        for mult in (4, 2):
            model += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1),
                      nn.InstanceNorm2d(ngf * mult // 2), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)


def torch_layers(net):
    """A deep copy of `net` with minigan's layers replaced by torch's (same weights)."""
    net = copy.deepcopy(net)
    for name, module in list(net.named_children()):
        if isinstance(module, ConvTranspose2d):
            torch_module = nn.ConvTranspose2d(
                module.in_channels, module.out_channels, module.kernel_size, module.stride, module.padding,
                module.output_padding, module.groups, module.bias is not None, module.dilation,
                device=module.weight.device, dtype=module.weight.dtype)
            torch_module.load_state_dict(module.state_dict())
        elif isinstance(module, InstanceNormLeakyReLU):
            norm = nn.InstanceNorm2d(module.num_features, module.eps, affine=module.affine,
                                     device=module.weight.device if module.affine else None)
            if module.affine:
                norm.load_state_dict(module.state_dict())
            slope = module.negative_slope
            torch_module = nn.Sequential(norm, nn.ReLU() if slope == 0 else nn.LeakyReLU(slope))
        else:
            torch_module = torch_layers(module)
        setattr(net, name, torch_module)
    return net


def twin(net):
    """The torch-native twin of a minigan net, holding the same weights (see the module docstring)."""
    if isinstance(net, ResnetGenerator):
        stem = net.stem
        twin_net = ResnetTwin(stem.in_channels, net.head.out_channels, stem.out_channels, net.n_blocks)
        twin_net.model.load_state_dict({key[len("model."):]: value for key, value in to_reference(net).items()})
        return twin_net.to(stem.weight.device)
    return torch_layers(net)
