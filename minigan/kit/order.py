"""The data order: each epoch's batches a function of (seed, epoch) alone, each image loaded under
its own seed, so that a resumed run (or a run under torchrun) sees exactly the images, and the
augmentations, of an uninterrupted one.
"""
import random
import signal

import numpy as np
import torch

from . import distributed


def epoch_loader(dataset, batch_size, seed, epoch, skip=0, workers=0, pin_memory=False):
    """The batches of one epoch, a function of (seed, epoch) only; `skip` drops the first ones.

    The last incomplete batch is dropped, on purpose: every step sees `batch_size` images. A batch of
    a few leftovers would give batch norm the statistics of a handful of images and, Adam's step size
    being nearly independent of the gradient's scale, move the weights as far as a full batch does.
    The reference code and the DCGAN tutorial keep that batch; at their batch size 1 (pix2pix,
    CycleGAN) nothing is dropped, at DCGAN's 128 at most 127 images an epoch sit out, different ones
    each epoch (the order is reshuffled). An epoch is thus len(dataset) // batch_size steps, which
    the resume arithmetic (step -> epoch and batch) rests on. Under torchrun each process gets its
    share of every step's images (distributed.shard), the tail that fills no whole step dropped.

    >>> data = torch.arange(10)
    >>> full = [b.tolist() for b in epoch_loader(data, 3, seed=0, epoch=0)]
    >>> resumed = [b.tolist() for b in epoch_loader(data, 3, seed=0, epoch=0, skip=2)]
    >>> len(full), resumed == full[2:]
    (3, True)
    """
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(mix(seed, epoch)))
    return torch.utils.data.DataLoader(
        SeededBatches(dataset, mix(seed, epoch)), batch_size=batch_size,
        sampler=distributed.shard(order, batch_size)[skip * batch_size:].tolist(), drop_last=True, num_workers=workers,
        worker_init_fn=seed_worker, pin_memory=pin_memory,
        # with a generator of its own the loader draws nothing from torch's global RNG
        generator=torch.Generator().manual_seed(mix(seed, epoch)))


def mix(*numbers):
    """One 63-bit seed from several integers (a polynomial hash: different tuples, different seeds)."""
    h = 0
    for n in numbers:
        h = (h * 1_000_003 + int(n)) % 2**63
    return h


class SeededBatches(torch.utils.data.Dataset):
    """`dataset`, but each image is loaded with torch's generator seeded by the epoch's seed and its
    index, so its random augmentation (minigan's datasets draw it from torch) is the same whichever
    process loads it, in whichever batch, and whether the run was resumed. Python's and numpy's
    generators, for datasets that draw from them, are seeded per batch (seeding them for each image
    cost more than loading an MNIST digit). The caller's RNG is left untouched."""

    def __init__(self, dataset, seed):
        self.dataset, self.seed = dataset, seed

    def __len__(self):
        return len(self.dataset)

    def __getitems__(self, indices):  # the DataLoader fetches a whole batch through this
        seed = mix(self.seed, indices[0], len(indices))  # an epoch's batches all start at different indices
        state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            random.seed(seed)
            np.random.seed(seed % 2**32)
            items = []
            for i in indices:  # torch's CPU generator (torch.manual_seed, which seeds the GPUs too, is 100x slower)
                torch.default_generator.manual_seed(mix(self.seed, i))
                items.append(self.dataset[i])
        random.setstate(state[0])
        np.random.set_state(state[1])
        return items

    def __getitem__(self, index):
        return self.__getitems__([index])[0]


def seed_worker(worker_id):
    """Seed numpy/python in a DataLoader worker from its torch seed, and leave Ctrl-C to the main
    process (which finishes the step and writes a checkpoint)."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a scheduler signals the whole job: the main process ends it
