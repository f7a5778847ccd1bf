"""What the failure guard (kit/guard.py) costs a training step: the copy of the state kept before
each step, and the finiteness check of each loss (one host sync).

For the four scripts' nets at the sizes the README's CPU runs use, one GAN step (D step on real and
detached fakes, then G step, Adam, every optimizer step through kit.optimizer_step with its check)
is timed with and without `Guard.keep`'s copy, interleaved, median of repeats.
"""
import torch

from .. import losses
from ..kit import adam, checkpoint, optimizer_step
from ..kit.guard import copy_state
from ..nets import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator, PatchGAN, ResnetGenerator
from ..nets.unet import ToyUNet
from . import timed


def configs(device):
    """name -> (pairs of (G, D), G's input batch, whether D sees G's input too (pix2pix))."""
    rand = lambda *shape: torch.randn(*shape, device=device)  # noqa: E731
    return {
        "mnist (MLP GAN, batch 128)": ([(MLPGenerator(100), MLPDiscriminator())], rand(128, 100), False),
        "dcgan (64x64, batch 32)": ([(DCGANGenerator(100, 64, 3), DCGANDiscriminator(64, 3))],
                                    rand(32, 100, 1, 1), False),
        "pix2pix toy (64x64, ndf 32)": ([(ToyUNet(ngf=64), PatchGAN(6, 32, 3, "batch"))], rand(1, 3, 64, 64), True),
        "cyclegan CPU recipe (64x64)": ([(ResnetGenerator(ngf=16, n_blocks=3), PatchGAN(3, 32, 3, "instance"))
                                         for _ in "AB"], rand(1, 3, 64, 64), False),
    }


def main(device="cpu"):
    print(f"guard cost per training step ({device}; ms, median)")
    print("| nets | step | keep (state copy) | step + keep | overhead | finite check |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, (pairs, x, pair) in configs(device).items():
        objects, steps = {}, []
        for i, (G, D) in enumerate(pairs):
            G.to(device), D.to(device)
            opt_g, opt_d = adam(G.parameters(), 2e-4, 0.5), adam(D.parameters(), 2e-4, 0.5)  # the scripts' Adam
            objects.update({f"G{i}": G, f"D{i}": D, f"opt_g{i}": opt_g, f"opt_d{i}": opt_d})
            steps.append((G, D, opt_g, opt_d))

        with torch.no_grad():  # stand-ins for real images, of the generators' output shape
            reals = [G(x) for G, _, _, _ in steps]
        seen = (lambda image: torch.cat([x, image], 1)) if pair else (lambda image: image)  # pix2pix: D(x, y)

        def step():
            for (G, D, opt_g, opt_d), real in zip(steps, reals):
                fake_in = seen(G(x))
                optimizer_step(opt_d, losses.d_loss(D(seen(real)), D(fake_in.detach())))
                D.requires_grad_(False)
                optimizer_step(opt_g, losses.g_loss(D(fake_in)))
                D.requires_grad_(True)

        kept = [None]

        def keep():
            kept[0] = copy_state(checkpoint.capture(objects, 0), into=kept[0])

        def step_and_keep():
            keep()
            step()

        step()  # Adam's moments exist from here on, as in a real run
        loss = torch.ones((), device=device)
        times = {}
        for _ in range(3):  # interleaved rounds
            for label, fn in (("step", step), ("keep", keep), ("both", step_and_keep)):
                times.setdefault(label, []).append(timed(fn, device, warmup=2, repeats=5))
        times["check"] = [timed(lambda: bool(torch.isfinite(loss)), device)]
        med = {k: sorted(v)[len(v) // 2] * 1e3 for k, v in times.items()}
        print(f"| {name} | {med['step']:.1f} | {med['keep']:.2f} | {med['both']:.1f} | "
              f"{100 * (med['both'] / med['step'] - 1):+.1f}% | {med['check'] * 1e3:.1f} us |")
