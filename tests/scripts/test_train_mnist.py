"""train_mnist.py end to end on the real MNIST files: outputs, exact resume, sampling, the CLI."""
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from minigan import kit, losses
from minigan.kit import checkpoint

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the scripts live at the top of the repository
import train_mnist  # noqa: E402
from script_checks import assert_report_renders, assert_same_state, read_log as log, small_mnist  # noqa: E402
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mnist(data_root):
    return str(data_root / "mnist")


def train(mnist, out, *flags):
    return train_mnist.main(["--data", mnist, "--out", str(out), "--batch-size", "8", "--device", "cpu",
                             "--sample-every", "2", "--checkpoint-every", "1000", "--score-every", "0", *flags])


def read(path):
    return path.read_text() if path.exists() else ""


def test_run_resume_and_sample(mnist, tmp_path):
    # 6 steps straight
    assert train(mnist, tmp_path / "straight", "--max-steps", "6") == 0
    straight = tmp_path / "straight"
    assert sorted(p.name for p in (straight / "samples").iterdir()) == [
        "step0000002.png", "step0000004.png", "step0000006.png"]
    assert Image.open(straight / "samples" / "step0000006.png").size == (8 * 30 + 2, 8 * 30 + 2)  # 64 digits
    assert Image.open(straight / "losses.png").size == (1200, 800)
    rows = log(straight)
    assert [r["step"] for r in rows] == list(range(6))
    assert all(set(r) == {"step", "epoch", "d_loss", "d_real", "d_fake", "g_loss"} for r in rows)

    # 3 steps, then resume for 3 more: the same losses and, bit for bit, the same nets and optimizers
    split = tmp_path / "split"
    assert train(mnist, split, "--max-steps", "3") == 0
    half = checkpoint.load_checkpoint(split)
    assert half["step"] == 3
    assert train_mnist.main(["--resume", str(split), "--max-steps", "3"]) == 0  # nothing to do: load + save
    assert_same_state(half, checkpoint.load_checkpoint(split), ["G", "D", "opt_g", "opt_d"])
    assert train_mnist.main(["--resume", str(split / "checkpoint.pt"), "--max-steps", "6"]) == 0
    assert log(split) == rows
    assert_same_state(checkpoint.load_checkpoint(straight), checkpoint.load_checkpoint(split),
                      ["G", "D", "opt_g", "opt_d"])

    # sampling from the checkpoint: a 16-sample grid and 3 rows of a 10-step walk
    assert train_mnist.main(["--checkpoint", str(straight), "--sample", "16", "--interpolate", "3"]) == 0
    assert Image.open(straight / "samples-step6-seed0.png").size == (4 * 30 + 2, 4 * 30 + 2)
    assert Image.open(straight / "interpolation-step6-seed0.png").size == (10 * 30 + 2, 3 * 30 + 2)


def test_score_at_each_epoch_end_and_the_report_in_a_browser(mnist, tmp_path):
    # 16 real training digits: epochs of 2 steps; the real test split scores them
    small = small_mnist(Path(mnist), tmp_path / "mnist16", 16)
    assert train(str(small), tmp_path / "run", "--epochs", "3", "--score-every", "2") == 0
    rows = log(tmp_path / "run")
    scored = [r["step"] for r in rows if "score_fd" in r]
    assert scored == [3]  # the end of epoch 1 (0-based), the 2nd epoch: every 2 epochs
    score = rows[3]
    assert 0.1 < score["score_conf"] < 1 and 0 <= score["score_coverage"] <= 1 and score["score_fd"] > 100
    html = (tmp_path / "run" / "index.html").read_text()
    assert "<th>score_fd</th>" in html and "world size 1" in html
    assert f"<pre>python train_mnist.py --data {small} --out {tmp_path / 'run'} --batch-size 8" in html
    assert_report_renders(tmp_path / "run")


@pytest.mark.parametrize("kind", losses.KINDS)
def test_every_loss_trains(mnist, tmp_path, kind):
    assert train(mnist, tmp_path, "--max-steps", "1", "--loss", kind) == 0
    (row,) = log(tmp_path)
    assert torch.isfinite(torch.tensor([row["d_loss"], row["g_loss"]])).all()


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, str(ROOT / "train_mnist.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, **kwargs)


def test_cli_user_mistakes_exit_2_with_one_line(tmp_path, capsys):
    missing = cli("--data", str(tmp_path / "no_such_mnist"), "--out", str(tmp_path / "run"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "no_such_mnist" in missing.stderr
    assert "Traceback" not in missing.stderr
    (tmp_path / "checkpoint.pt").write_bytes(b"PK\x03\x04 not really a checkpoint")
    with pytest.raises(SystemExit) as e:  # the same entry point as the command line, in-process
        kit.run_main(train_mnist.main, ["--checkpoint", str(tmp_path), "--sample", "4"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "not a readable minigan checkpoint" in err


def test_cli_ctrl_c_writes_a_checkpoint_and_exits_130(mnist, tmp_path):
    proc = subprocess.Popen([sys.executable, str(ROOT / "train_mnist.py"), "--data", mnist, "--out", str(tmp_path),
                             "--batch-size", "8", "--threads", "1"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "stderr", "w"))
    deadline = time.time() + 90
    while time.time() < deadline and "\n" not in read(tmp_path / "losses.jsonl"):
        time.sleep(0.2)  # wait for the first logged step
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    assert proc.returncode == 130, read(tmp_path / "stderr")
    steps = checkpoint.load_checkpoint(tmp_path)["step"]
    assert steps >= 1 and [r["step"] for r in log(tmp_path)] == list(range(steps))


def test_data_root_flag_finds_a_dataset_by_name(data_root, tmp_path, monkeypatch):
    # the name 'mnist' is looked up under --data-root, which wins over $MINIGAN_DATA
    monkeypatch.setenv("MINIGAN_DATA", str(tmp_path / "elsewhere"))
    assert train("mnist", tmp_path / "run", "--data-root", str(data_root), "--max-steps", "1") == 0
    assert len(log(tmp_path / "run")) == 1
