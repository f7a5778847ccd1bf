"""train_pix2pix.py end to end on real facades pairs: outputs, val metrics, exact resume, the loss
variants and nets, --translate (from a checkpoint and from the reference's weights), user mistakes."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from minigan import kit
from minigan.kit import checkpoint
from minigan.errors import MiniganError
from minigan.nets.reference import load_reference
from minigan.nets.unet import ToyUNet, UNet256

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the scripts live at the top of the repository
import train_pix2pix  # noqa: E402
from script_checks import (assert_report_renders, assert_same_state, assert_translated, link_subset,  # noqa: E402
                           read_log as log, record_lrs)
pytestmark = pytest.mark.slow

SMALL_NETS = ["--generator", "toy", "--image-size", "32", "--ngf", "8", "--ndf", "8", "--n-layers-d", "2"]


@pytest.fixture(scope="module")
def facades(data_root, tmp_path_factory):
    """A few real facades pairs in the dataset's layout (links), so that an epoch is 3 steps."""
    return link_subset(data_root / "facades", tmp_path_factory.mktemp("data") / "facades_small",
                       {"train": 3, "val": 2, "test": 2})


def train(data, out, *flags):
    return train_pix2pix.main(["--data", str(data), "--out", str(out), "--device", "cpu", "--threads", "1",
                               "--direction", "BtoA", *SMALL_NETS, "--sample-every", "2",
                               "--checkpoint-every", "100", *flags])


def test_train_validate_resume_and_translate(facades, tmp_path):
    straight = tmp_path / "straight"  # 2 epochs at the initial LR, the second of them at 1/2 of it
    assert train(facades, straight, "--epochs", "2", "--epochs-decay", "1", "--max-steps", "6") == 0
    rows = log(straight)
    assert [r["step"] for r in rows] == list(range(6))
    for r in rows:  # losses every step; val L1 and PSNR at each epoch's end
        assert {"d_loss", "d_real", "d_fake", "g_loss", "g_gan", "g_l1"} <= set(r)
        assert r["d_loss"] == pytest.approx((r["d_real"] + r["d_fake"]) / 2)  # halved, as in the paper
        assert r["g_loss"] == pytest.approx(r["g_gan"] + 100 * r["g_l1"])
        assert ("val_l1" in r) == ("val_psnr" in r) == (r["step"] in (2, 5))
    assert 0 < rows[5]["val_l1"] < 2 and 0 < rows[5]["val_psnr"] < 60
    # rows input | output | target for the 2 val pairs
    assert sorted(p.name for p in (straight / "samples").iterdir()) == [
        "step0000002.png", "step0000003.png", "step0000004.png", "step0000006.png"]
    assert Image.open(straight / "samples" / "step0000006.png").size == (3 * 34 + 2, 2 * 34 + 2)
    assert Image.open(straight / "losses.png").size == (1200, 800)
    assert_report_renders(straight)

    # stopped in the middle of epoch 1, resumed: the same losses and metrics, bit for bit the same state
    split = tmp_path / "split"
    assert train(facades, split, "--epochs", "2", "--epochs-decay", "1", "--max-steps", "4") == 0
    assert train_pix2pix.main(["--resume", str(split), "--max-steps", "6", "--threads", "1"]) == 0
    assert log(split) == rows
    final = checkpoint.load_checkpoint(straight)
    assert_same_state(final, checkpoint.load_checkpoint(split), ["G", "D", "opt_g", "opt_d", "sched_g", "sched_d"])

    # --translate the dataset folder with the checkpoint: its test/ A|B pairs, the input half (BtoA:
    # the right one) at --image-size 32, and input | output | target beside each output
    test_files = sorted((facades / "test").iterdir())
    assert train_pix2pix.main(["--checkpoint", str(straight), "--translate", str(facades), "--threads", "1"]) == 0
    outputs = sorted((straight / "translated").iterdir())
    assert [p.stem for p in outputs] == [p.stem for p in test_files]
    assert all(Image.open(p).size == (32, 32) for p in outputs)
    assert all(Image.open(p).size == (96, 32) for p in (straight / "side_by_side").iterdir())
    G = ToyUNet(ngf=8)
    G.load_state_dict(final["state"]["G"])
    assert_translated(G.eval(), test_files[0], outputs[0], size=32, half="right")


def test_lr_schedule_per_epoch(facades, tmp_path, monkeypatch):
    # one training pair, so an epoch is one step; --epochs 2 --epochs-decay 3 by hand from the
    # reference's rule (1-based epoch k at 1 - max(0, k + 1 - 2) / 4): 1, 3/4, 2/4, 1/4, 0
    one = link_subset(facades, tmp_path / "one", {"train": 1, "val": 1})
    lrs = record_lrs(monkeypatch, train_pix2pix)
    assert train(one, tmp_path / "run", "--epochs", "2", "--epochs-decay", "3") == 0
    assert [g for g, d in lrs] == [d for g, d in lrs] == pytest.approx([2e-4 * f for f in (1, 0.75, 0.5, 0.25, 0)])


def test_losses_and_nets(facades, tmp_path):
    # L1 alone trains no D; the GAN alone still reports L1; the course's avg-pool nets at 64; U-Net-256
    # with instance norm at 256; --amp ignored on CPU, --channels-last
    runs = {"l1": ["--loss", "l1"], "gan": ["--loss", "gan", "--amp", "--channels-last"],
            "pool": ["--generator", "pool64", "--discriminator", "pool64", "--image-size", "64"],
            "unet": ["--generator", "unet256", "--image-size", "256", "--norm", "instance"]}
    for name, flags in runs.items():
        assert train(facades, tmp_path / name, "--max-steps", "1", *flags) == 0
        (row,) = log(tmp_path / name)
        assert all(np.isfinite(v) for v in row.values())
        assert ("d_loss" in row) == ("d_real" in row) == ("g_gan" in row) == (name != "l1")
    l1_only = checkpoint.load_checkpoint(tmp_path / "l1")
    assert l1_only["state"]["opt_d"]["state"] == {}  # D never stepped
    assert (l1_only["args"]["epochs"], l1_only["args"]["epochs_decay"]) == (100, 100)  # the reference's


def test_translate_with_the_reference_weights(reference_dir, facades, tmp_path):
    """The paper's test-time protocol by default (G as in training: batch statistics of the one test
    image, dropout on, from kit.generate's fixed seed); eval mode with --running-stats."""
    weights = reference_dir / "pix2pix_unet256_ngf8.pt"  # a dict holding 'state_dict', 'input', 'output'
    source = sorted((facades / "test").iterdir())[0]
    G = load_reference(UNet256(ngf=8), weights)
    for flags, run in (([], lambda G, x: kit.generate(G, x, training=True)),
                       (["--running-stats"], lambda G, x: G.eval()(x))):
        out = tmp_path / f"run{len(flags)}"
        assert train_pix2pix.main(["--init-from", str(weights), "--ngf", "8", "--translate", str(source),
                                   "--out", str(out), "--device", "cpu", "--threads", "1", *flags]) == 0
        (output,) = (out / "translated").iterdir()  # a 512x256 pair: the reference's 256x256 output
        assert output.name == source.stem + ".png" and Image.open(output).size == (256, 256)
        assert Image.open(out / "side_by_side" / output.name).size == (768, 256)
        assert_translated(G, source, output, size=256, half="right", run=run)
    # the two protocols give other images (dropout alone would make them differ)
    assert not np.array_equal(*(np.asarray(Image.open(tmp_path / f"run{i}" / "translated" / output.name))
                                for i in (0, 1)))
    with pytest.raises(MiniganError, match="--generator unet256"):
        train(facades, tmp_path / "x", "--init-from", str(weights), "--translate", str(source))


def test_user_mistakes(facades, tmp_path):
    with pytest.raises(MiniganError, match="--generator unet256, which needs multiples of 256"):
        train(facades, tmp_path / "x", "--generator", "unet256", "--image-size", "64")
    with pytest.raises(MiniganError, match="too small for a PatchGAN"):
        train(facades, tmp_path / "x", "--image-size", "8", "--n-layers-d", "3")
    with pytest.raises(MiniganError, match="--translate needs trained weights"):
        train(facades, tmp_path / "x", "--translate", str(facades / "test"))
    result = subprocess.run([sys.executable, str(ROOT / "train_pix2pix.py"), "--data", str(tmp_path / "no_such"),
                             "--out", str(tmp_path / "run")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "no_such" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()  # nothing written for a run that cannot start
