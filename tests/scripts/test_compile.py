"""--compile: every script's nets compile as one graph each (no graph break through minigan's layers),
and a few training steps of the compiled nets give the eager losses up to float32 rounding."""
import copy
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from minigan import kit
from minigan.kit.image_pool import ImagePool
from minigan.nets import (DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator, PatchGAN,
                          ResnetGenerator, UNet256)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the scripts live at the top of the repository
import train_cyclegan, train_dcgan, train_mnist, train_pix2pix  # noqa: E402,E401

# (net, input) for each script's nets at small widths: G and D of the MLP GAN, DCGAN, pix2pix, CycleGAN
NETS = {
    "mnist G": lambda: (MLPGenerator(100), torch.randn(4, 100)),
    "mnist D": lambda: (MLPDiscriminator(), torch.randn(4, 1, 28, 28)),
    "dcgan G": lambda: (DCGANGenerator(100, 8, 3), torch.randn(2, 100)),
    "dcgan D": lambda: (DCGANDiscriminator(8, 3), torch.randn(2, 3, 64, 64)),
    "pix2pix G": lambda: (UNet256(ngf=4), torch.randn(1, 3, 256, 256)),
    "pix2pix D": lambda: (PatchGAN(6, 8, 3, "batch"), torch.randn(1, 6, 64, 64)),
    "cyclegan G": lambda: (ResnetGenerator(ngf=4, n_blocks=2), torch.randn(1, 3, 32, 32)),
    "cyclegan D": lambda: (PatchGAN(3, 8, 3, norm="instance"), torch.randn(1, 3, 32, 32)),
}


@pytest.mark.parametrize("name", NETS)
def test_each_net_is_one_graph(name):
    # fullgraph=True raises at the first graph break. The "aot_eager" backend traces exactly what
    # Inductor would be given (forward and the backward of every op, ours included) without
    # generating code, so this stays quick.
    torch._dynamo.reset()
    torch.manual_seed(0)
    net, x = NETS[name]()
    compiled = torch.compile(copy.deepcopy(net), fullgraph=True, backend="aot_eager")
    outputs = []
    for model in (net, compiled):
        torch.manual_seed(1)                       # the same dropout masks
        outputs.append(model(x))
        outputs[-1].square().mean().backward()
    torch.testing.assert_close(outputs[1], outputs[0], atol=1e-5, rtol=1e-4)
    for (key, p), (_, q) in zip(net.named_parameters(), compiled.named_parameters()):
        torch.testing.assert_close(q.grad, p.grad, atol=1e-5, rtol=1e-4, msg=key)


def losses_of(steps, backend, make, step):
    """The losses of `steps` training steps, nets compiled by kit.compile_nets (backend None: eager)."""
    torch.manual_seed(0)
    nets, optimizers, batches, extra = make()
    kit.compile_nets(SimpleNamespace(compile=backend is not None), *nets)
    for net in nets if backend not in (None, "inductor") else ():
        net.compile(backend=backend)            # the same in-place compile, another backend
    torch.manual_seed(1)
    return [{k: float(v) for k, v in step(*nets, *optimizers, *batch, *extra).items()}
            for batch in batches[:steps]]


def adam(*nets):
    return [torch.optim.Adam([p for net in nets for p in net.parameters()], lr=2e-4, betas=(0.5, 0.999))]


def cyclegan():
    G_AB, G_BA = ResnetGenerator(ngf=4, n_blocks=1), ResnetGenerator(ngf=4, n_blocks=1)
    D_A, D_B = PatchGAN(3, 8, 2, norm="instance"), PatchGAN(3, 8, 2, norm="instance")
    batches = [(torch.randn(1, 3, 16, 16), torch.randn(1, 3, 16, 16)) for _ in range(3)]
    return ((G_AB, G_BA, D_A, D_B), adam(G_AB, G_BA) + adam(D_A, D_B), batches,
            (ImagePool(50), ImagePool(50)))


def cyclegan_step(G_AB, G_BA, D_A, D_B, opt_g, opt_d, real_a, real_b, pool_a, pool_b):
    args = SimpleNamespace(gan_loss="lsgan", lambda_cycle=10.0, lambda_identity=0.5)
    return train_cyclegan.train_step(G_AB, G_BA, D_A, D_B, opt_g, opt_d, pool_a, pool_b, real_a, real_b, args)


def dcgan():
    G, D = DCGANGenerator(100, 4, 1), DCGANDiscriminator(4, 1)
    batches = [(torch.randn(4, 1, 64, 64), torch.randn(4, 100)) for _ in range(3)]
    return (G, D), adam(G) + adam(D), batches, ()


def pix2pix():
    G, D = UNet256(ngf=2), PatchGAN(6, 4, 3, "batch")
    batches = [(torch.randn(1, 3, 256, 256), torch.randn(1, 3, 256, 256)) for _ in range(3)]
    return (G, D), adam(G) + adam(D), batches, (SimpleNamespace(loss="gan+l1", lambda_l1=100.0),)


def mnist():
    G, D = MLPGenerator(100), MLPDiscriminator()
    batches = [(torch.randn(8, 1, 28, 28), torch.randn(8, 100)) for _ in range(3)]
    return (G, D), adam(G) + adam(D), batches, (SimpleNamespace(loss="bce", gp=10.0),)


SCRIPTS = {"cyclegan": (cyclegan, cyclegan_step), "dcgan": (dcgan, train_dcgan.train_step),
           "pix2pix": (pix2pix, train_pix2pix.train_step), "mnist": (mnist, train_mnist.train_step)}


@pytest.mark.parametrize("script", ["cyclegan", "dcgan", "mnist"])   # pix2pix's nets: in the test above
def test_compiled_steps_trace_like_eager(script):
    # kit.compile_nets in every script's train_step, traced by "aot_eager": the steps' mode and
    # requires_grad switches recompile without breaking, and the losses are the eager ones
    torch._dynamo.reset()
    eager = losses_of(3, None, *SCRIPTS[script])
    compiled = losses_of(3, "aot_eager", *SCRIPTS[script])
    for step, (want, got) in enumerate(zip(eager, compiled)):
        for key in want:
            assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-6), (step, key)


@pytest.mark.slow
def test_inductor_cyclegan_steps_give_the_eager_losses():
    # Inductor, as --compile runs it, on the step through minigan's own ops: its generated kernels
    # sum in other orders, hence float32 tolerances
    torch._dynamo.reset()
    eager = losses_of(3, None, *SCRIPTS["cyclegan"])
    compiled = losses_of(3, "inductor", *SCRIPTS["cyclegan"])
    for step, (want, got) in enumerate(zip(eager, compiled)):
        for key in want:
            assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-5), (step, key)
