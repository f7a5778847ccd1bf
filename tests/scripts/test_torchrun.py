"""The scripts under torchrun: 2 processes on CPU (gloo), launched through the real
`python -m torch.distributed.run`, on small real datasets and tiny nets.

- CycleGAN (pools off) and pix2pix (instance norm, the toy U-Net: no dropout), 2 processes x batch 1
  against 1 process x batch 2 from the same seed: the same gradients and weights (tolerances below).
- MNIST and DCGAN, whose batch norm and dropout and noise are per process: with --checkpoint-every 1
  the kit checks after every step that every rank's weights are identical to rank 0's (a run whose
  ranks drift apart fails), and a resumed 2-process run reproduces the uninterrupted one bit for bit.
- A rank killed with kill -9 ends the run in bounded time, exit != 0, one line naming the rank, the
  last checkpoint intact; Ctrl-C stops both ranks after the same step, with a checkpoint.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from minigan.kit import checkpoint

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the scripts live at the top of the repository
import train_cyclegan  # noqa: E402
import train_dcgan  # noqa: E402
import train_pix2pix  # noqa: E402
from script_checks import assert_same_state, link_subset, read_log as log  # noqa: E402

pytestmark = pytest.mark.slow
CPU = ["--device", "cpu", "--threads", "1", "--sample-every", "100", "--checkpoint-every", "100"]


def torchrun(script, *flags, timeout=300):
    """`python -m torch.distributed.run --standalone --nproc_per_node 2 script flags` (a free port)."""
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(ROOT / script), *map(str, flags)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})


def ok(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def first_moments(ckpt, opt):
    """Adam's exp_avg for each parameter: after the first step it is (1 - beta1) * the gradient used."""
    return [s["exp_avg"] for _, s in sorted(ckpt["state"][opt]["state"].items())]


def assert_same_gradients(one, two, opt):
    """The gradients the 2 processes averaged equal the batch-2 ones to float32 rounding: |diff| at
    most 1e-5 of the largest gradient of the optimizer's nets (measured: up to 8e-6; biases that
    instance norm cancels have gradients at the rounding level, ~1e-7, and match only at that level)."""
    a, b = first_moments(one, opt), first_moments(two, opt)
    scale = max(m.abs().max() for m in a)
    for x, y in zip(a, b):
        torch.testing.assert_close(y, x, rtol=0, atol=1e-5 * scale)


@pytest.fixture(scope="module")
def horses(data_root, tmp_path_factory):
    return link_subset(data_root / "horse2zebra", tmp_path_factory.mktemp("data") / "h2z",
                       {"trainA": 4, "trainB": 3, "testA": 1, "testB": 1})


@pytest.fixture(scope="module")
def facades(data_root, tmp_path_factory):
    return link_subset(data_root / "facades", tmp_path_factory.mktemp("data") / "facades",
                       {"train": 4, "val": 1, "test": 1})


def test_cyclegan_two_processes_are_one_with_twice_the_batch(horses, tmp_path):
    # 4 images: 2 steps an epoch at batch 2 (or 2 x 1); epoch 2 decays the LR to 0.5x
    flags = ["--data", horses, "--image-size", "32", "--ngf", "8", "--ndf", "8", "--n-blocks", "2",
             "--n-layers-d", "2", "--pool-size", "0", "--epochs", "1", "--epochs-decay", "1", *CPU]
    one, two = tmp_path / "one", tmp_path / "two"
    assert train_cyclegan.main([*map(str, flags), "--batch-size", "2", "--out", str(one), "--max-steps", "1"]) == 0
    ok(torchrun("train_cyclegan.py", *flags, "--batch-size", "1", "--out", two, "--max-steps", "1"))
    a, b = checkpoint.load_checkpoint(one), checkpoint.load_checkpoint(two)
    assert (b["world_size"], b["effective_batch_size"], len(b["rng_ranks"])) == (2, 2, 2)
    for nets, opt in ((("G_AB", "G_BA"), "opt_g"), (("D_A", "D_B"), "opt_d")):
        assert_same_gradients(a, b, opt)
        # Adam's first step is lr * g / (|g| + 1e-8), lr * sign(g) unless |g| is at the rounding
        # level: wherever |g| exceeds 1e-4 of the largest, the weights agree to 1e-7 (measured 7e-9)
        moments = first_moments(a, opt)
        scale = max(m.abs().max() for m in moments)
        names = [(net, name) for net in nets for name in a["state"][net]]  # the optimizer's order
        assert len(names) == len(moments)
        for (net, name), m in zip(names, moments):
            sure = m.abs() > 1e-4 * scale
            diff = (b["state"][net][name] - a["state"][net][name]).abs()[sure]
            assert diff.numel() == 0 or diff.max() <= 1e-7, (net, name)
    step1 = a

    # resumed under torchrun to step 4, across the epoch end where the LR schedule steps
    assert train_cyclegan.main(["--resume", str(one), "--max-steps", "4"]) == 0
    ok(torchrun("train_cyclegan.py", "--resume", two, "--max-steps", "4"))
    a, b = checkpoint.load_checkpoint(one), checkpoint.load_checkpoint(two)
    assert a["step"] == b["step"] == 4
    assert a["state"]["sched_g"] == b["state"]["sched_g"]
    assert a["state"]["opt_g"]["param_groups"] == b["state"]["opt_g"]["param_groups"]
    # Over several steps Adam turns the float32 rounding of near-zero gradients into steps of up to
    # the LR, and these small nets amplify it: one process with 2 threads instead of 1 ends steps
    # 2-4 7-8% (of the distance the weights moved) away from itself; 2 x 1 measured 5-12%.
    for net in ("G_AB", "G_BA", "D_A", "D_B"):
        w1, wa, wb = (torch.cat([t.flatten() for t in ck["state"][net].values()]) for ck in (step1, a, b))
        assert (wb - wa).norm() <= 0.25 * (wa - w1).norm(), net

    # --translate under torchrun: once, by rank 0
    ok(torchrun("train_cyclegan.py", "--checkpoint", two, "--translate", horses / "testA", "--threads", "1"))
    assert [p.name for p in (two / "translated").iterdir()] == ["n02381460_1000.png"]


def test_pix2pix_two_processes_are_one_with_twice_the_batch(facades, tmp_path):
    flags = ["--data", facades, "--direction", "BtoA", "--generator", "toy", "--image-size", "32", "--ngf", "8",
             "--ndf", "8", "--n-layers-d", "2", "--norm", "instance", "--epochs", "1", "--epochs-decay", "1", *CPU]
    one, two = tmp_path / "one", tmp_path / "two"
    assert train_pix2pix.main([*map(str, flags), "--batch-size", "2", "--out", str(one)]) == 0
    ok(torchrun("train_pix2pix.py", *flags, "--batch-size", "1", "--out", two))
    a, b = checkpoint.load_checkpoint(one), checkpoint.load_checkpoint(two)
    assert a["step"] == b["step"] == 4
    # The toy U-Net has no norm: its weights agree to 1e-6 after 4 steps (measured: < 1e-7). So do
    # the PatchGAN's, but for the biases of the convs that instance norm follows: it subtracts them
    # again, their gradients are rounding noise, and Adam steps them by up to the LR either way.
    cancelled = {"layers.2.bias", "layers.4.bias"}
    for net in ("G", "D"):
        for name, w in a["state"][net].items():
            if not (net == "D" and name in cancelled):
                torch.testing.assert_close(b["state"][net][name], w, rtol=0, atol=1e-6)


# --- MNIST and DCGAN: identical replicas, exact resume, a killed rank, Ctrl-C ---

def test_mnist_ranks_hold_rank_0s_weights_after_every_step(data_root, tmp_path):
    # --checkpoint-every 1: after every step the kit compares every rank's weights with rank 0's
    # (SHA-256 of the parameters) and fails the run if one differs
    result = ok(torchrun("train_mnist.py", "--data", data_root / "mnist", "--out", tmp_path, "--batch-size", "4",
                         "--max-steps", "3", "--device", "cpu", "--threads", "1", "--checkpoint-every", "1",
                         "--sample-every", "2"))
    assert "2 processes x batch 4 = effective batch 8" in result.stdout
    assert result.stdout.count("done at step 3") == 1  # only rank 0 prints
    ckpt = checkpoint.load_checkpoint(tmp_path)
    assert (ckpt["step"], ckpt["world_size"], ckpt["effective_batch_size"]) == (3, 2, 8)
    ranks = ckpt["rng_ranks"]  # each process draws its own noise
    assert len(ranks) == 2 and not torch.equal(ranks[0]["torch"], ranks[1]["torch"])
    assert torch.equal(ranks[0]["torch"], ckpt["rng"]["torch"])
    assert [r["step"] for r in log(tmp_path)] == [0, 1, 2]  # rank 0's losses, once
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["step0000002.png", "step0000003.png"]


DCGAN = ["--ngf", "8", "--ndf", "8", "--batch-size", "2", "--device", "cpu", "--threads", "1",
         "--sample-every", "100"]


def test_dcgan_replicas_and_resume_reproduces_the_uninterrupted_run(data_root, tmp_path, capsys):
    faces = data_root / "anime_faces"
    straight, split = tmp_path / "straight", tmp_path / "split"
    ok(torchrun("train_dcgan.py", "--data", faces, "--out", straight, *DCGAN, "--max-steps", "6",
                "--checkpoint-every", "1"))  # identical weights on both ranks after every step
    ok(torchrun("train_dcgan.py", "--data", faces, "--out", split, *DCGAN, "--max-steps", "3"))
    ok(torchrun("train_dcgan.py", "--resume", split, "--max-steps", "6"))
    a, b = checkpoint.load_checkpoint(straight), checkpoint.load_checkpoint(split)
    assert_same_state(a, b, ["G", "D", "opt_g", "opt_d"])
    assert log(straight) == log(split)
    for ra, rb in zip(a["rng_ranks"], b["rng_ranks"]):  # each rank's generators went on exactly
        assert torch.equal(ra["torch"], rb["torch"]) and torch.equal(ra["numpy"]["keys"], rb["numpy"]["keys"])

    # one process may go on with a 2-process run: it says, in one line, that it is no longer exact
    capsys.readouterr()
    assert train_dcgan.main(["--resume", str(split), "--max-steps", "7"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: resuming a run of 2 process(es) with 1: it goes on, but no longer bit for "
                        "bit as the original would have"]
    assert checkpoint.load_checkpoint(split)["world_size"] == 1


def worker_pid(launcher, rank):
    """The pid of torchrun's worker of `rank` (a child of the launcher with RANK=rank in its environment)."""
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            env = (status.parent / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(fields["PPid"]) == launcher and f"RANK={rank}".encode() in env:
            return int(status.parent.name)
    return None


def launch(script, out, *flags):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / script), "--out", str(out), *map(str, flags)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(out.parent / "stderr", "w"),
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def wait_for(condition, seconds=120):
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.2)


def rows(folder):
    path = folder / "losses.jsonl"
    return path.read_text().count("\n") if path.exists() else 0


def test_a_killed_rank_ends_the_run_and_keeps_the_checkpoint(data_root, tmp_path):
    out = tmp_path / "run"
    proc = launch("train_mnist.py", out, "--data", data_root / "mnist", "--batch-size", "4", "--device", "cpu",
                  "--threads", "1", "--checkpoint-every", "2", "--sample-every", "1000")
    try:
        wait_for(lambda: (out / "checkpoint.pt").exists() and rows(out) >= 3)
        os.kill(worker_pid(proc.pid, 1), signal.SIGKILL)
        killed = time.time()
        proc.wait(timeout=90)
    finally:
        proc.kill()
    # torchrun stops the other rank at once (SIGTERM), and kills it after 30 s at the latest
    assert proc.returncode != 0 and time.time() - killed < 45
    err = (tmp_path / "stderr").read_text()
    lines = [line for line in err.splitlines() if line.startswith("error: rank 0 of 2: rank 1 stopped")]
    assert len(lines) == 1, err[-3000:]
    ckpt = checkpoint.load_checkpoint(out)  # intact: the last one written before the kill
    assert ckpt["step"] >= 2 and ckpt["step"] % 2 == 0 and len(ckpt["rng_ranks"]) == 2


def test_ctrl_c_stops_both_ranks_after_the_same_step_with_a_checkpoint(data_root, tmp_path):
    out = tmp_path / "run"
    proc = launch("train_dcgan.py", out, "--data", data_root / "anime_faces", *DCGAN, "--checkpoint-every", "1000")
    try:
        wait_for(lambda: rows(out) >= 1)
        proc.send_signal(signal.SIGINT)  # what Ctrl-C does: torchrun passes it on to both ranks
        proc.wait(timeout=90)
    finally:
        proc.kill()
    err = (tmp_path / "stderr").read_text()
    assert proc.returncode != 0 and err.count("Ctrl-C: stopping after this step") == 1, err[-3000:]
    ckpt = checkpoint.load_checkpoint(out)
    assert ckpt["step"] >= 1 and [r["step"] for r in log(out)] == list(range(ckpt["step"]))
    assert len(ckpt["rng_ranks"]) == 2
