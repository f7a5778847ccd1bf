"""The MLP GAN and DCGAN networks: the course's layer tables, and equal to the same nets built from torch."""
import pytest
import torch
from torch import nn

import minigan
from minigan import kit
from minigan.nets import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator


def shapes(net, x):
    """The output shape after each layer of net.net."""
    out = []
    for layer in net.net:
        x = layer(x)
        out.append(tuple(x.shape[1:]))
    return out


def test_mlp_layer_tables():
    G, D = MLPGenerator(), MLPDiscriminator()
    assert [m.out_features for m in G.net if isinstance(m, nn.Linear)] == [256, 512, 1024, 784]
    assert [m.out_features for m in D.net if isinstance(m, nn.Linear)] == [2048, 1024, 512, 256, 1]
    assert [m.p for m in D.net if isinstance(m, nn.Dropout)] == [0.3] * 4
    assert all(m.negative_slope == 0.2 for m in [*G.net, *D.net] if isinstance(m, nn.LeakyReLU))
    assert isinstance(G.net[-1], nn.Tanh) and isinstance(D.net[-1], nn.Linear)  # D gives logits
    fake = G(torch.randn(5, 100))
    assert fake.shape == (5, 1, 28, 28) and fake.abs().max() <= 1
    assert D(fake).shape == (5,)


@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_layer_tables(channels):
    G, D = DCGANGenerator(channels=channels), DCGANDiscriminator(channels=channels)
    g_shapes = zip(shapes(G, torch.randn(2, 100, 1, 1)), G.net)
    g_sizes = [s for s, m in g_shapes if isinstance(m, minigan.ConvTranspose2d)]
    assert g_sizes == [(512, 4, 4), (256, 8, 8), (128, 16, 16), (64, 32, 32), (channels, 64, 64)]
    d_sizes = [s for s, m in zip(shapes(D, torch.randn(2, channels, 64, 64)), D.net) if isinstance(m, nn.Conv2d)]
    assert d_sizes == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (1, 1, 1)]
    # the paper's guidelines: our transposed conv in G, BN everywhere but G's output and D's input
    assert not any(type(m) is nn.ConvTranspose2d for m in G.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in G.modules()) == 4
    assert sum(isinstance(m, nn.BatchNorm2d) for m in D.modules()) == 3 and isinstance(D.net[1], nn.LeakyReLU)
    assert isinstance(G.net[-1], nn.Tanh) and isinstance(D.net[-1], nn.Conv2d)
    assert G(torch.randn(2, 100)).shape == G(torch.randn(2, 100, 1, 1)).shape == (2, channels, 64, 64)


def tutorial_generator(nz=100, ngf=64, nc=3):
    """The PyTorch DCGAN tutorial's generator, verbatim but for the names."""
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())


def tutorial_discriminator(ndf=64, nc=3):
    return nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False))  # the tutorial's Sigmoid is in our losses


@pytest.mark.parametrize("width", [8, 64])
def test_dcgan_equals_the_tutorials_nets_forward_and_backward(width):
    torch.manual_seed(0)
    G, D = DCGANGenerator(ngf=width), DCGANDiscriminator(ndf=width)
    G.apply(kit.init_weights), D.apply(kit.init_weights)
    ref_g, ref_d = tutorial_generator(ngf=width), tutorial_discriminator(ndf=width)
    ref_g.load_state_dict(G.net.state_dict())  # same parameter names and shapes, layer for layer
    ref_d.load_state_dict(D.net.state_dict())
    z = torch.randn(3, 100, 1, 1)
    fake, ref_fake = G(z), ref_g(z)
    torch.testing.assert_close(fake, ref_fake, atol=1e-5, rtol=1e-4)
    logits = D(fake)
    torch.testing.assert_close(logits, ref_d(ref_fake).view(-1), atol=1e-4, rtol=1e-4)
    logits.square().sum().backward()
    ref_d(ref_fake).square().sum().backward()
    for (name, p), ref in zip(G.net.named_parameters(), ref_g.parameters()):
        torch.testing.assert_close(p.grad, ref.grad, atol=1e-4, rtol=1e-3, msg=name)
    for (name, p), ref in zip(D.net.named_parameters(), ref_d.parameters()):
        torch.testing.assert_close(p.grad, ref.grad, atol=1e-4, rtol=1e-3, msg=name)


def test_dcgan_init_statistics():
    torch.manual_seed(0)
    G = DCGANGenerator()
    G.apply(kit.init_weights)
    convs = [m.weight for m in G.modules() if isinstance(m, minigan.ConvTranspose2d)]
    w = torch.cat([c.detach().flatten() for c in convs])
    assert abs(w.mean().item()) < 1e-4 and abs(w.std().item() - 0.02) < 2e-4
    scales = torch.cat([m.weight.detach() for m in G.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(scales.mean().item() - 1) < 5e-3 and abs(scales.std().item() - 0.02) < 5e-3


def test_parameter_counts():
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert count(MLPGenerator()) == 100 * 256 + 256 + 256 * 512 + 512 + 512 * 1024 + 1024 + 1024 * 784 + 784
    assert count(DCGANGenerator()) == 3_576_704  # the tutorial's printed G
    assert count(DCGANDiscriminator()) == 2_765_568  # and D
