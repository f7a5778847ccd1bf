"""Nothing lost: whatever stops a run after its first step leaves a checkpoint of the last completed
step, and the message says which step and the exact command that continues it.

How each failure is caught (the Run owns one Guard; `kit.optimizer_step` and `kit.run_main` call in):

- A step that fails half-way (an exception, a non-finite loss in its second optimizer step) may
  already have changed some weights, batch-norm statistics, image pools and random states. So before
  each step the Guard copies the whole state -- what a checkpoint holds -- into buffers kept in memory
  (`keep`), and after a failure inside a step writes that copy, not the half-updated nets (`rescue`).
  The copy is one more pass over the weights and optimizer moments each step, into the same buffers
  every time (no allocation), and as much memory again as they take: 1-10% of a CPU step for the
  four scripts' nets (python -m minigan.bench guard; the README has the figures), little on a GPU.
- A failure between steps (the loader meets a file that went bad during the run) writes the state
  as it is: the last completed step.
- A non-finite loss: `finite` checks it in `optimizer_step`, before backward, so no NaN reaches a
  weight. It costs one host sync per optimizer step (the GPU's queue drains before the backward is
  queued; the loss is logged, which syncs, anyway). --on-nan stop (the default) stops the run with
  the last completed step saved; --on-nan skip drops that optimizer step (with a line saying so) and
  the step goes on. With fp16 loss scaling a skipped step is left to the GradScaler, which skips
  steps whose gradients are not finite.
- Ctrl-C and SIGTERM (what batch schedulers and torchrun send before they kill a job) finish the
  current step and write a checkpoint; the same signal again stops at once, and the last completed
  step is written.
- Under torchrun (distributed.py) no copy is kept and nothing is written after a failure: a
  checkpoint needs every process (their random states, the check that their nets agree), and after
  a failure some may be gone. The last checkpoint the processes wrote together (every
  --checkpoint-every steps) is what the message names.
- A checkpoint that cannot be written (the disk is full) leaves the previous one intact (checkpoints
  are written to a temporary file and renamed) and the run stops saying so.

>>> state = {"w": torch.ones(2), "step": 3}
>>> kept = copy_state(state)
>>> _ = state["w"].add_(1)                 # the step goes on in place ...
>>> kept["w"]                            # ... the copy does not
tensor([1., 1.])
>>> copy_state(state, into=kept)["w"] is kept["w"]   # the next copy reuses its buffers
True
"""
import contextlib
import shlex
import signal
import sys
import threading
from pathlib import Path

import torch
from tqdm import tqdm

from ..errors import MiniganError
from . import checkpoint, distributed

active = None  # the Guard of the run whose loop is running (one per process), for optimizer_step and run_main
SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


class NonFiniteLoss(MiniganError):
    """A loss was NaN or infinite: the run stops before the optimizer step it would have poisoned."""


class CheckpointNotSaved(MiniganError):
    """Writing a checkpoint failed (e.g. the disk is full); the previous checkpoint file is intact."""


def finite(loss, optimizer):
    """True when `loss` is finite. Else what --on-nan says: raise NonFiniteLoss (stop) or return
    False (skip this optimizer step). One host sync (under torchrun also one tiny all-reduce)."""
    bad = not bool(torch.isfinite(loss.detach()).all())
    if not distributed.any_rank(bad):  # under torchrun all processes skip or stop together
        return True
    if active is None:
        raise NonFiniteLoss(f"the loss is {loss.detach().float().sum().item()}: stopped before the optimizer step")
    return active.nonfinite(loss, optimizer)


def rescue(error):
    """After `error` ended a run's loop: write the last completed step. What to add to the error
    message ('' when no loop was running)."""
    return "" if active is None else active.rescue(error)


def copy_state(tree, into=None):
    """A copy of a checkpoint's nested dicts / lists / tensors; tensors are copied into the matching
    tensors of `into` (an earlier copy) when shape, dtype and device agree, else cloned."""
    if torch.is_tensor(tree):
        if torch.is_tensor(into) and (into.shape, into.dtype, into.device) == (tree.shape, tree.dtype, tree.device):
            return into.copy_(tree)
        return tree.detach().clone()
    if isinstance(tree, dict):
        into = into if isinstance(into, dict) else {}
        return {key: copy_state(value, into.get(key)) for key, value in tree.items()}
    if isinstance(tree, tuple) and not any(isinstance(value, (torch.Tensor, dict, list, tuple)) for value in tree):
        return tree  # immutable all the way down, e.g. python's random state: 625 ints
    if isinstance(tree, (list, tuple)):
        into = into if isinstance(into, (list, tuple)) and len(into) == len(tree) else [None] * len(tree)
        return type(tree)(copy_state(value, old) for value, old in zip(tree, into))
    return tree  # str, int, float, bool, None: immutable


class Guard:
    """One run's failure handling (see the module docstring)."""

    def __init__(self, run):
        self.run, self.kept, self.in_step, self.skipped, self.signal = run, None, False, 0, None
        self.done()  # a new run: none of an earlier one (in the same process) is active any more

    @contextlib.contextmanager
    def watching(self):
        """Around the training loop: the run is the active one; Ctrl-C and SIGTERM are handled."""
        global active
        active = self
        main = threading.current_thread() is threading.main_thread()  # only it may set signal handlers
        handlers = {s: signal.signal(s, self.on_signal) for s in SIGNALS} if main else {}
        try:
            yield
        finally:
            for s, handler in handlers.items():
                signal.signal(s, handler)

    def done(self):
        """The loop ended normally: no run is active any more."""
        global active
        active = None

    def keep(self):
        """Before a step: copy the state (the last completed step) into memory (not under torchrun)."""
        if self.run.world == 1:
            self.kept = copy_state(self.run.capture(), into=self.kept)
        self.in_step = True

    def on_signal(self, signum, frame):
        if self.signal is not None:  # the second one: stop now; rescue writes the last completed step
            raise KeyboardInterrupt
        self.signal = signum
        self.run.interrupted = True
        name = SIGNALS[signum]
        if self.run.is_main:
            print(f"\n{name}: stopping after this step and writing a checkpoint ({name} again stops at once, "
                  "keeping the last completed step)" + ("; none if another process is gone" if self.run.world > 1
                                                        else ""), file=sys.stderr)

    def nonfinite(self, loss, optimizer):
        """--on-nan: False to skip this optimizer step, or raise NonFiniteLoss to stop the run."""
        name = next((n for n, obj in self.run.objects.items() if obj is optimizer), "an optimizer")
        what = f"step {self.run.step + 1}: the loss of {name}'s step is {loss.detach().float().sum().item()}"
        if getattr(self.run.args, "on_nan", "stop") == "skip":
            self.skipped += 1
            tqdm.write(f"{what}: that optimizer step is skipped (--on-nan skip)")
            return False
        raise NonFiniteLoss(f"{what}: stopped before that optimizer step, so no weight saw it (--on-nan skip "
                            "skips such steps instead; a smaller --lr may avoid them)")

    def rescue(self, error):
        """Write the last completed step after `error`; returns the sentence for the user."""
        run = self.run
        self.done()
        if isinstance(error, CheckpointNotSaved) or not run.is_main:  # it says it all / rank 0 speaks
            return ""
        run.bar.close()
        if run.world > 1:  # a checkpoint needs all processes, and some may be gone: the last one stays
            return "" if run.saved_step is None else (
                f"; the last checkpoint, of step {run.saved_step}, is in {run.dir / checkpoint.NAME}: continue "
                f"with: {self.resume_command()}")
        try:
            if self.in_step:  # the nets may be half-way through the step: write the copy from before it
                run.save(self.kept)
            else:
                run.save(run.capture())
        except CheckpointNotSaved as e:
            return f"; {e}"
        where = f"in step {run.step + 1}" if self.in_step else f"after step {run.step}"
        return (f"; the run stopped {where}: step {run.saved_step} is saved in {run.dir / checkpoint.NAME}, "
                f"continue with: {self.resume_command()}")

    def resume_command(self):
        """The command that continues this run, with the flags of this invocation that it needs again."""
        run = self.run
        script = f"train_{run.script}.py"
        script = sys.argv[0] if Path(sys.argv[0]).name == script else script
        launcher = ["torchrun", f"--nproc_per_node={run.world}"] if run.world > 1 else ["python"]
        words = [*launcher, script, "--resume", str(run.dir)]
        defaults = {"device": "auto", "workers": 0}
        for name in ("data_root", "device", "threads", "workers", "max_steps"):
            value = getattr(run.args, name, None)
            if value is not None and value != defaults.get(name):
                words += [f"--{name.replace('_', '-')}", str(value)]
        return shlex.join(words)

    @property
    def exit_code(self):
        """128 + the signal's number, what a shell reports for a process the signal ended."""
        return 128 + (self.signal or signal.SIGINT)
