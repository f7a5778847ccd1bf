"""train_dcgan.py end to end on real anime faces and MNIST (small nets, few steps): exact resume, CLI."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from minigan import kit
from minigan.data.images import make_grid, to_pil
from minigan.kit import checkpoint, latent
from minigan.nets import DCGANGenerator

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the scripts live at the top of the repository
import train_dcgan  # noqa: E402
from script_checks import assert_report_renders, read_log as log, small_mnist  # noqa: E402

pytestmark = pytest.mark.slow
SMALL = ["--ngf", "8", "--ndf", "8", "--batch-size", "4", "--device", "cpu", "--sample-every", "2",
         "--checkpoint-every", "1000"]


def train(data, out, *flags):
    return train_dcgan.main(["--data", str(data), "--out", str(out), *SMALL, *flags])


def test_anime_faces_run_and_exact_resume(data_root, tmp_path):
    faces = data_root / "anime_faces"
    assert train(faces, tmp_path / "straight", "--max-steps", "4") == 0
    straight = tmp_path / "straight"
    grid = Image.open(straight / "samples" / "step0000004.png")
    assert grid.size == (8 * 66 + 2, 8 * 66 + 2) and grid.mode == "RGB"
    assert (straight / "losses.png").exists() and len(log(straight)) == 4
    # the last grid is the final G in training mode on the 64 fixed z's (batch statistics), not eval mode
    G = DCGANGenerator(ngf=8)
    G.load_state_dict(checkpoint.load_checkpoint(straight)["state"]["G"])
    z = latent.fixed_noise(64, train_dcgan.NZ, seed=0)
    pixels = np.asarray(grid, dtype=int)
    for training, same in ((True, True), (False, False)):
        expected = np.asarray(to_pil(make_grid(kit.generate(G, z, training=training))), dtype=int)
        assert (np.abs(pixels - expected).max() <= 1) == same  # (float32 sums may differ by one level)
    assert not any(k.startswith("score_") for r in log(straight) for k in r)  # the MNIST score is for MNIST
    assert_report_renders(straight)

    split = tmp_path / "split"
    assert train(faces, split, "--max-steps", "2") == 0
    assert train_dcgan.main(["--resume", str(split), "--max-steps", "4"]) == 0
    assert log(split) == log(straight)
    a, b = checkpoint.load_checkpoint(straight), checkpoint.load_checkpoint(split)
    for name in ("G", "D"):  # weights and batch-norm running statistics
        for key, tensor in a["state"][name].items():
            assert torch.equal(tensor, b["state"][name][key]), (name, key)
    for name in ("opt_g", "opt_d"):
        for i, state in a["state"][name]["state"].items():
            for key, tensor in state.items():
                assert torch.equal(tensor, b["state"][name]["state"][i][key]), (name, i, key)

    assert train_dcgan.main(["--checkpoint", str(straight), "--sample", "4", "--interpolate", "2"]) == 0
    assert Image.open(straight / "samples-step4-seed0.png").size == (2 * 66 + 2, 2 * 66 + 2)
    assert Image.open(straight / "interpolation-step4-seed0.png").size == (10 * 66 + 2, 2 * 66 + 2)


def test_mnist_at_64_is_one_channel(data_root, tmp_path):
    assert train(data_root / "mnist", tmp_path, "--max-steps", "1") == 0
    ckpt = checkpoint.load_checkpoint(tmp_path)
    assert ckpt["args"]["channels"] == 1
    assert ckpt["state"]["G"]["net.12.weight"].shape == (8, 1, 4, 4)  # the last ConvT makes 1 channel
    assert Image.open(tmp_path / "samples" / "step0000001.png").mode == "L"


def test_cli_user_mistakes_exit_2_with_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    argv = ["--data", str(tmp_path / "empty"), "--out", str(tmp_path / "run")]
    result = subprocess.run([sys.executable, str(ROOT / "train_dcgan.py"), *argv], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "holds no images" in result.stderr
    (tmp_path / "checkpoint.pt").write_bytes(b"\x80\x02 truncated")
    with pytest.raises(SystemExit) as e:  # the same entry point as the command line, in-process
        kit.run_main(train_dcgan.main, ["--checkpoint", str(tmp_path), "--sample", "4"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "not a readable minigan checkpoint" in err


def test_mnist_is_scored_at_each_epoch_end(data_root, tmp_path):
    small = small_mnist(data_root / "mnist", tmp_path / "mnist8", 8)  # epochs of 2 steps at batch 4
    assert train(small, tmp_path / "run", "--epochs", "2") == 0
    rows = log(tmp_path / "run")
    assert [r["step"] for r in rows if "score_fd" in r] == [1, 3]  # --score-every 1 (the default)
    assert all(0 < rows[i]["score_conf"] <= 1 and rows[i]["score_fd"] > 0 for i in (1, 3))
