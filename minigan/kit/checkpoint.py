"""Checkpoints: everything a run needs to continue exactly, written so that a crash never breaks one.

A checkpoint is one `torch.save` file of plain types and tensors only, so it loads with
`torch.load(..., weights_only=True)` -- loading runs no pickled code:

    {"format": "minigan-checkpoint", "version": 1,
     "script": the training script that wrote it ("cyclegan" for train_cyclegan.py),
     "step":  completed training steps (the epoch and the batch inside it follow from it),
     "args":  the run's command-line arguments (str / int / float / bool / None),
     "state": {name: obj.state_dict()} for every model, optimizer, LR scheduler, image pool...,
     "rng":   the python, numpy, torch and CUDA generator states,
     "extra": any other plain values a script wants back}

Atomic write: the bytes go to a temporary file in the same directory, are flushed and fsync'ed, and
`os.replace` renames it onto the final name. The rename is atomic, so a reader (or a run killed with
kill -9 at any instant) sees either the old checkpoint or the new one, never half of one.

>>> import tempfile, torch
>>> folder = Path(tempfile.mkdtemp())
>>> net = torch.nn.Linear(2, 1)
>>> path = save_checkpoint(folder / "checkpoint.pt", capture({"net": net}, step=7, args={"lr": 0.1}))
>>> ckpt = load_checkpoint(folder)           # a run directory works too
>>> ckpt["step"], ckpt["args"]
(7, {'lr': 0.1})
>>> sorted(p.name for p in folder.iterdir())  # no temporary file left behind
['checkpoint.pt']
"""
import random
from pathlib import Path

import numpy as np
import torch

from ..errors import MiniganError
from ..files import write_atomically

FORMAT, VERSION = "minigan-checkpoint", 1
NAME = "checkpoint.pt"  # the file inside a run directory


# --- random generator states, as tensors and plain types (so weights_only loading accepts them) ---

def rng_state():
    """The state of every random generator a training step can draw from."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(),  # (version, tuple of 625 ints, float or None)
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)},
             "torch": torch.get_rng_state(),
             "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
    if torch.backends.mps.is_available():
        state["mps"] = torch.mps.get_rng_state()
    return state


def set_rng_state(state):
    """Put every random generator back where `rng_state()` found it."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "mps" in state and torch.backends.mps.is_available():
        torch.mps.set_rng_state(state["mps"])


# --- what goes in, what comes out ---

def plain(value):
    """`value` made of str/int/float/bool/None/list/dict only (e.g. argparse's Paths become str)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def capture(objects, step, args=None, extra=None, script=None):
    """The checkpoint of a run: `objects` maps names to things with `state_dict()` (nets, optimizers,
    schedulers, image pools); `args` and `extra` are stored as plain values."""
    return {"format": FORMAT, "version": VERSION, "script": script, "step": int(step), "args": plain(args or {}),
            "state": {name: obj.state_dict() for name, obj in objects.items()},
            "rng": rng_state(), "extra": extra or {}}


def restore(ckpt, objects, path="checkpoint"):
    """Load each named object's state from `ckpt` (the RNG states are separate: `set_rng_state`)."""
    for name, obj in objects.items():
        if name not in ckpt["state"]:
            raise MiniganError(f"{path}: has no state for '{name}' (it holds {sorted(ckpt['state'])}); "
                               "resume with the script that wrote it")
        try:
            obj.load_state_dict(ckpt["state"][name])
        except (RuntimeError, ValueError, KeyError) as e:
            raise MiniganError(f"{path}: '{name}' does not match this run ({first_line(e)}); "
                               "use the same model flags as the run that wrote it") from None


# --- the file ---

def save_checkpoint(path, ckpt):
    """Write `ckpt` to `path` atomically (temp file in the same dir + fsync + os.replace); returns path."""
    return write_atomically(path, lambda f: torch.save(ckpt, f))


def find_checkpoint(path):
    """`path` itself if it is a file, else the checkpoint inside the run directory `path`."""
    path = Path(path)
    if path.is_dir():
        path = path / NAME
    if not path.is_file():
        raise MiniganError(f"no checkpoint at {path}: pass a checkpoint file or a run directory holding {NAME}")
    return path


def load_checkpoint(path):
    """Read a checkpoint (file or run directory) with weights_only=True; MiniganError if it is not one."""
    path = find_checkpoint(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, foreign pickle, random bytes: all the same to the user
        raise MiniganError(f"{path} is not a readable minigan checkpoint ({first_line(e)}); "
                           "it may be truncated or from another program: use another checkpoint") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise MiniganError(f"{path} is a torch file but not a minigan checkpoint: pass a {NAME} "
                           "written by a minigan training script")
    if ckpt.get("version") != VERSION:
        raise MiniganError(f"{path}: checkpoint version {ckpt.get('version')} is not {VERSION}: "
                           "it was written by another minigan version")
    return ckpt


def first_line(error):
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:200]
