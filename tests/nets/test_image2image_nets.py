"""The image-to-image networks: shapes, size errors, receptive fields, dropout, the fused op.

Outputs equal to the reference implementation's are proven in test_reference.py; here: every shape
the docstrings and the course notes promise, and the behaviour around them.
"""
import importlib

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, strategies as st
from torch import nn

from minigan import InstanceNormLeakyReLU, receptive_field
from minigan.nets.norm_act import norm_act
from minigan.nets.patchgan import PatchGAN, PoolDiscriminator64
from minigan.nets.resnet_generator import ResnetGenerator
from minigan.nets.unet import PoolUNet64, ToyUNet, UNet256


def shapes_of(net, names, x):
    """{submodule name: output shape} for the named submodules during one forward of x."""
    shapes = {}
    modules = dict(net.named_modules())
    handles = [modules[name].register_forward_hook(
        lambda module, args, out, name=name: shapes.__setitem__(name, tuple(out.shape)))
        for name in names]
    with torch.no_grad():
        net(x)
    for handle in handles:
        handle.remove()
    return shapes


# --- ResNet generator ---------------------------------------------------------------------------

@pytest.mark.parametrize("size", [(64, 64), (128, 128), (256, 256), (64, 128)])
def test_resnet_generator_keeps_the_size(size):
    net = ResnetGenerator(in_channels=3, out_channels=2, ngf=4, n_blocks=2)
    x = torch.randn(1, 3, *size)
    shapes = shapes_of(net, ["stem", "down1", "down2", "blocks", "up1", "up2", "head"], x)
    h, w = size
    assert shapes == {"stem": (1, 4, h, w), "down1": (1, 8, h // 2, w // 2),
                      "down2": (1, 16, h // 4, w // 4), "blocks": (1, 16, h // 4, w // 4),
                      "up1": (1, 8, h // 2, w // 2), "up2": (1, 4, h, w), "head": (1, 2, h, w)}
    out = net(x)
    assert out.shape == (1, 2, h, w) and out.abs().max() <= 1  # tanh


def test_resnet_generator_defaults_are_the_papers():
    net = ResnetGenerator()
    assert len(net.blocks) == 9 and net.stem.out_channels == 64 and net.head.out_channels == 3
    assert net.stem.padding_mode == "reflect" and net.blocks[0].conv1.padding_mode == "reflect"


@given(h=st.integers(1, 40), w=st.integers(1, 40))
def test_resnet_generator_sizes(h, w):
    """Multiples of 4 (>= 8) come back unchanged; every other size is refused, naming it."""
    net = ResnetGenerator(in_channels=1, out_channels=1, ngf=1, n_blocks=1)
    x = torch.randn(1, 1, h, w)
    if h % 4 == 0 and w % 4 == 0 and h >= 8 and w >= 8:
        assert net(x).shape == x.shape
    else:
        with pytest.raises(ValueError, match=f"multiples of 4 .* got {h}x{w}"):
            net(x)


def test_resnet_generator_250_names_the_sizes_that_work():
    with pytest.raises(ValueError, match="got 250x250: resize or crop to e.g. 248x248 or 252x252"):
        ResnetGenerator(ngf=1, n_blocks=1)(torch.randn(1, 3, 250, 250))


def test_resnet_generator_calls_the_fused_op(monkeypatch):
    module = importlib.import_module("minigan.nets.resnet_generator")
    calls = []

    def spy(h, *args, **kwargs):
        calls.append(kwargs.get("negative_slope"))
        return fused(h, *args, **kwargs)

    fused = module.instance_norm_leaky_relu
    monkeypatch.setattr(module, "instance_norm_leaky_relu", spy)
    net = ResnetGenerator(ngf=2, n_blocks=3)
    net(torch.randn(1, 3, 16, 16)).sum().backward()
    assert calls == [0.0] * (5 + 3)  # stem, 2 down, 2 up, one per residual block
    assert all(p.grad is not None for p in net.parameters())


# --- PatchGAN -----------------------------------------------------------------------------------

@pytest.mark.parametrize("n_layers, field", [(1, 16), (3, 70), (5, 286)])
def test_patchgan_receptive_field(n_layers, field):
    assert receptive_field(PatchGAN(ndf=2, n_layers=n_layers)) == field


def test_patchgan_logit_sees_exactly_70x70():
    """The formula, checked on the network: the gradient of one logit is nonzero on 70x70 pixels."""
    torch.manual_seed(0)
    net = PatchGAN(in_channels=1, ndf=2, norm="batch").eval()  # eval: BN acts per pixel
    x = torch.randn(1, 1, 128, 128, requires_grad=True)
    net(x)[0, 0, 6, 6].backward()
    rows, cols = x.grad[0, 0].abs().sum(1).nonzero(), x.grad[0, 0].abs().sum(0).nonzero()
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


@pytest.mark.parametrize("size, out", [(256, 30), (128, 14), (64, 6)])
def test_patchgan_shapes(size, out):
    for in_channels in (3, 6):
        net = PatchGAN(in_channels=in_channels, ndf=4)
        assert net(torch.randn(2, in_channels, size, size)).shape == (2, 1, out, out)


def test_patchgan_channels_and_biases():
    bn = PatchGAN(in_channels=6, ndf=64, n_layers=5, norm="batch")
    convs = [m for m in bn.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 512, 512, 1]  # capped at 8 * ndf
    assert [c.bias is not None for c in convs] == [True] + [False] * 5 + [True]  # none before BN
    inst = PatchGAN(ndf=8, norm="instance")
    assert all(m.bias is not None for m in inst.modules() if isinstance(m, nn.Conv2d))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in inst.modules())


@pytest.mark.parametrize("make, calls", [(lambda: PatchGAN(ndf=4, norm="instance"), 3),
                                         (lambda: UNet256(ngf=2, norm="instance"), 6 + 7)])
def test_instance_norm_nets_use_the_fused_module(make, calls):
    net, seen = make(), []
    for module in net.modules():
        if isinstance(module, InstanceNormLeakyReLU):
            module.register_forward_hook(lambda *args: seen.append(1))
    x = torch.randn(1, 3, 256, 256)
    net(x).mean().backward()
    assert len(seen) == calls
    assert not any(isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d)) for m in net.modules())
    assert all(p.grad is not None for p in net.parameters())


def test_bad_arguments():
    with pytest.raises(ValueError, match="norm must be one of .* got 'group'"):
        PatchGAN(norm="group")
    with pytest.raises(ValueError, match="norm must be one of"):
        UNet256(norm="Batch")
    with pytest.raises(ValueError, match="n_layers must be >= 1, got 0"):
        PatchGAN(n_layers=0)
    assert isinstance(norm_act("none", 4, 0.0), nn.ReLU)


# --- U-Net-256 ----------------------------------------------------------------------------------

def test_unet256_shapes_as_documented():
    net = UNet256(ngf=4)
    names = [f"down.{i}" for i in range(8)] + [f"up.{i}" for i in range(7)] + ["out"]
    shapes = shapes_of(net.eval(), names, torch.randn(1, 3, 256, 256))
    c = [4, 8, 16, 32, 32, 32, 32, 32]  # C64-C128-C256-C512 x 5, divided by 16
    assert [shapes[f"down.{i}"] for i in range(8)] == [(1, c[i], 128 >> i, 128 >> i)
                                                       for i in range(8)]
    assert [shapes[f"up.{i}"] for i in range(7)] == [(1, c[i], 128 >> i, 128 >> i)
                                                     for i in range(7)]
    assert shapes["out"] == (1, 3, 256, 256)
    assert [net.up[i].conv.in_channels for i in range(7)] == [16, 32, 64, 64, 64, 64, 32]


def test_unet256_accepts_multiples_of_256_only():
    net = UNet256(ngf=2).eval()
    assert net(torch.randn(1, 3, 256, 512)).shape == (1, 3, 256, 512)
    for size in (250, 128, 64):
        with pytest.raises(ValueError, match=f"UNet256 needs .* multiples of 256, got {size}x{size}"):
            net(torch.randn(1, 3, size, size))


def test_unet256_dropout_on_in_train_off_in_eval():
    torch.manual_seed(0)
    net = UNet256(ngf=2)
    assert [i for i, up in enumerate(net.up) if isinstance(up.dropout, nn.Dropout)] == [3, 4, 5]
    assert all(up.dropout.p == 0.5 for up in net.up[3:6])
    x = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        assert not torch.equal(net.train()(x), net(x))  # a fresh dropout mask each call
        assert torch.equal(net.eval()(x), net(x))
    net = UNet256(ngf=2, dropout=0.0)  # without dropout: deterministic in training mode too
    assert not any(isinstance(m, nn.Dropout) for m in net.modules())
    with torch.no_grad():
        assert torch.equal(net.train()(x), net(x))


def reference_order_unet(net, x):
    """The reference's own order with torch ops: each level is LReLU -> conv -> IN, then its
    submodule, then ReLU -> convT -> IN; the skip is the level's input (before any activation)."""
    def level(k, x):  # down[k] and its mirror up[k - 1]; k = 7 is the innermost
        h = net.down[k].conv(F.leaky_relu(x, 0.2))
        if k < 7:
            h = level(k + 1, F.instance_norm(h))
        h = F.instance_norm(net.up[k - 1].conv(F.relu(h)))
        return torch.cat([x, h], 1)

    return torch.tanh(net.out(F.relu(level(1, net.down[0].conv(x)))))


def test_unet256_fused_order_equals_the_reference_order():
    """Moving each activation next to its norm (to fuse them) computes the same function."""
    torch.manual_seed(0)
    net = UNet256(ngf=2, norm="instance").eval()
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        torch.testing.assert_close(net(x), reference_order_unet(net, x), atol=1e-5, rtol=0)


# --- The course's small variants ----------------------------------------------------------------

def test_toy_unet_shapes_as_the_slides():
    net = ToyUNet()  # C64-C128-C256 / C128-C64-C3
    shapes = shapes_of(net, ["conv1", "conv2", "conv3", "deconv1", "deconv2", "deconv3"],
                       torch.randn(2, 3, 64, 64))
    assert shapes == {"conv1": (2, 64, 32, 32), "conv2": (2, 128, 16, 16), "conv3": (2, 256, 8, 8),
                      "deconv1": (2, 128, 16, 16), "deconv2": (2, 64, 32, 32),
                      "deconv3": (2, 3, 64, 64)}
    assert net.deconv2.in_channels == 256 and net.deconv3.in_channels == 128  # after the skips
    with pytest.raises(ValueError, match="ToyUNet needs .* multiples of 8, got 60x60"):
        net(torch.randn(1, 3, 60, 60))


def test_pool_unet64_shapes_as_the_notes():
    net = PoolUNet64()
    names = ["enc1", "enc2", "enc3", "enc4", "dec1", "dec2", "dec3", "out"]
    shapes = shapes_of(net, names, torch.randn(16, 3, 64, 64))
    assert [shapes[n] for n in names] == [(16, 32, 64, 64), (16, 64, 16, 16), (16, 128, 8, 8),
                                          (16, 256, 4, 4), (16, 128, 8, 8), (16, 64, 16, 16),
                                          (16, 32, 64, 64), (16, 3, 64, 64)]
    with pytest.raises(ValueError, match="PoolUNet64 needs .* multiples of 16, got 72x72"):
        net(torch.randn(1, 3, 72, 72))


def test_pool_discriminator64_shapes_as_the_notes():
    net = PoolDiscriminator64()
    h = torch.randn(16, 6, 64, 64)  # condition + image
    conv_shapes = []
    with torch.no_grad():
        for layer in net.layers:
            h = layer(h)
            if isinstance(layer, nn.Conv2d):
                conv_shapes.append(tuple(h.shape))
    assert conv_shapes == [(16, 16, 64, 64), (16, 32, 16, 16), (16, 32, 16, 16), (16, 64, 8, 8),
                           (16, 64, 8, 8), (16, 128, 4, 4), (16, 128, 4, 4), (16, 256, 2, 2),
                           (16, 256, 2, 2), (16, 1, 2, 2)]
    with pytest.raises(ValueError, match="PoolDiscriminator64 needs .* multiples of 32 .*got 48x48"):
        net(torch.randn(1, 6, 48, 48))
