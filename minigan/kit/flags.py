"""The flags every minigan script shares, and how --resume brings a run's own flags back.

`parser(doc, script)` makes the script's parser, `add_common_args` adds the shared flags with the
script's paper defaults, `parse_args` parses them. With --resume the checkpoint's saved arguments
become the defaults, so a run continues with its own config; the checkpoint must come from the same
script, and a flag given now may differ from the checkpoint's only if it is RESUMABLE (or one of the
per-invocation SESSION_FLAGS): any other (--ngf, --image-size, --lr, ...) is refused, naming it and
both values.
"""
import argparse
import sys
from pathlib import Path

from ..errors import MiniganError
from . import checkpoint, distributed

# flags that belong to this invocation, not to the run: never taken back from a checkpoint
SESSION_FLAGS = {"resume", "checkpoint", "out", "device", "threads", "workers", "sample", "interpolate",
                 "max_steps", "data_root", "compile"}
# flags that may differ from the checkpoint's on --resume (a note says so): how long to train, how
# often to write, what to do about NaNs and bad files, where the data is. Everything else -- the nets,
# the image size, the losses, the learning rates (the optimizers' saved state holds them), the batch
# size, the seed -- must stay what the run was trained with.
RESUMABLE = {"epochs", "epochs_decay", "sample_every", "checkpoint_every", "test_images", "on_nan",
             "skip_bad_images", "data", "channels_last", "init_from"}


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + error; exit 2 like argparse
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parser(doc, script=None):
    """An argument parser for train_<script>.py whose description is the script's docstring."""
    p = Parser(prog=f"train_{script}.py" if script else None, description=doc,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.script = script  # --resume refuses a checkpoint of another script
    return p


def add_common_args(parser, *, batch_size, lr, beta1, epochs, epochs_decay=None, sample_every=500,
                    checkpoint_every=1000):
    """The flags every script has. The script passes its paper's defaults, with the citation.
    `epochs_decay` (pix2pix, CycleGAN) adds --epochs-decay: --epochs at the initial LR, then that
    many more decaying it (see linear_decay_lr)."""
    g = parser.add_argument_group("run (shared by every minigan script)")
    g.add_argument("--out", type=Path, metavar="DIR",
                   help="run directory (default: runs/<script>-<data>-<time>/, or the resumed checkpoint's); "
                   "its index.html is the run report (open it in a browser; `python -m minigan.kit.report "
                   "RUN_DIR` rebuilds it)")
    g.add_argument("--resume", metavar="PATH",
                   help="continue a run exactly: its checkpoint.pt or its run directory")
    g.add_argument("--checkpoint", metavar="PATH",
                   help="a checkpoint to load without training (for --sample / --interpolate)")
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                   help="where to train; auto picks cuda, then mps, then cpu (default: auto)")
    g.add_argument("--data-root", type=Path, metavar="DIR",
                   help="where dataset names are looked up (and downloaded): default $MINIGAN_DATA, else ./datasets")
    g.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seeds python, numpy, torch and the data order (default: 0)")
    g.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: torch's choice)")
    g.add_argument("--workers", type=int, default=0, metavar="N",
                   help="DataLoader worker processes (default: 0)")
    g.add_argument("--on-nan", default="stop", choices=["stop", "skip"],
                   help="a NaN or infinite loss stops the run before its optimizer step, keeping the last "
                   "completed step (stop), or that optimizer step is skipped (skip) (default: stop)")
    g.add_argument("--skip-bad-images", action="store_true",
                   help="train without the image files that cannot be read (default: list them all and stop "
                   "before training; every image file is checked first)")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile the nets: the first steps compile (a minute or more), later ones run "
                   "fused kernels; same losses as without it up to float32 rounding")
    if epochs_decay is None:
        g.add_argument("--epochs", type=int, default=epochs, metavar="N",
                       help=f"passes over the data (default: {epochs})")
    else:  # the reference's n_epochs and n_epochs_decay
        g.add_argument("--epochs", type=int, default=epochs, metavar="N",
                       help=f"epochs at the initial LR, then --epochs-decay more (default: {epochs})")
        g.add_argument("--epochs-decay", type=int, default=epochs_decay, metavar="N",
                       help=f"after --epochs, this many more with the LR decaying linearly to 0, the last "
                       f"epoch at 0 as in the reference code (default: {epochs_decay})")
    g.add_argument("--max-steps", type=int, metavar="N",
                   help="stop after this many steps in total, e.g. for a smoke run")
    g.add_argument("--batch-size", type=int, default=batch_size, metavar="N",
                   help=f"images per step and process (default: {batch_size}); with torchrun's N processes a "
                   "step takes N times as many, and the learning rates are not rescaled for it")
    g.add_argument("--lr", type=float, default=lr, help=f"Adam learning rate (default: {lr})")
    g.add_argument("--beta1", type=float, default=beta1, help=f"Adam beta1 (default: {beta1})")
    g.add_argument("--sample-every", type=int, default=sample_every, metavar="N",
                   help=f"write a sample grid every N steps, and at each epoch end (default: {sample_every})")
    g.add_argument("--checkpoint-every", type=int, default=checkpoint_every, metavar="N",
                   help=f"write checkpoint.pt every N steps, and at the end (default: {checkpoint_every})")
    g.add_argument("--sync-bn", action="store_true",
                   help="with torchrun on GPUs: batch norm over all processes' images (SyncBatchNorm) instead of "
                   "each process's own, the reference's default (DCGAN, pix2pix)")
    return g


COMMAND_LINE = []  # the arguments parse_args parsed last (the run report shows them)


def parse_args(parser, argv=None):
    """(args, checkpoint or None). With --resume/--checkpoint the checkpoint's saved arguments become
    the defaults, so the run continues with its own config; flags given now still win."""
    COMMAND_LINE[:] = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    for name in ("batch_size", "epochs", "epochs_decay", "sample_every", "checkpoint_every", "max_steps",
                 "threads", "workers"):
        value, least = getattr(args, name, None), 0 if name in ("workers", "epochs_decay") else 1
        if value is not None and value < least:
            parser.error(f"--{name.replace('_', '-')} must be at least {least}, got {value}")
    source = args.resume or args.checkpoint
    if not source:
        return args, None
    ckpt = checkpoint.load_checkpoint(source)
    ckpt["path"] = str(checkpoint.find_checkpoint(source))
    script, written_by = getattr(parser, "script", None), ckpt.get("script")
    if script and written_by and written_by != script:
        raise MiniganError(f"{ckpt['path']} was written by train_{written_by}.py, not train_{script}.py: "
                           f"continue it with python train_{written_by}.py --resume {Path(ckpt['path']).parent}")
    given = given_flags(parser, argv)
    parser.set_defaults(**{k: v for k, v in ckpt["args"].items() if k not in SESSION_FLAGS})
    args = parser.parse_args(argv)
    if args.resume:
        check_changed_flags(parser, given, args, ckpt)
    return args, ckpt


def given_flags(parser, argv):
    """The names (dests) of the flags on the command line `argv`, whatever their defaults."""
    unset, defaults = object(), {action: action.default for action in parser._actions}
    try:
        for action in defaults:
            action.default = unset
        given = parser.parse_args(argv)
    finally:
        for action, default in defaults.items():
            action.default = default
    return {name for name, value in vars(given).items() if value is not unset}


def check_changed_flags(parser, given, args, ckpt):
    """Refuse a flag given now that differs from the checkpoint's, naming both values, unless it is
    RESUMABLE; those get one line of note."""
    option = {action.dest: action.option_strings[0] for action in parser._actions if action.option_strings}
    saved = ckpt["args"]
    changed = [(option[name], saved[name], getattr(args, name)) for name in sorted(given)
               if name in saved and name not in SESSION_FLAGS and checkpoint.plain(getattr(args, name)) != saved[name]]
    refused = [(flag, old, new) for flag, old, new in changed if flag.lstrip("-").replace("-", "_") not in RESUMABLE]
    if refused:
        named = ", ".join(f"{flag} {new} (the run was trained with {flag} {old})" for flag, old, new in refused)
        raise MiniganError(f"{ckpt['path']}: {named}; a run continues with the model and training flags it was "
                           f"trained with: drop {' '.join(flag for flag, _, _ in refused)} to resume it, or start a "
                           "new run (what may change on resume: " + ", ".join(
                               "--" + n.replace("_", "-") for n in sorted(RESUMABLE)) + ")")
    if changed and distributed.is_main():
        print("note: resuming with " + ", ".join(f"{flag} {new} (was {old})" for flag, old, new in changed))
