"""The run every `train_*.py` drives: device, seeding, init, the Run (log, checkpoints, exact resume).
The shared flags are in flags.py, the data order in order.py, what a training step calls (Adam, the
optimizer step, the LR schedule) in step.py.

A script uses it like this (the GAN itself stays in the script, visible):

    parser = kit.parser(__doc__, "mnist")             # the script's own flags, then
    kit.add_common_args(parser, batch_size=..., lr=..., beta1=..., epochs=...)  # the papers' defaults
    args, ckpt = kit.parse_args(parser, argv)         # --resume: the saved arguments come back
    run = kit.Run("mnist", args, ckpt)                # device, seed, run dir, config printout
    ...build nets and optimizers...
    run.track(G=G, D=D, opt_g=opt_g, opt_d=opt_d)     # checkpointed; restored now when resuming
    for step, batch in run.batches(dataset):         # resumes at the saved step, same data order
        ...D step, G step...
        run.log(d_loss=..., g_loss=...)               # JSONL + tqdm; checkpoints every N steps
        if run.sample_due: run.save_samples(...)  # a PNG grid, and the report index.html
    return run.exit_code                              # 130 after Ctrl-C, 143 after SIGTERM (checkpoint written)

    if __name__ == "__main__": kit.run_main(main)    # MiniganError -> one line, exit 2

Exact resume. A checkpoint stores the step count, so the epoch and the batch inside it follow. Each
epoch's shuffle is a function of (seed, epoch) alone, and resuming skips the batches already done.
Every image is also loaded under its own seed (seed, epoch, index), so random augmentations are the
same whether the run was interrupted or not, with or without worker processes, in whatever batch
(and under torchrun in whatever process: distributed.py; order.py). The torch/numpy/python generators
continue from the checkpoint (dropout, noise, image pools), and the fixed sample noise has its own generator.
On CPU a resumed run therefore reproduces an uninterrupted one bit for bit.

What the run does when something goes wrong (a failure in a step, a NaN, SIGTERM, a full disk) is in
guard.py; which flags may change on --resume is in flags.py.
"""
import contextlib
import json
import random
import shlex
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..errors import MiniganError
from ..layers.conv_transpose import ConvTranspose2d
from ..layers.instance_norm import InstanceNorm2d, InstanceNormLeakyReLU
from ..data.images import save_grid
from . import checkpoint, distributed, guard
from .cpu_guide import CpuGuide
from .flags import COMMAND_LINE
from .order import epoch_loader, mix
from .plot import plot_losses

# --- device, seeds, initial weights ---

def pick_device(name="auto"):
    """`auto` prefers cuda, then Apple's mps, then cpu; asking for a missing one is an error."""
    has = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available(), "cpu": True}
    if name == "auto":
        name = next(n for n in ("cuda", "mps", "cpu") if has[n])
    if not has.get(name, False):
        raise MiniganError(f"--device {name}: not available on this machine; use --device auto or cpu")
    return torch.device(name)


def seed_everything(seed):
    """Seed python, numpy and torch (torch.manual_seed also seeds every CUDA device).

    >>> seed_everything(3); a = torch.rand(2)
    >>> seed_everything(3); torch.equal(a, torch.rand(2))
    True
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


CONV_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, ConvTranspose2d)
NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, InstanceNorm2d, InstanceNormLeakyReLU)


def init_weights(module):
    """DCGAN init: conv and linear weights ~ N(0, 0.02) (Radford et al. 2015, sec. 4), norm scales
    ~ N(1, 0.02) and biases 0 (the PyTorch DCGAN tutorial's weights_init; pix2pix/CycleGAN's "normal"
    init is the same). Use as `net.apply(init_weights)`."""
    weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
    if isinstance(module, CONV_LAYERS) and weight is not None:
        nn.init.normal_(weight, 0.0, 0.02)
    elif isinstance(module, NORM_LAYERS) and weight is not None:
        nn.init.normal_(weight, 1.0, 0.02)
    else:
        return
    if bias is not None:
        nn.init.zeros_(bias)


# --- --compile ---

def compile_nets(args, *nets):
    """--compile: torch.compile each net's forward in place, else nothing; returns the nets.

    `nn.Module.compile` keeps the module itself (its parameters, its state_dict keys, so checkpoints
    and `Run.track` are the same as without it) and swaps in the compiled forward. minigan's own
    layers are registered torch ops or plain autograd Functions that torch.compile traces, so each
    net is one graph (tests/kit/test_compile.py checks it with fullgraph=True). A net recompiles
    when it is first called in another mode (eval for samples, frozen parameters during G's step).
    """
    if args.compile:
        for net in nets:
            net.compile()
    return nets


# --- the run ---

class Run:
    """One training run: its directory, loss log, progress bar, checkpoints and what happens when it
    fails (its Guard: Ctrl-C, SIGTERM, NaNs, exceptions, a full disk)."""

    def __init__(self, script, args, ckpt=None, data_name=None):
        self.script, self.args, self.ckpt = script, args, ckpt
        self.guard = guard.Guard(self)
        self.device = distributed.setup(pick_device(args.device))  # under torchrun: joins the others
        self.world = distributed.world_size()
        if args.threads:
            torch.set_num_threads(args.threads)
        seed_everything(args.seed)
        self.step = ckpt["step"] if ckpt else 0  # completed steps
        self.saved_step = ckpt["step"] if ckpt else None  # the step of the checkpoint file on disk
        self.epoch, self.epoch_end, self.last_step, self.interrupted = 0, False, False, False
        self.objects, self.extra = {}, dict(ckpt["extra"]) if ckpt else {}
        data_name = data_name or Path(str(getattr(args, "data", "data"))).name
        if args.out:
            self.dir = Path(args.out)
        elif ckpt:
            self.dir = Path(ckpt["path"]).parent
        else:
            self.dir = Path("runs") / f"{script}-{data_name}-{time.strftime('%Y%m%d-%H%M%S')}"
            while self.dir.exists():  # two runs started in the same second
                self.dir = self.dir.with_name(self.dir.name + "+")
        self.dir = Path(distributed.broadcast(str(self.dir)))  # rank 0's: only it writes there
        self.log_path = self.dir / "losses.jsonl"
        self.rows = []
        if self.is_main:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.rows = self.read_log(rewrite=not (ckpt and not args.resume))  # --checkpoint only reads
            command = shlex.join(["python", f"train_{script}.py", *COMMAND_LINE])
            report().record_invocation(self.dir, command, args, self.device, self.world, self.step)
        print(f"{script}: config " + " ".join(f"{k}={v}" for k, v in sorted(vars(args).items())))
        if self.world > 1:
            print(f"{script}: {self.world} processes x batch {args.batch_size} = effective batch "
                  f"{self.world * args.batch_size} (the learning rates as given, not rescaled)")
        print(f"{script}: device {self.device}, outputs in {self.dir}/"
              + (f", resuming {ckpt['path']} at step {self.step}" if ckpt else ""))

    @property
    def is_main(self):
        """True in the process that writes and prints: the only one, or torchrun's rank 0."""
        return distributed.is_main()

    def path(self, name):
        """A file in the run directory (its folder created)."""
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def read_log(self, rewrite):
        """The logged rows before the step the run is at (a killed run may have logged further than its
        last checkpoint: those rows are dropped, the resumed run logs them again)."""
        rows = []
        if self.log_path.exists():
            for line in self.log_path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # the half line of a killed run
                    continue
                if row.get("step", 0) < self.step:
                    rows.append(row)
        if rewrite:
            self.log_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return rows

    def track(self, **objects):
        """Name the things a checkpoint holds: nets, optimizers, schedulers, image pools (anything with
        state_dict/load_state_dict). When resuming, their saved state is loaded now."""
        if getattr(self.args, "sync_bn", False):
            for obj in objects.values():
                if isinstance(obj, nn.Module):
                    distributed.sync_batchnorm(obj, self.device)
        self.objects.update(objects)
        if self.ckpt:
            checkpoint.restore(self.ckpt, objects, self.ckpt["path"])

    def capture(self):
        """This process's state now, as a checkpoint (see checkpoint.py)."""
        ckpt = checkpoint.capture(self.objects, self.step, vars(self.args), self.extra, self.script)
        ckpt.update(world_size=self.world, effective_batch_size=self.world * self.args.batch_size)
        return ckpt

    def save(self, ckpt=None):
        """Write checkpoint.pt atomically, and refresh the loss curve and the report. Under torchrun every process
        calls this: their nets are checked to be identical, rank 0 writes, with every rank's RNG state.
        A given `ckpt` (a failed run's last completed step, guard.py) is written by rank 0 alone.
        When the write fails the previous checkpoint file is intact, and the run stops saying so."""
        if ckpt is None:
            distributed.check_replicas({k: v for k, v in self.objects.items() if isinstance(v, nn.Module)},
                                       self.step)
            rng_ranks = distributed.all_gather(checkpoint.rng_state())
            ckpt = dict(self.capture(), rng_ranks=rng_ranks) if self.is_main else None
        if not self.is_main:
            return
        path = self.dir / checkpoint.NAME
        try:
            checkpoint.save_checkpoint(path, ckpt)
        except OSError as e:
            before = (f"the previous checkpoint there, of step {self.saved_step}, is intact: free some space and "
                      f"continue with: {self.guard.resume_command()}" if self.saved_step is not None else
                      "no earlier checkpoint was written")
            raise guard.CheckpointNotSaved(f"could not write the checkpoint of step {ckpt['step']} to {path} "
                                           f"({e.strerror or e}); {before}") from None
        self.saved_step = ckpt["step"]
        self.write_report(plot=True, until=ckpt["step"])

    def save_samples(self, images, nrow=8):
        """Write a sample grid, samples/step<N>.png after N steps, and refresh the report (rank 0)."""
        if self.is_main:
            save_grid(images, self.path(f"samples/step{self.step + 1:07d}.png"), nrow=nrow)
            self.write_report()

    def write_report(self, plot=False, until=None):
        """Rewrite index.html (minigan.kit.report) and, with `plot`, losses.png first (the rows before
        step `until`); rank 0 only. Cheap without the plot: at every sample grid; the plot is redrawn
        at each checkpoint."""
        if not self.is_main:
            return
        rows = [row for row in self.rows if until is None or row["step"] < until]
        if plot and rows:
            plot_losses(rows, self.dir / "losses.png")
        report().write_report(self.dir, rows)

    def batches(self, dataset, epochs=None):
        """Yield (step, batch) for `epochs` (default --epochs) or until --max-steps, from the step the
        run is at. The RNG states of a resumed run are restored here, the last thing before the
        loop. After each step:
        a checkpoint every --checkpoint-every steps; Ctrl-C or SIGTERM ends the loop after the current
        step. Before each step the guard keeps a copy of the state, for a failure inside the step."""
        n = len(dataset) // (self.args.batch_size * self.world)
        if n == 0:
            raise MiniganError(f"the data has {len(dataset)} images, fewer than --batch-size "
                               f"{self.args.batch_size}" + (f" x {self.world} processes" if self.world > 1 else "")
                               + ": use a smaller --batch-size")
        total = n * (epochs or self.args.epochs)
        total = min(total, self.args.max_steps) if self.args.max_steps else total
        self.start_random_streams()
        bar = tqdm(total=total, initial=min(self.step, total), dynamic_ncols=True, mininterval=1.0,
                   disable=not self.is_main)
        self.bar = bar
        guide = CpuGuide(self.script, self.args, self.device, total - self.step)  # a note if it takes hours
        stop = False  # agreed by all processes (a Ctrl-C may reach them at different steps)
        with self.guard.watching():  # Ctrl-C and SIGTERM (also what torchrun sends when it ends a run)
            try:
                while self.step < total and not stop:
                    self.epoch, skip = divmod(self.step, n)
                    bar.set_description(f"epoch {self.epoch}")
                    loader = epoch_loader(dataset, self.args.batch_size, self.args.seed, self.epoch, skip,
                                          self.args.workers, pin_memory=self.device.type == "cuda")
                    for batch in loader:
                        self.epoch_end = (self.step + 1) % n == 0
                        self.last_step = self.step + 1 == total
                        self.guard.keep()  # the last completed step, in case this one fails
                        yield self.step, batch
                        self.guard.in_step = False
                        self.step += 1
                        bar.update()
                        if self.is_main:
                            guide.step_done()
                        stop = distributed.any_rank(self.interrupted)
                        if self.step % self.args.checkpoint_every == 0:
                            self.save()
                        if stop or self.step >= total:
                            break
            finally:
                bar.close()
            self.interrupted = self.interrupted or stop
            self.save()
        self.guard.done()
        skipped = f" ({self.guard.skipped} optimizer steps skipped: non-finite loss)" if self.guard.skipped else ""
        print(f"{'interrupted' if self.interrupted else 'done'} at step {self.step}{skipped}: checkpoint "
              f"{self.dir / checkpoint.NAME}, report {self.dir / 'index.html'}"
              + (f"; continue with: {self.guard.resume_command()}" if self.interrupted else ""))

    def start_random_streams(self):
        """Resuming: every generator back where the checkpoint left it, this process's own under
        torchrun. A fresh run: the nets were built alike everywhere from --seed; from here each
        process draws its own noise and dropout (rank 0 goes on with --seed's stream)."""
        if self.ckpt:
            saved = self.ckpt.get("world_size", 1)
            if saved != self.world and self.is_main:
                print(f"warning: resuming a run of {saved} process(es) with {self.world}: it goes on, but no longer "
                      "bit for bit as the original would have", file=sys.stderr)
            states = self.ckpt.get("rng_ranks", [self.ckpt["rng"]])
            if distributed.rank() < len(states):
                checkpoint.set_rng_state(states[distributed.rank()])
                return
            seed_everything(mix(self.args.seed, distributed.rank(), self.step))
        elif distributed.rank() > 0:
            seed_everything(mix(self.args.seed, distributed.rank()))

    @property
    def sample_due(self):
        """True after every --sample-every steps, at each epoch end and at the last step (also the
        last one of an interrupted run)."""
        return self.is_main and ((self.step + 1) % self.args.sample_every == 0 or self.epoch_end
                                 or self.last_step or self.interrupted)

    def log(self, **losses):
        """Append this step's losses (floats or 0-dim tensors) to losses.jsonl and the progress bar."""
        if not self.is_main:  # each process's own losses; rank 0's are logged
            return
        values = {k: v.item() if torch.is_tensor(v) else float(v) for k, v in losses.items()}
        row = {"step": self.step, "epoch": self.epoch, **values}
        self.rows.append(row)
        with open(self.log_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        self.bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k not in ("step", "epoch")}, refresh=False)

    @property
    def exit_code(self):
        return self.guard.exit_code if self.interrupted else 0  # 130 (Ctrl-C), 143 (SIGTERM), as a shell says


def report():
    """The module minigan.kit.report, imported on first use: `python -m minigan.kit.report` runs it as
    a script, which must not have been imported by the package already (runpy warns)."""
    from . import report as module
    return module


@torch.no_grad()
def generate(G, x, training=False, seed=0):
    """G(x) for looking at, not training: no autograd graph; G's mode is restored afterwards.

    training=False, the usual look: eval mode, i.e. batch norm on its running statistics (a sample
    does not depend on the rest of the batch) and no dropout.

    training=True: G computes as in a training step, batch norm on the statistics of x itself and
    dropout on. That is how pix2pix runs its generator at test time (Isola et al. 2017, sec. 3.3).
    Two things a training step would change stay as they were. Batch norm's running statistics:
    they are copied before and put back after, so val/test images never leak into them. And torch's
    random generators: dropout draws from generators seeded with `seed` inside `seeded_rng`, so the
    training run's random stream, and with it exact resume, is untouched, and the same x always gives
    the same picture.

    >>> G = nn.Sequential(nn.BatchNorm1d(1), nn.Dropout(0.5))      # running mean 0, variance 1
    >>> x = torch.tensor([[1.0], [3.0], [5.0]])
    >>> generate(G, x).view(-1)                  # eval: (x - 0) / 1, no dropout
    tensor([1.0000, 3.0000, 5.0000])
    >>> generate(G, x, training=True).view(-1)   # x's mean 3, std 1.63: -1.22, 0, 1.22; dropped or x2
    tensor([-0.0000, -0.0000, 2.4495])
    >>> G[0].running_mean, G.training            # as they were
    (tensor([0.]), True)
    """
    was_training = G.training
    if not training:
        try:
            return G.eval()(x)
        finally:
            G.train(was_training)
    buffers = [b.clone() for b in G.buffers()]  # batch norm's running statistics and counts
    try:
        with seeded_rng(x.device, seed):
            return G.train()(x)
    finally:
        for b, saved in zip(G.buffers(), buffers):
            b.copy_(saved)
        G.train(was_training)


@contextlib.contextmanager
def seeded_rng(device, seed):
    """Inside: torch's CPU generator and `device`'s seeded with `seed`; after: both as they were."""
    accelerator = device.type != "cpu"
    with torch.random.fork_rng(devices=[device] if accelerator else [],
                               device_type=device.type if accelerator else None):
        torch.random.default_generator.manual_seed(seed)
        if accelerator:
            state = torch.Generator(device).manual_seed(seed).get_state()
            torch.get_device_module(device.type).set_rng_state(state, device)
        yield


# --- the script's entry point ---

def run_main(main, argv=None):
    """Call `main(argv)` and exit with its code; a user's mistake prints one line and exits 2. When
    the training loop was running, the last completed step is written first and the message says
    how to continue (guard.rescue); a bug still prints its traceback."""
    try:
        code = main(sys.argv[1:] if argv is None else argv)
    except MiniganError as e:
        print(f"error: {e}{guard.rescue(e)}", file=sys.stderr)
        sys.exit(2)
    except distributed.ProcessLost as e:  # torchrun: another process died; torchrun ends the run
        print(f"error: {e}{guard.rescue(e)}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as e:  # a second Ctrl-C / SIGTERM, or one outside the training loop
        code = guard.active.exit_code if guard.active else 130
        print(f"interrupted{guard.rescue(e)}", file=sys.stderr)
        sys.exit(code)
    except Exception as e:
        saved = guard.rescue(e)
        traceback.print_exc()
        if saved:
            print(f"error: {type(e).__name__}{saved.replace('; the run', '; so the run', 1)}", file=sys.stderr)
        sys.exit(1)
    distributed.shutdown()
    sys.exit(code or 0)
