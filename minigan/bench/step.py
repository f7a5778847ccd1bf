"""Whole training steps: each script's default nets (and the CycleGAN CPU recipe), minigan vs torch-native twins.

    python -m minigan.bench step [--nets recipe,cyclegan128,...] [--repeats N] [--eager-only]

One step is exactly the script's `train_step` (imported from the training script beside the package,
so run this from the repository root): D's and G's forward, backward and Adam steps on one fixed
batch. "twin" is the same nets built from torch's own layers as the reference implementation builds
them (`minigan.bench.twins`: nn.InstanceNorm2d then ReLU, nn.ConvTranspose2d), holding the same
weights, and trained as the reference trains them: with torch's default Adam, where minigan's
scripts use the fused one (`kit.adam`), and for CycleGAN with every net pass on its own batch, where
train_cyclegan.py stacks them (`kit.in_one_pass`). "twin, minigan's step" is the twin trained as
minigan trains, so that minigan / it is the nets' ratio alone and minigan / twin the whole step's.
The variants are timed interleaved, one step each in turn, `repeats` times after two warm-up steps
(a busy machine slows every column alike), and each figure is the median seconds per step, with the
spread (min - max) beside it.

With compile (the default; --eager-only skips it) both nets are also timed after `nn.Module.compile`
(torch.compile in place, Inductor, as --compile does); the first steps, which compile, are warm-up.
The goals read off the ratios: eager minigan / eager twin below 1, compiled minigan below the eager twin.
"""
import copy
import importlib
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from .. import kit, losses
from ..kit.image_pool import ImagePool
from ..kit.run import init_weights
from ..nets import (DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator, PatchGAN,
                    ResnetGenerator, UNet256)
from . import sync
from .twins import twin

ROOT = Path(__file__).resolve().parents[2]   # the repository, where the train_*.py scripts are


def script(name):
    """The training script `train_<name>.py` beside the package, as a module (for its train_step)."""
    if not (ROOT / f"train_{name}.py").is_file():
        raise SystemExit(f"python -m minigan.bench step: needs the training scripts, {ROOT / f'train_{name}.py'} "
                         "not found: run it from a checkout of the repository")
    sys.path.insert(0, str(ROOT))
    try:
        return importlib.import_module(f"train_{name}")
    finally:
        sys.path.remove(str(ROOT))


def adam(*nets):
    """Every script's optimizer, Adam(lr 2e-4, beta1 0.5), as the scripts make it: fused (`kit.adam`)."""
    return kit.adam([p for net in nets for p in net.parameters()], 2e-4, 0.5)


def reference_adam(*nets):
    """The same Adam as the reference implementation makes it: torch's default (a for-loop on CPU)."""
    return torch.optim.Adam([p for net in nets for p in net.parameters()], lr=2e-4, betas=(0.5, 0.999))


# name -> (description, a function of the device giving (nets, the step's other arguments after the
# nets' optimizers, the script's train_step)). Each is the script's default, but for "recipe" (the
# README's CycleGAN CPU recipe) and "cyclegan128".
def mnist(device):
    G, D = MLPGenerator(100), MLPDiscriminator()
    batch = (torch.randn(128, 1, 28, 28, device=device), torch.randn(128, 100, device=device))
    return [G, D], (*batch, SimpleNamespace(loss="bce", gp=10.0)), script("mnist").train_step


def dcgan(device):
    G, D = DCGANGenerator(100, 64, 3), DCGANDiscriminator(64, 3)
    batch = (torch.randn(128, 3, 64, 64, device=device), torch.randn(128, 100, device=device))
    return [G, D], batch, script("dcgan").train_step


def pix2pix(device):
    G, D = UNet256(ngf=64), PatchGAN(6, 64, 3, "batch")
    batch = (torch.randn(1, 3, 256, 256, device=device), torch.randn(1, 3, 256, 256, device=device))
    return [G, D], (*batch, SimpleNamespace(loss="gan+l1", lambda_l1=100.0)), script("pix2pix").train_step


def reference_cyclegan_step(G_AB, G_BA, D_A, D_B, opt_g, opt_d, pool_a, pool_b, real_a, real_b, args):
    """CycleGAN's step as the reference code runs it (CycleGANModel.optimize_parameters): the same
    losses as train_cyclegan.train_step, but every net pass on one batch of its own -- 6 G passes and
    6 D passes where the script stacks them into 3 and 4 (kit.in_one_pass)."""
    fake_b, fake_a = G_AB(real_a), G_BA(real_b)
    rec_a, rec_b = G_BA(fake_b), G_AB(fake_a)
    for D in (D_A, D_B):
        D.requires_grad_(False)
    g_loss = (losses.g_loss(D_B(fake_b), args.gan_loss) + losses.g_loss(D_A(fake_a), args.gan_loss)
              + args.lambda_cycle * ((rec_a - real_a).abs().mean() + (rec_b - real_b).abs().mean())
              + args.lambda_identity * args.lambda_cycle * ((G_BA(real_a) - real_a).abs().mean()
                                                           + (G_AB(real_b) - real_b).abs().mean()))
    kit.optimizer_step(opt_g, g_loss)
    for D in (D_A, D_B):
        D.requires_grad_(True)
    d_a = 0.5 * losses.d_loss(D_A(real_a), D_A(pool_a.query(fake_a)), args.gan_loss)
    d_b = 0.5 * losses.d_loss(D_B(real_b), D_B(pool_b.query(fake_b)), args.gan_loss)
    kit.optimizer_step(opt_d, d_a + d_b)
    return dict(d_a=d_a, d_b=d_b, g_loss=g_loss)


def cyclegan_nets(size, ngf, ndf, n_blocks):
    def make(device):
        nets = [ResnetGenerator(ngf=ngf, n_blocks=n_blocks) for _ in "AB"]
        nets += [PatchGAN(3, ndf, 3, norm="instance") for _ in "AB"]
        batch = (torch.randn(1, 3, size, size, device=device), torch.randn(1, 3, size, size, device=device))
        args = SimpleNamespace(gan_loss="lsgan", lambda_cycle=10.0, lambda_identity=0.5)
        pools = (ImagePool(50), ImagePool(50))

        def step_of(step):
            def train_step(G_AB, G_BA, D_A, D_B, opt_g, opt_d, real_a, real_b):
                return step(G_AB, G_BA, D_A, D_B, opt_g, opt_d, *pools, real_a, real_b, args)
            return train_step
        return nets, batch, step_of(script("cyclegan").train_step), step_of(reference_cyclegan_step)
    return make


CONFIGS = {
    "recipe": ("CycleGAN CPU recipe: 64x64, ngf 16, ndf 32, 3 blocks, batch 1", cyclegan_nets(64, 16, 32, 3)),
    "cyclegan128": ("CycleGAN 128x128, ngf 64, 9 blocks, batch 1", cyclegan_nets(128, 64, 64, 9)),
    "cyclegan": ("CycleGAN 256x256 (the paper's): ngf 64, 9 blocks, batch 1", cyclegan_nets(256, 64, 64, 9)),
    "pix2pix": ("pix2pix U-Net-256 + 70x70 PatchGAN (batch norm), 256x256, batch 1", pix2pix),
    "dcgan": ("DCGAN 64x64, ngf = ndf = 64, batch 128", dcgan),
    "mnist": ("MLP GAN on MNIST, batch 128 (no minigan layer: the twin is the same net)", mnist),
}


def variants(make, device, compile):
    """{name: a closure running one training step}: minigan and twin, eager and compiled."""
    torch.manual_seed(0)
    nets, batch, train_step, *reference = make(device)
    reference_step = reference[0] if reference else train_step   # the same structure but for CycleGAN
    for net in nets:
        net.apply(init_weights)
        net.to(device)
    twins = [twin(net) for net in nets]
    # name -> (nets, how their Adam is made, the step): minigan as its scripts train, the twin as the
    # reference trains, and the twin trained as minigan trains, whose ratio to minigan is the nets' alone
    built = {"minigan": (nets, adam, train_step), "twin": (twins, reference_adam, reference_step),
             "twin, minigan's step": ([copy.deepcopy(net) for net in twins], adam, train_step)}
    if compile:
        for name in ("minigan", "twin"):
            compiled = [copy.deepcopy(net) for net in built[name][0]]
            for net in compiled:
                net.compile()
            built[f"{name} compiled"] = (compiled, *built[name][1:])
    steps = {}
    for name, (nets, make_adam, step) in built.items():
        half = len(nets) // 2                       # G's first, D's after: one Adam for each half
        optimizers = (make_adam(*nets[:half]), make_adam(*nets[half:]))
        steps[name] = (lambda nets=nets, optimizers=optimizers, step=step: step(*nets, *optimizers, *batch))
    return steps


def measure(steps, device, repeats, warmup=2):
    """{name: [seconds of each timed step]}, the variants interleaved one step at a time."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            sync(device)
            start = time.perf_counter()
            step()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def compile_error(device):
    """None when torch.compile works here, else why not (on CPU it needs a C++ compiler)."""
    try:
        net = torch.nn.Linear(2, 2).to(device)
        net.compile()
        net(torch.randn(1, 2, device=device)).sum().backward()
    except Exception as error:
        return f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    return None


def main(device, nets=None, repeats=None, eager_only=False):
    device = torch.device(device)
    names = nets or list(CONFIGS)
    unknown = [name for name in names if name not in CONFIGS]
    if unknown:
        raise SystemExit(f"python -m minigan.bench step: unknown --nets {', '.join(unknown)}; "
                         f"choose from {', '.join(CONFIGS)}")
    failure = None if eager_only else compile_error(device)
    where = (torch.cuda.get_device_name(device) if device.type == "cuda" else
             f"CPU, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"training steps on {where}: median s/step (min - max) over the repeats; ratio = minigan / twin")
    if failure:
        print(f"compiled columns absent: torch.compile fails here ({failure})")
    for name in names:
        description, make = CONFIGS[name]
        steps = variants(make, device, compile=not eager_only and failure is None)
        count = repeats or (5 if name in ("cyclegan", "cyclegan128", "dcgan") else 15)
        times = measure(steps, device, count)
        median = {k: statistics.median(v) for k, v in times.items()}
        print(f"\n{name}: {description}; {count} interleaved steps each")
        for variant, seconds in times.items():
            print(f"  {variant:<22} {median[variant]:9.4f} s  ({min(seconds):.4f} - {max(seconds):.4f})")
        nets_alone = median["minigan"] / median["twin, minigan's step"]
        print(f"  eager minigan / twin: {median['minigan'] / median['twin']:.3f} (the nets alone, both trained "
              f"as minigan trains: {nets_alone:.3f})")
        if "minigan compiled" in median:
            print(f"  compiled minigan / eager twin: {median['minigan compiled'] / median['twin']:.3f}; "
                  f"compiled minigan / compiled twin: {median['minigan compiled'] / median['twin compiled']:.3f}")
