"""The latent space of a noise-to-image generator: fixed noise, samples, interpolations.

z ~ N(0, I) in R^nz (nz = 100 in the course's MLP GAN and in DCGAN). Walking from z0 to z1 in a
straight line (lerp) passes through points of unusually small norm -- in high dimensions almost all
of N(0, I)'s mass lies near the sphere of radius sqrt(nz) -- so the middle frames are off the
distribution G was trained on. Spherical interpolation (slerp, White 2016, "Sampling generative
networks") follows the great circle instead, keeping the norm:

    omega = arccos(<z0, z1> / (|z0| |z1|))
    slerp(z0, z1, t) = sin((1 - t) omega) / sin(omega) * z0 + sin(t omega) / sin(omega) * z1

>>> z0, z1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
>>> slerp(z0, z1, 0.5)                  # halfway round the circle, still of norm 1
tensor([0.7071, 0.7071])
>>> torch.lerp(z0, z1, 0.5)             # the straight line: norm 0.71
tensor([0.5000, 0.5000])
"""
import torch

from ..errors import MiniganError
from ..data.images import save_grid
from .distributed import is_main
from .run import generate


def fixed_noise(n, nz, seed, device="cpu"):
    """n latent vectors that depend on `seed` only (their own generator: the training RNG is untouched),
    so the sample grids of a run, resumed or not, always show the same z's."""
    return torch.randn(n, nz, generator=torch.Generator().manual_seed(seed)).to(device)


def slerp(z0, z1, t):
    """Spherical interpolation between the last dimensions of z0 and z1 (t in [0, 1]); lerp when the
    two are (nearly) parallel, where the formula divides by sin(omega) ~ 0."""
    cos = (z0 * z1).sum(-1, keepdim=True) / (z0.norm(dim=-1, keepdim=True) * z1.norm(dim=-1, keepdim=True))
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    sin = torch.sin(omega)
    if (sin.abs() < 1e-6).any():
        return torch.lerp(z0, z1, t)
    return torch.sin((1 - t) * omega) / sin * z0 + torch.sin(t * omega) / sin * z1


def interpolation(n_pairs, steps, nz, seed):
    """(n_pairs * steps) x nz latents: row i walks by slerp from one random z to another in `steps`."""
    ends = fixed_noise(2 * n_pairs, nz, seed + 1)  # not the training grid's z's
    t = torch.linspace(0, 1, steps)[:, None]
    return torch.cat([slerp(ends[2 * i], ends[2 * i + 1], t) for i in range(n_pairs)])


@torch.no_grad()
def write_grids(G, args, ckpt, folder, nz, device, steps=10):
    """`--sample N` / `--interpolate N` of a noise-to-image script: grids from the checkpoint's G.
    Returns the paths written. G runs in eval mode (batch norm on its running statistics), so each
    picture is its own, whatever else is in the grid: the frames of a latent walk would otherwise
    share batch statistics, and --sample 1 would have none. (The training grids of DCGAN use
    training mode, the tutorial's; by the end of a run the running statistics have caught up.)"""
    if ckpt is None:
        raise MiniganError("--sample/--interpolate need a trained generator: pass --checkpoint PATH "
                           "(a checkpoint.pt or its run directory)")
    written = []
    if not is_main():  # under torchrun: once, by rank 0
        return written
    if args.sample:
        path = folder / f"samples-step{ckpt['step']}-seed{args.seed}.png"
        z = fixed_noise(args.sample, nz, args.seed, device)  # drawn like the training grids' z
        save_grid(generate(G, z), path, nrow=max(1, round(args.sample ** 0.5)))
        written.append(path)
    if args.interpolate:
        path = folder / f"interpolation-step{ckpt['step']}-seed{args.seed}.png"
        save_grid(generate(G, interpolation(args.interpolate, steps, nz, args.seed).to(device)), path, nrow=steps)
        written.append(path)
    for path in written:
        print(f"wrote {path}")
    return written


def add_sampling_args(parser):
    g = parser.add_argument_group("sampling a trained generator (with --checkpoint)")
    g.add_argument("--sample", type=int, metavar="N", help="write a grid of N samples and exit")
    g.add_argument("--interpolate", type=int, metavar="N",
                   help="write N rows of a latent walk (slerp between two random z, 10 steps) and exit")
