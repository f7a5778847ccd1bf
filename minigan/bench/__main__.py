"""python -m minigan.bench {conv,norm,guard,all} [--device cpu|cuda]"""
import argparse

import torch


def main():
    parser = argparse.ArgumentParser(prog="python -m minigan.bench", description=__doc__)
    parser.add_argument("what", choices=["conv", "norm", "guard", "all"], help="which benchmark to run")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.what in ("conv", "all"):
        from .conv import main as conv
        conv(args.device)
    if args.what in ("norm", "all"):
        from .norm import main as norm
        norm(args.device)
    if args.what in ("guard", "all"):
        from .guard import main as guard
        guard(args.device)


if __name__ == "__main__":
    main()
