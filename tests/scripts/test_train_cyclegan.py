"""train_cyclegan.py end to end on real horse2zebra images: outputs, LR schedule, exact resume,
--translate (from a checkpoint and from the reference's weights), user mistakes."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from minigan.kit import checkpoint
from minigan.errors import MiniganError
from minigan.data.images import load_image
from minigan.nets.reference import load_reference
from minigan.nets.resnet_generator import ResnetGenerator

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the scripts live at the top of the repository
import train_cyclegan  # noqa: E402
from script_checks import (assert_report_renders, assert_same_state, assert_translated, link_subset,  # noqa: E402
                           read_log as log, record_lrs)

TRACKED = ["G_AB", "G_BA", "D_A", "D_B", "opt_g", "opt_d", "sched_g", "sched_d", "pool_a", "pool_b"]
pytestmark = pytest.mark.slow

SMALL_NETS = ["--image-size", "32", "--ngf", "8", "--ndf", "8", "--n-blocks", "2", "--n-layers-d", "2"]


@pytest.fixture(scope="module")
def horses(data_root, tmp_path_factory):
    """A few real horse2zebra images in the dataset's layout (links), so that an epoch is 3 steps."""
    return link_subset(data_root / "horse2zebra", tmp_path_factory.mktemp("data") / "h2z",
                       {"trainA": 3, "trainB": 2, "testA": 2, "testB": 2})


def train(data, out, *flags):
    return train_cyclegan.main(["--data", str(data), "--out", str(out), "--device", "cpu", "--threads", "1",
                                *SMALL_NETS, "--sample-every", "2", "--checkpoint-every", "100", *flags])


def test_train_schedule_resume_and_translate(horses, tmp_path):
    # 3 epochs of 3 steps, --epochs 1 --epochs-decay 2: factors 2/3, 1/3, 0 (then 0); pools of 2
    # fakes, full from step 2 on, so that the resumed run needs the saved pools
    flags = ["--epochs", "1", "--epochs-decay", "2", "--pool-size", "2"]
    straight = tmp_path / "straight"
    assert train(horses, straight, *flags) == 0
    rows = log(straight)
    assert [r["step"] for r in rows] == list(range(9)) and [r["epoch"] for r in rows] == [0] * 3 + [1] * 3 + [2] * 3
    for r in rows:  # the test split's cycle L1 at each epoch's end, the losses every step
        assert {"d_a", "d_b", "g_loss", "g_gan_ab", "g_gan_ba", "g_cycle_a", "g_cycle_b",
                "g_idt_a", "g_idt_b"} <= set(r)
        cycle, idt = r["g_cycle_a"] + r["g_cycle_b"], r["g_idt_a"] + r["g_idt_b"]
        assert r["g_loss"] == pytest.approx(r["g_gan_ab"] + r["g_gan_ba"] + 10 * cycle + 0.5 * 10 * idt)
        assert ("test_cycle_a" in r) == (r["step"] in (2, 5, 8))
        assert all(torch.isfinite(torch.tensor(v)) for v in r.values())
    final = checkpoint.load_checkpoint(straight)
    assert final["state"]["opt_g"]["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)
    assert len(final["state"]["pool_a"]["images"]) == 2
    # grids: rows real | fake | reconstructed | identity for the 2 test A and the 2 test B images
    grids = sorted(p.name for p in (straight / "samples").iterdir())
    assert grids == ["step0000002.png", "step0000003.png", "step0000004.png", "step0000006.png",
                     "step0000008.png", "step0000009.png"]
    assert Image.open(straight / "samples" / "step0000009.png").size == (4 * 34 + 2, 4 * 34 + 2)
    assert_report_renders(straight)

    # stopped in the middle of epoch 1, resumed: the same losses, and bit for bit the same state
    split = tmp_path / "split"
    assert train(horses, split, *flags, "--max-steps", "4") == 0
    half = checkpoint.load_checkpoint(split)
    assert half["step"] == 4 and half["state"]["opt_g"]["param_groups"][0]["lr"] == pytest.approx(2e-4 / 3)
    assert train_cyclegan.main(["--resume", str(split), "--max-steps", "9"]) == 0
    assert log(split) == rows
    assert_same_state(final, checkpoint.load_checkpoint(split), TRACKED)

    # --translate with the checkpoint: one output per input, at --image-size (32); BtoA uses G_BA
    assert train_cyclegan.main(["--checkpoint", str(straight), "--translate", str(horses / "testB"),
                                "--direction", "BtoA", "--threads", "1"]) == 0
    inputs = sorted((horses / "testB").iterdir())
    outputs = sorted((straight / "translated").iterdir())
    assert [p.stem for p in outputs] == [p.stem for p in inputs]
    assert all(Image.open(o).size == (32, 32) for o in outputs)
    assert not (straight / "side_by_side").exists()  # CycleGAN's images are never A|B pairs
    G_BA = ResnetGenerator(ngf=8, n_blocks=2)
    G_BA.load_state_dict(final["state"]["G_BA"])
    assert_translated(G_BA.eval(), inputs[0], outputs[0], size=32)


def test_lr_schedule_per_epoch(horses, tmp_path, monkeypatch):
    # one image per domain, so an epoch is one step; --epochs 2 --epochs-decay 3 by hand from the
    # reference's rule (1-based epoch k at 1 - max(0, k + 1 - 2) / 4): 1, 3/4, 2/4, 1/4, 0
    one = link_subset(horses, tmp_path / "one", {"trainA": 1, "trainB": 1, "testA": 1, "testB": 1})
    lrs = record_lrs(monkeypatch, train_cyclegan)
    assert train(one, tmp_path / "run", "--epochs", "2", "--epochs-decay", "3") == 0
    assert [g for g, d in lrs] == [d for g, d in lrs] == pytest.approx([2e-4 * f for f in (1, 0.75, 0.5, 0.25, 0)])


def test_translate_with_the_reference_weights(reference_dir, horses, tmp_path):
    weights = reference_dir / "cyclegan_resnet9_ngf8.pt"  # a dict holding 'state_dict', 'input', 'output'
    odd = tmp_path / "in" / "odd.png"  # a size the generator does not take: resized there and back
    odd.parent.mkdir()
    load_image(sorted((horses / "testA").iterdir())[0]).resize((90, 70)).save(odd)
    for source, flags in ((horses / "testA", []), (odd, []), (odd, ["--native-size", "--out", str(tmp_path / "n")])):
        assert train_cyclegan.main(["--init-from", str(weights), "--ngf", "8", "--translate", str(source),
                                    "--out", str(tmp_path / "run"), "--device", "cpu", "--threads", "1", *flags]) == 0
    outputs = sorted((tmp_path / "run" / "translated").iterdir())
    assert [p.name for p in outputs] == ["n02381460_1000.png", "n02381460_1010.png", "odd.png"]
    assert all(Image.open(p).size == (256, 256) for p in outputs)  # the reference's protocol
    assert Image.open(tmp_path / "n" / "translated" / "odd.png").size == (90, 70)  # --native-size
    G = load_reference(ResnetGenerator(ngf=8, n_blocks=9), weights).eval()
    assert_translated(G, sorted((horses / "testA").iterdir())[1], outputs[1], size=256)
    assert_translated(G, odd, outputs[2], size=256)
    with pytest.raises(MiniganError, match="was it saved with another ngf"):  # the file is ngf 8
        train_cyclegan.main(["--init-from", str(weights), "--translate", str(odd), "--out", str(tmp_path / "r2")])


def test_flags_and_user_mistakes(horses, tmp_path):
    # --amp is ignored on CPU; --channels-last and bce/hinge and no identity term train
    for i, flags in enumerate([["--amp", "--channels-last"], ["--gan-loss", "hinge", "--lambda-identity", "0"],
                               ["--gan-loss", "bce"]]):
        assert train(horses, tmp_path / str(i), "--max-steps", "1", *flags) == 0
        (row,) = log(tmp_path / str(i))
        assert all(torch.isfinite(torch.tensor(v)) for v in row.values())
        assert ("g_idt_a" in row) == ("g_idt_b" in row) == ("--lambda-identity" not in flags)
    args = checkpoint.load_checkpoint(tmp_path / "0")["args"]
    assert (args["epochs"], args["epochs_decay"]) == (100, 100)  # the paper's 100 + 100
    with pytest.raises(MiniganError, match="multiple of 4"):
        train(horses, tmp_path / "x", "--image-size", "30")
    with pytest.raises(MiniganError, match="--translate needs trained weights"):
        train(horses, tmp_path / "x", "--translate", str(horses / "testA"))
    with pytest.raises(SystemExit):
        train(horses, tmp_path / "x", "--epochs-decay", "-1")


def test_cli_missing_data_is_one_line_exit_2(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "train_cyclegan.py"), "--data", str(tmp_path / "no_such"),
                             "--out", str(tmp_path / "run")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "no_such" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()  # nothing written for a run that cannot start
