"""Training on several processes (GPUs, machines) launched by torchrun: data parallel SGD.

    torchrun --nproc_per_node 4 train_cyclegan.py --data horse2zebra        # 4 GPUs of one machine
    torchrun --nnodes 2 --node_rank R --rdzv_endpoint HOST:PORT --nproc_per_node 8 train_....py ...

torchrun starts the script N times and gives each copy RANK (0..N-1), LOCAL_RANK (its GPU on its
machine) and WORLD_SIZE = N in the environment; without torchrun none of this runs and a script is
one process, as before. Every process holds the same nets. Each step, process r takes its own b
images of the step's N*b (`shard`), computes the gradient of its mean loss, and the N gradients are
averaged (`average_gradients`) before every process takes the same optimizer step:

    (1/N) sum_r  grad (1/b) sum_{i in batch r} loss_i  =  grad (1/(N b)) sum_{all i} loss_i

the gradient one process computes on the whole batch of N*b. So N processes x batch b train exactly
as one process with batch N*b (up to float rounding) when a net treats images independently
(instance norm, no dropout); batch norm normalizes over each process's b images (the reference's
behaviour; SyncBatchNorm over all N*b with --sync-bn), and noise and dropout are drawn per process.

The backend is NCCL on CUDA (process r on GPU LOCAL_RANK), gloo on CPU. Only rank 0 writes files
and prints (`is_main`). If a process dies, the others' next collective fails (`ProcessLost`) and
they stop with one line naming it; torchrun then ends the run.

>>> rank(), world_size(), is_main()        # one process, no torchrun
(0, 1, True)
>>> shard(torch.arange(10), batch_size=2).tolist()    # world of 1: the whole order, tail dropped
[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
"""
import datetime
import hashlib
import os
import sys
import time

import torch
import torch.distributed as dist

from ..errors import MiniganError

# How long a collective waits for a slow process before failing (a dead one fails it at once). The
# longest wait in a healthy run is rank 0 writing a checkpoint, a loss plot and a sample grid.
TIMEOUT = datetime.timedelta(minutes=10)


class ProcessLost(Exception):
    """Another process of the run stopped (crashed, killed): this one cannot go on."""


def launched():
    """True in a process started by torchrun (it sets WORLD_SIZE)."""
    return "WORLD_SIZE" in os.environ


def setup(device):
    """Join torchrun's process group (once) and return this process's device: cuda:LOCAL_RANK for a
    CUDA `device` (NCCL), else `device` itself (gloo, CPU). Without torchrun: `device`, unchanged.
    Processes other than rank 0 print nothing (their stdout goes to /dev/null; errors still show)."""
    if not launched():
        return device
    if device.type == "mps":
        raise MiniganError("torchrun: Apple's mps has no multi-process backend; use --device cpu or cuda")
    if device.type == "cuda":
        local = int(os.environ["LOCAL_RANK"])
        if local >= torch.cuda.device_count():
            raise MiniganError(f"torchrun: process {local} of this machine, but it has {torch.cuda.device_count()} "
                               "GPU(s): one process per GPU (--nproc_per_node), or --device cpu")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT,
                                device_id=device if device.type == "cuda" else None)
    if not is_main():
        sys.stdout = open(os.devnull, "w")
    return device


def shutdown():
    """Leave the process group at the end of a run (a no-op without one)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def rank():
    """This process's number, 0..world_size()-1 (0 without torchrun)."""
    return dist.get_rank() if dist.is_initialized() else 0


def world_size():
    """How many processes train together (1 without torchrun)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main():
    """True in the one process that writes checkpoints, logs, grids, plots and reports, and prints."""
    return rank() == 0


# --- the data ---

def shard(order, batch_size, process=None, world=None):
    """Process number `process`'s part (default: this one's) of an epoch's `order` (a 1-D tensor of indices),
    `batch_size` per step, among `world` processes (default: the run's).

    Step k of the epoch covers order[k*N*b : (k+1)*N*b], the batch one process with batch N*b would
    take; process r takes the r-th b of them. The tail that fills no whole step is dropped, so every
    process has the same number of steps. With N = 2, b = 2:

    >>> order = torch.tensor([9, 4, 1, 7, 0, 3, 8, 5, 2, 6])     # steps: 9 4 1 7 | 0 3 8 5 | (2 6)
    >>> shard(order, 2, process=0, world=2).tolist(), shard(order, 2, process=1, world=2).tolist()
    ([9, 4, 0, 3], [1, 7, 8, 5])
    """
    r = rank() if process is None else process
    n = world_size() if world is None else world
    steps = len(order) // (n * batch_size)
    return order[:steps * n * batch_size].view(steps, n, batch_size)[:, r].reshape(-1)


# --- the nets ---

def average_gradients(optimizer):
    """Replace the gradient of every parameter `optimizer` updates by its mean over the processes.

    One flat all-reduce (sum) of the gradients, divided by N. The processes run the same code, so
    the same parameters have gradients everywhere (a parameter without one, e.g. in a net the step
    left out, is skipped by every process alike)."""
    if world_size() == 1:
        return
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    with collective("averaging gradients"):
        dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def sync_batchnorm(net, device):
    """--sync-bn: `net`'s BatchNorm layers normalize over the whole effective batch (all processes'
    images), in place; the optimizer's parameters stay the same objects. A no-op for one process."""
    if world_size() == 1:
        return net
    if device.type != "cuda":
        raise MiniganError("--sync-bn: torch's SyncBatchNorm runs on CUDA only; drop it on CPU "
                           "(batch norm then uses each process's images)")
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)


def fingerprints(nets):
    """{name: SHA-256 of the net's parameters}: equal on two processes iff their weights are identical."""
    out = {}
    for name, net in nets.items():
        h = hashlib.sha256()
        for p in net.parameters():
            h.update(p.detach().cpu().contiguous().numpy().tobytes())
        out[name] = h.hexdigest()
    return out


def check_replicas(nets, step):
    """Every process holds the same weights as rank 0 (buffers such as batch norm's running
    statistics may differ: they follow each process's images). MiniganError naming the first net
    and rank that differ: the processes must never drift apart."""
    if world_size() == 1:
        return
    everyone = all_gather(fingerprints(nets))
    for r, prints in enumerate(everyone):
        for name in prints:
            if prints[name] != everyone[0][name]:
                raise MiniganError(f"after step {step}, rank {r}'s {name} differs from rank 0's: the "
                                   "processes drifted apart (their gradients were not averaged alike)")


# --- agreeing, gathering ---

def any_rank(flag):
    """True on every process if `flag` is true on any (e.g. a Ctrl-C that reached only some)."""
    if world_size() == 1:
        return flag
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([int(flag)], device=device)
    with collective("agreeing to stop"):
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def all_gather(obj):
    """[obj of rank 0, obj of rank 1, ...] on every process (any picklable object)."""
    if world_size() == 1:
        return [obj]
    out = [None] * world_size()
    with collective("gathering"):
        dist.all_gather_object(out, obj)
    return out


def broadcast(obj):
    """Rank 0's `obj` on every process."""
    if world_size() == 1:
        return obj
    box = [obj]
    with collective("broadcasting"):
        dist.broadcast_object_list(box, src=0)
    return box[0]


class collective:
    """Around a collective: if it fails (a process is gone), raise ProcessLost with one line that
    names the ranks that no longer answer."""

    def __init__(self, what):
        self.what = what

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if kind is None or not issubclass(kind, RuntimeError):
            return False
        gone = missing_ranks()
        who = (f"rank {', '.join(map(str, gone))} stopped" if gone else "another process stopped")
        raise ProcessLost(f"rank {rank()} of {world_size()}: {who} (crashed or killed: see its own output) "
                          f"while {self.what}; stopping, the last checkpoint is kept") from None


def missing_ranks(wait=2.0):
    """The ranks that do not answer within `wait` seconds, asked through torchrun's key-value store
    (it lives in torchrun's own process, so it outlives the workers). Each process that gets here
    says it is alive, then waits for the others' word."""
    try:
        store = dist.distributed_c10d._get_default_store()
        store.set(f"minigan-alive/{rank()}", "1")
        deadline = time.monotonic() + wait
        while True:
            gone = [r for r in range(world_size()) if not store.check([f"minigan-alive/{r}"])]
            if not gone or time.monotonic() > deadline:
                return gone
            time.sleep(0.1)
    except Exception:  # the store is gone too: nobody left to ask
        return []
