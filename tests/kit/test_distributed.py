"""The kit's multi-process pieces that need no second process: sharding an epoch, per-image seeds, the
weight fingerprints, and the one-process no-ops. Several processes under the real torchrun:
tests/scripts/test_torchrun.py."""
import pytest
import torch
from hypothesis import given, strategies as st
from torch import nn

from minigan import kit
from minigan.errors import MiniganError
from minigan.kit import distributed


@given(length=st.integers(0, 40), batch=st.integers(1, 4), world=st.integers(1, 4))
def test_shards_cut_each_step_of_the_big_batch_in_rank_order(length, batch, world):
    order = torch.randperm(length, generator=torch.Generator().manual_seed(length))
    shards = [distributed.shard(order, batch, process=r, world=world) for r in range(world)]
    steps = length // (world * batch)
    assert all(len(s) == steps * batch for s in shards)  # every rank has the same number of steps
    for k in range(steps):  # step k of the N processes = step k of one process with batch N*b
        together = torch.cat([s[k * batch:(k + 1) * batch] for s in shards])
        assert together.tolist() == order[k * world * batch:(k + 1) * world * batch].tolist()


class Jittered(torch.utils.data.Dataset):
    """Item i plus noise from torch, as minigan's random crops and flips draw it."""

    def __len__(self):
        return 12

    def __getitem__(self, i):
        return torch.tensor([float(i), torch.rand(()).item(), torch.randint(0, 2**20, ()).item()])


def test_an_image_is_augmented_alike_in_any_batch():
    by_index = {}
    for batch_size in (1, 2, 4):
        for batch in kit.epoch_loader(Jittered(), batch_size, seed=5, epoch=2):
            for item in batch.tolist():
                by_index.setdefault(item[0], []).append(item)
    assert len(by_index) == 12
    assert all(len(v) == 3 and v[0] == v[1] == v[2] for v in by_index.values())
    assert len({tuple(v[0][1:]) for v in by_index.values()}) == 12  # but each image its own draw


def test_fingerprints_see_one_ulp():
    torch.manual_seed(0)
    a = nn.Linear(4, 3)
    b = nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    assert distributed.fingerprints({"n": a}) == distributed.fingerprints({"n": b})
    with torch.no_grad():
        b.weight[1, 2] = torch.nextafter(b.weight[1, 2], torch.tensor(1.0))
    assert distributed.fingerprints({"n": a}) != distributed.fingerprints({"n": b})


def test_one_process_needs_no_group():
    assert not distributed.launched() and (distributed.rank(), distributed.world_size()) == (0, 1)
    assert distributed.is_main() and kit.is_main()
    w = nn.Parameter(torch.tensor([1.0, 2.0]))
    w.grad = torch.tensor([0.5, -1.0])
    distributed.average_gradients(torch.optim.SGD([w], lr=0.1))
    assert w.grad.tolist() == [0.5, -1.0]
    assert distributed.any_rank(True) and not distributed.any_rank(False)
    assert distributed.all_gather({"x": 1}) == [{"x": 1}] and distributed.broadcast("dir") == "dir"
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    assert distributed.sync_batchnorm(net, torch.device("cpu")) is net
    assert isinstance(net[1], nn.BatchNorm2d)
    distributed.check_replicas({"net": net}, step=3)
    assert distributed.setup(torch.device("cpu")) == torch.device("cpu")


def test_mps_under_torchrun_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(MiniganError, match="mps has no multi-process backend"):
        distributed.setup(torch.device("mps"))
