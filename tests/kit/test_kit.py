"""The shared training kit: checkpoints, RNG, data order, the run loop, image pool, LR schedule, init."""
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from PIL import Image
from torch import nn

import minigan
from minigan import kit
from minigan.kit import checkpoint
from minigan.errors import MiniganError
from minigan.kit.image_pool import ImagePool
from minigan.kit import cpu_guide
from minigan.kit.plot import plot_losses, split_columns

ROOT = Path(__file__).resolve().parents[2]


def tiny_state():
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = kit.linear_decay_lr(opt, 2, 2)
    net(torch.randn(5, 3)).sum().backward()
    opt.step(), sched.step()
    return net, opt, sched


# --- checkpoint files ---

def test_checkpoint_round_trip_with_weights_only(tmp_path):
    net, opt, sched = tiny_state()
    pool = ImagePool(2)
    pool.query(torch.randn(3, 1, 2, 2))
    path = checkpoint.save_checkpoint(tmp_path / "c.pt", checkpoint.capture(
        {"net": net, "opt": opt, "sched": sched, "pool": pool}, step=5, args={"out": Path("x"), "lr": 0.1},
        extra={"note": [1, 2]}))
    torch.load(path, weights_only=True)  # must not need pickled code
    ckpt = checkpoint.load_checkpoint(path)
    assert ckpt["step"] == 5 and ckpt["args"] == {"out": "x", "lr": 0.1} and ckpt["extra"] == {"note": [1, 2]}
    net2, opt2, sched2 = tiny_state()
    pool2 = ImagePool(2)
    checkpoint.restore(ckpt, {"net": net2, "opt": opt2, "sched": sched2, "pool": pool2})
    for a, b in zip(net.state_dict().values(), net2.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], opt2.state_dict()["state"][0]["exp_avg"])
    assert sched2.last_epoch == sched.last_epoch and sched2.get_last_lr() == sched.get_last_lr()
    assert all(torch.equal(a, b) for a, b in zip(pool.images, pool2.images))


def test_rng_state_round_trip_through_a_file(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.randn()  # leaves a cached gaussian in numpy's state
    path = checkpoint.save_checkpoint(tmp_path / "c.pt", checkpoint.capture({}, 0))
    first = (random.random(), np.random.randn(3).tolist(), torch.rand(3).tolist())
    checkpoint.set_rng_state(checkpoint.load_checkpoint(path)["rng"])
    assert (random.random(), np.random.randn(3).tolist(), torch.rand(3).tolist()) == first


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign", "empty"])
def test_damaged_checkpoint_is_a_clear_error(tmp_path, damage):
    path = checkpoint.save_checkpoint(tmp_path / "checkpoint.pt", checkpoint.capture({"net": nn.Linear(50, 50)}, 1))
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": os.urandom(1000), "empty": b"",
                      "foreign": b""}[damage])
    if damage == "foreign":
        torch.save({"model": nn.Linear(2, 2).state_dict()}, path)
    with pytest.raises(MiniganError) as e:
        checkpoint.load_checkpoint(tmp_path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_missing_checkpoint_and_mismatched_net(tmp_path):
    with pytest.raises(MiniganError, match="no checkpoint"):
        checkpoint.load_checkpoint(tmp_path)
    ckpt = checkpoint.capture({"net": nn.Linear(2, 3)}, 1)
    with pytest.raises(MiniganError, match="does not match"):
        checkpoint.restore(ckpt, {"net": nn.Linear(2, 4)})
    with pytest.raises(MiniganError, match="no state for 'opt'"):
        checkpoint.restore(ckpt, {"opt": torch.optim.SGD(nn.Linear(2, 3).parameters(), lr=1)})


def test_failed_write_keeps_the_old_checkpoint_and_no_temp_file(tmp_path, monkeypatch):
    path = checkpoint.save_checkpoint(tmp_path / "checkpoint.pt", checkpoint.capture({}, step=1))

    def dies_midway(obj, f):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_checkpoint(path, checkpoint.capture({}, step=2))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
    assert checkpoint.load_checkpoint(path)["step"] == 1


def test_kill_9_while_writing_never_breaks_the_checkpoint(tmp_path):
    """A process rewriting a 4 MB checkpoint in a loop is killed at once: the file still loads."""
    code = ("import sys, torch; from minigan.kit import checkpoint\n"
            "w = torch.randn(1024, 1024)\n"
            "for i in range(10**6):\n"
            "    checkpoint.save_checkpoint(sys.argv[1], checkpoint.capture({}, i, extra={'w': w}))\n"
            "    print(i, flush=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "checkpoint.pt")], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    for _ in range(3):  # let it finish a few writes, so the kill lands in the middle of one
        proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert checkpoint.load_checkpoint(tmp_path)["step"] >= 2
    checkpoint.save_checkpoint(tmp_path / "checkpoint.pt", checkpoint.capture({}, 0))  # cleans stale temps
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


# --- seeding, device, init ---

def test_seed_everything_is_deterministic():
    draws = []
    for _ in range(2):
        kit.seed_everything(123)
        draws.append((random.random(), np.random.rand(), torch.rand(2).tolist()))
    assert draws[0] == draws[1]
    kit.seed_everything(124)
    assert (random.random(), np.random.rand(), torch.rand(2).tolist()) != draws[0]


def test_pick_device():
    assert kit.pick_device("cpu") == torch.device("cpu")
    assert kit.pick_device("auto").type in ("cuda", "mps", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(MiniganError, match="--device cuda"):
            kit.pick_device("cuda")


@pytest.mark.parametrize("layer", [lambda: nn.Linear(500, 400), lambda: nn.Conv2d(64, 64, 7),
                                   lambda: nn.ConvTranspose2d(64, 64, 7),
                                   lambda: minigan.ConvTranspose2d(64, 64, 7)])
def test_init_weights_conv_linear(layer):
    torch.manual_seed(0)
    module = layer()
    with torch.no_grad():
        module.bias.fill_(1.0)
    module.apply(kit.init_weights)
    w = module.weight.detach()
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 5e-4
    assert torch.all(module.bias == 0)


@pytest.mark.parametrize("norm", [nn.BatchNorm2d, nn.BatchNorm1d, lambda n: nn.InstanceNorm2d(n, affine=True)])
def test_init_weights_norm(norm):
    torch.manual_seed(0)
    module = nn.Sequential(norm(100_000))
    module.apply(kit.init_weights)
    w, b = module[0].weight.detach(), module[0].bias.detach()
    assert abs(w.mean().item() - 1) < 1e-3 and abs(w.std().item() - 0.02) < 5e-4 and torch.all(b == 0)


# --- data order ---

class Jittered(torch.utils.data.Dataset):
    """Item i plus random noise drawn from torch, numpy and python (like a random crop would)."""

    def __len__(self):
        return 23

    def __getitem__(self, i):
        return torch.tensor([float(i), torch.rand(()).item(), np.random.rand(), random.random()])


def batches(loader):
    return [b.tolist() for b in loader]


def test_epoch_order_depends_on_seed_and_epoch_and_skip_is_a_suffix():
    data = Jittered()
    full = batches(kit.epoch_loader(data, 4, seed=1, epoch=3))
    assert len(full) == 5 and all(len(b) == 4 for b in full)  # 23 // 4, the rest dropped
    assert batches(kit.epoch_loader(data, 4, seed=1, epoch=3)) == full
    assert batches(kit.epoch_loader(data, 4, seed=1, epoch=3, skip=3)) == full[3:]
    assert batches(kit.epoch_loader(data, 4, seed=1, epoch=4)) != full
    assert batches(kit.epoch_loader(data, 4, seed=2, epoch=3)) != full
    indices = sorted(int(x[0]) for b in full for x in b)
    assert len(set(indices)) == 20  # a permutation: no index twice


def test_loading_leaves_the_callers_rng_alone_and_workers_load_the_same():
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    expected = (torch.rand(()).item(), np.random.rand(), random.random())
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    alone = batches(kit.epoch_loader(Jittered(), 4, seed=1, epoch=0))
    assert (torch.rand(()).item(), np.random.rand(), random.random()) == expected
    assert batches(kit.epoch_loader(Jittered(), 4, seed=1, epoch=0, workers=2)) == alone
    assert batches(kit.epoch_loader(Jittered(), 4, seed=1, epoch=0, skip=2, workers=2)) == alone[2:]


# --- the run ---

class Toy(torch.utils.data.Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        return torch.full((3,), float(i)) + torch.rand(3)  # random "augmentation"


def toy_main(argv):
    """A complete little training script on the kit: dropout, noise, an image pool, a scheduler."""
    parser = kit.parser("toy")
    parser.add_argument("--width", type=int, default=8)
    kit.add_common_args(parser, batch_size=3, lr=0.01, beta1=0.5, epochs=3, sample_every=2, checkpoint_every=2)
    args, ckpt = kit.parse_args(parser, argv)
    run = kit.Run("toy", args, ckpt, data_name="toy")
    net = nn.Sequential(nn.Linear(3, args.width), nn.Dropout(0.5), nn.Linear(args.width, 1))
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    sched = kit.linear_decay_lr(opt, 2, 2)  # epochs at 1, 2/3, 1/3 (then 0) of the LR
    pool = ImagePool(4)
    run.track(net=net, opt=opt, sched=sched, pool=pool)
    samples = []
    for step, x in run.batches(Toy()):
        x = pool.query(x + torch.randn_like(x))
        loss = net(x).pow(2).mean()
        opt.zero_grad(), loss.backward(), opt.step()
        run.log(loss=loss, lr=opt.param_groups[0]["lr"])
        if run.epoch_end:
            sched.step()
        if os.environ.get("TOY_INTERRUPT_AT") == str(step):
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of a step
        if run.sample_due:
            samples.append(step)
    toy_main.net, toy_main.samples, toy_main.run = net, samples, run
    return run.exit_code


def read_log(folder):
    return [json.loads(line) for line in (Path(folder) / "losses.jsonl").read_text().splitlines()]


def test_run_writes_log_plot_checkpoint_and_samples_on_schedule(tmp_path):
    assert toy_main(["--out", str(tmp_path)]) == 0
    rows = read_log(tmp_path)
    assert [r["step"] for r in rows] == list(range(9)) and [r["epoch"] for r in rows] == [0] * 3 + [1] * 3 + [2] * 3
    assert [r["lr"] for r in rows] == [0.01] * 3 + [pytest.approx(0.01 * 2 / 3)] * 3 + [pytest.approx(0.01 / 3)] * 3
    assert toy_main.samples == [1, 2, 3, 5, 7, 8]  # every 2 steps, each epoch end (steps 2, 5, 8), the last
    assert checkpoint.load_checkpoint(tmp_path)["step"] == 9
    assert Image.open(tmp_path / "losses.png").size == (1200, 800)
    assert (tmp_path / "index.html").exists()
    (invocation,) = json.loads((tmp_path / "run.json").read_text())["invocations"]
    assert invocation["command"] == f"python train_toy.py --out {tmp_path}" and invocation["world_size"] == 1


def test_resume_reproduces_an_uninterrupted_run_exactly(tmp_path):
    assert toy_main(["--out", str(tmp_path / "straight"), "--width", "6"]) == 0
    straight, net = read_log(tmp_path / "straight"), toy_main.net
    assert toy_main(["--out", str(tmp_path / "split"), "--max-steps", "4", "--width", "6"]) == 0
    # resume mid-epoch (step 4 of 3-step epochs); the run keeps its own config (--width 6), but not the
    # first invocation's --max-steps: that limit belongs to one invocation, so the run goes on to --epochs
    assert toy_main(["--resume", str(tmp_path / "split")]) == 0
    assert toy_main.run.dir == tmp_path / "split" and toy_main.run.args.width == 6
    assert read_log(tmp_path / "split") == straight
    for a, b in zip(net.state_dict().values(), toy_main.net.state_dict().values()):
        assert torch.equal(a, b)


def test_resume_drops_log_rows_after_the_checkpoint(tmp_path):
    toy_main(["--out", str(tmp_path), "--max-steps", "4", "--checkpoint-every", "2"])
    with open(tmp_path / "losses.jsonl", "a") as f:  # what a killed run leaves: rows past the checkpoint
        f.write(json.dumps({"step": 4, "epoch": 1, "loss": 9.0}) + "\n" + '{"step": 5, "ep')
    toy_main(["--resume", str(tmp_path / "checkpoint.pt"), "--max-steps", "6"])
    rows = read_log(tmp_path)
    assert [r["step"] for r in rows] == list(range(6)) and rows[4]["loss"] != 9.0


def test_ctrl_c_finishes_the_step_saves_and_exits_130(tmp_path, monkeypatch):
    monkeypatch.setenv("TOY_INTERRUPT_AT", "4")
    assert toy_main(["--out", str(tmp_path)]) == 130
    assert checkpoint.load_checkpoint(tmp_path)["step"] == 5 and len(read_log(tmp_path)) == 5
    assert toy_main.samples == [1, 2, 3, 4]  # the interrupted step ends with a sample too
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler put back


def test_explicit_flags_win_over_the_checkpoints(tmp_path):
    toy_main(["--out", str(tmp_path), "--max-steps", "2", "--lr", "0.5"])
    parser = kit.parser("toy")
    parser.add_argument("--width", type=int, default=8)
    kit.add_common_args(parser, batch_size=3, lr=0.01, beta1=0.5, epochs=3)
    args, ckpt = kit.parse_args(parser, ["--resume", str(tmp_path), "--epochs", "7"])
    # saved flags come back, flags given now win; session flags (--max-steps, --out) are not restored
    assert args.lr == 0.5 and args.epochs == 7 and args.max_steps is None and args.out is None
    assert ckpt["step"] == 2


def test_bad_flags_exit_2_with_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        toy_main(["--batch-size", "0"])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_run_main_turns_user_mistakes_into_exit_2(capsys):
    def fails(argv):
        raise MiniganError("no data at /nowhere: pass --data")
    with pytest.raises(SystemExit) as e:
        kit.run_main(fails, [])
    assert e.value.code == 2 and capsys.readouterr().err == "error: no data at /nowhere: pass --data\n"
    with pytest.raises(SystemExit) as e:
        kit.run_main(lambda argv: 0, [])
    assert e.value.code == 0


def test_too_little_data_is_a_clear_error(tmp_path):
    with pytest.raises(MiniganError, match="fewer than --batch-size 11"):
        toy_main(["--out", str(tmp_path), "--batch-size", "11"])


# --- image pool ---

@given(st.integers(0, 5), st.lists(st.integers(1, 4), min_size=1, max_size=6), st.integers(0, 2**31))
def test_image_pool_only_swaps_images(size, batch_sizes, seed):
    """Whatever the coin flips: the images that fill the pool pass straight through (and are kept);
    after that images are only swapped: out + pool after == pool before + new (as multisets)."""
    torch.manual_seed(seed)
    pool, counter = ImagePool(size), 0
    for n in batch_sizes:
        new = torch.arange(counter, counter + n, dtype=torch.float32).view(n, 1, 1, 1)
        counter += n
        before = [x.item() for x in pool.images]
        kept = new.flatten().tolist()[:max(0, size - len(before))]  # stored while filling
        out = pool.query(new)
        assert out.shape == new.shape and len(pool.images) == min(size, len(before) + n)
        assert torch.equal(out[:len(kept)], new[:len(kept)])
        assert (sorted(out.flatten().tolist() + [x.item() for x in pool.images])
                == sorted(before + new.flatten().tolist() + kept))


def test_image_pool_returns_an_old_image_half_the_time():
    torch.manual_seed(0)
    pool = ImagePool(50)
    pool.query(-torch.ones(50, 1, 1, 1))  # full
    new = torch.arange(2000.0).view(-1, 1, 1, 1).requires_grad_()
    out = pool.query(new)
    assert not out.requires_grad
    assert 0.45 < (out != new).float().mean().item() < 0.55  # p = 1/2


def test_image_pool_state_dict_checks_size():
    with pytest.raises(ValueError):
        ImagePool(3).load_state_dict(ImagePool(2).state_dict())
    with pytest.raises(ValueError):
        ImagePool(-1)


# --- LR schedule, plot ---

def epoch_lrs(epochs, epochs_decay, lr=2.0, n=None):
    """The LR of each epoch under kit.linear_decay_lr, stepped at each epoch's end as the scripts do."""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    sched = kit.linear_decay_lr(opt, epochs, epochs_decay)
    lrs = []
    for _ in range(n or epochs + epochs_decay):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step(), sched.step()
    return lrs


def test_linear_decay_is_the_references_sequence_for_100_plus_100():
    # By hand from the reference (scheduler stepped at the start of every epoch, epoch_count 1):
    # 1-based epoch k runs at 1 - max(0, k + 1 - 100) / 101, so k = 1..99 at 1, k = 100 at 100/101,
    # k = 101 at 99/101, ..., k = 199 at 1/101, k = 200 at 0.
    lrs = epoch_lrs(100, 100, lr=1.0, n=202)
    assert lrs[:99] == [1.0] * 99
    table = {99: 100 / 101, 100: 99 / 101, 101: 98 / 101, 149: 50 / 101, 198: 1 / 101, 199: 0.0}
    assert {e: lrs[e] for e in table} == pytest.approx(table, abs=1e-12)
    assert lrs[200:] == [0.0, 0.0]  # after the last epoch: 0, never negative
    assert sum(lrs[:200]) == pytest.approx(149.0)  # in units of the initial LR (the paper's prose: 150)


def test_linear_decay_small_tables():
    assert epoch_lrs(2, 3) == pytest.approx([2.0, 1.5, 1.0, 0.5, 0.0])
    assert epoch_lrs(1, 2) == pytest.approx([4 / 3, 2 / 3, 0.0])
    assert epoch_lrs(3, 0) == [2.0, 2.0, 0.0]  # as in the reference, the last epoch runs at 0


@given(st.integers(1, 20), st.integers(0, 20))
def test_linear_decay_values(epochs, epochs_decay):
    lrs = epoch_lrs(epochs, epochs_decay)
    assert lrs[:epochs - 1] == [2.0] * (epochs - 1)  # constant for all but the last of --epochs ...
    expected = [2.0 * (epochs_decay - i) / (epochs_decay + 1) for i in range(epochs_decay + 1)]
    assert lrs[epochs - 1:] == pytest.approx(expected)  # ... then one step of 2/(decay+1) per epoch, to 0
    assert lrs[-1] == 0.0


def test_plot_losses_draws_each_line_and_d_g_metrics_apart(tmp_path):
    rows = [{"step": s, "epoch": s // 100, "d_a": 0.2 + 0.1 * np.sin(s), "d_b": 0.3, "g_gan": 3.0, "g_cycle": 1.0,
             "g_idt": 0.5} for s in range(500)]
    for e in range(5):
        rows[100 * e + 99]["test_cycle_a"] = 0.3 - 0.01 * e
    assert split_columns(rows) == (["d_a", "d_b"], ["g_gan", "g_cycle", "g_idt"], [], ["test_cycle_a"])
    image = Image.open(plot_losses(rows, tmp_path / "l.png")).convert("RGB")
    assert image.size == (1200, 800)
    pixels = np.asarray(image)
    colors = lambda part: {tuple(c) for c in part.reshape(-1, 3).tolist()}  # noqa: E731
    tab10 = [(31, 119, 180), (255, 127, 14), (44, 160, 44)]  # matplotlib's C0, C1, C2
    d_panel, g_panel = colors(pixels[:450, :600]), colors(pixels[:450, 600:])
    assert set(tab10[:2]) <= d_panel and tab10[2] not in d_panel  # D's two losses on the left ...
    assert set(tab10) <= g_panel                                  # ... G's three on the right
    assert tab10[0] in colors(pixels[520:, :])                    # the metric in a panel of its own
    assert Image.open(plot_losses([], tmp_path / "empty.png")).size == (1200, 800)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.png", "l.png"]  # no temporary files


def test_cpu_guide_prints_once_when_a_cpu_run_takes_hours(monkeypatch, capsys):
    clock = iter(range(0, 10**6, 36))  # each call 36 s after the last: 3 steps timed, 12 s a step
    monkeypatch.setattr(cpu_guide.time, "perf_counter", lambda: next(clock))
    args = argparse.Namespace(data="horse2zebra")
    for device, steps, script, printed in ((torch.device("cpu"), 266_800, "cyclegan", True),
                                           (torch.device("cpu"), 800, "cyclegan", False),      # under 3 hours
                                           (torch.device("cuda"), 266_800, "cyclegan", False),  # not the CPU
                                           (torch.device("cpu"), 266_800, "mnist", False)):      # no recipe
        guide = cpu_guide.CpuGuide(script, args, device, steps)
        for _ in range(10):
            guide.step_done()
        out = capsys.readouterr().out
        assert (out.count("note: on this CPU") == 1) == printed, (device, steps, script, out)
        if printed:
            assert "889 hours" in out and "--image-size 64 --ngf 16" in out and "--data horse2zebra" in out


# --- looking at a generator ---

def test_generate_in_eval_and_in_training_mode():
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 2))
    G(torch.randn(16, 4))  # running statistics away from (0, 1)
    x = torch.randn(6, 4)
    buffers, state = [b.clone() for b in G.buffers()], torch.get_rng_state()
    with torch.no_grad():
        expected_eval = G.eval()(x)
        torch.manual_seed(5)
        expected_train = G.train()(x)  # batch statistics of x and dropout, from seed 5
    for b, saved in zip(G.buffers(), buffers):  # undo the running-statistics update of that call
        b.copy_(saved)
    torch.set_rng_state(state)

    assert torch.equal(kit.generate(G, x), expected_eval) and G.training
    y = kit.generate(G, x, training=True, seed=5)
    assert torch.equal(y, expected_train) and not y.requires_grad
    assert not torch.equal(y, kit.generate(G, x, training=True, seed=6))  # other dropout masks
    assert torch.equal(y, kit.generate(G.eval(), x, training=True, seed=5)) and not G.training  # mode restored
    # neither the running statistics nor the training run's random stream moved
    assert all(torch.equal(b, saved) for b, saved in zip(G.buffers(), buffers))
    assert torch.equal(torch.get_rng_state(), state)


def test_generate_restores_the_mode_when_G_fails():
    G = nn.Sequential(nn.BatchNorm1d(3))
    for training in (False, True):
        with pytest.raises(RuntimeError):
            kit.generate(G, torch.randn(2, 5), training=training)  # 5 features for 3 channels
        assert G.training and G[0].num_batches_tracked == 0
