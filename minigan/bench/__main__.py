"""python -m minigan.bench {conv,norm,guard,step,gpu,all} [--device cpu|cuda] [--nets NAME,...]
[--repeats N] [--eager-only] [--threads N]"""
import argparse

import torch


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minigan.bench", description=__doc__)
    parser.add_argument("what", choices=["conv", "norm", "guard", "step", "gpu", "all"],
                        help="which benchmark to run (all: conv, norm, guard and step)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--nets", help="step: comma-separated configurations (default: all of them; see "
                        "minigan/bench/step.py)")
    parser.add_argument("--repeats", type=int, help="step: timed steps of each variant")
    parser.add_argument("--eager-only", action="store_true", help="step: skip the torch.compile columns")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.what == "gpu":
        from .gpu import main as gpu
        return gpu()
    if args.what in ("conv", "all"):
        from .conv import main as conv
        conv(args.device)
    if args.what in ("norm", "all"):
        from .norm import main as norm
        norm(args.device)
    if args.what in ("guard", "all"):
        from .guard import main as guard
        guard(args.device)
    if args.what in ("step", "all"):
        from .step import main as step
        step(args.device, args.nets.split(",") if args.nets else None, args.repeats, args.eager_only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
