"""The run report: index.html from a run directory's files, rebuilt by `python -m minigan.kit.report`."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from minigan.data.images import save_grid
from minigan import kit
from minigan.kit import checkpoint, report

ROOT = Path(__file__).resolve().parents[2]


def fake_run(folder, epochs=3, steps_per_epoch=4, sample_every=3):
    """A run directory as a training run leaves it: log, grids, checkpoint (no page yet)."""
    rows = [{"step": s, "epoch": s // steps_per_epoch, "d_loss": 1.0 / (s + 1), "g_loss": 2.0}
            for s in range(epochs * steps_per_epoch)]
    for r in rows[steps_per_epoch - 1::steps_per_epoch]:
        r["val_l1"] = 0.5 - 0.1 * r["epoch"]
    (folder / "losses.jsonl").parent.mkdir(parents=True, exist_ok=True)
    (folder / "losses.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 99, "ep')
    for s in range(sample_every, len(rows) + 1, sample_every):
        save_grid(torch.rand(4, 3, 8, 8) * 2 - 1, folder / "samples" / f"step{s:07d}.png")
    checkpoint.save_checkpoint(folder / "checkpoint.pt", checkpoint.capture({}, len(rows), {"lr": 0.5, "data": "x"}))
    return rows[:len(rows)]


def test_page_holds_command_config_table_and_grids_newest_first(tmp_path):
    rows = fake_run(tmp_path)
    args = type("Args", (), {})()
    args.lr, args.data = 0.0002, "facades"
    report.record_invocation(tmp_path, "python train_pix2pix.py --data facades", args, "cpu", 1, 0)
    report.record_invocation(tmp_path, "python train_pix2pix.py --resume r", args, torch.device("cpu"), 2, 7)
    html = report.write_report(tmp_path, rows).read_text()
    assert "<pre>python train_pix2pix.py --data facades</pre>" in html and "--resume r</pre>" in html and "world size 2, from step 7" in html and "lr = 0.0002" in html
    grids = re.findall(r'<img src="(samples/[^"]+)"', html)
    assert grids == [f"samples/step{s:07d}.png" for s in (12, 9, 6, 3)]  # newest first, relative paths
    assert "step 12 &middot; epoch 2" in html and "step 3 &middot; epoch 0" in html
    table = report.epoch_table(rows)
    assert [e["epoch"] for e in table] == [0, 1, 2] and [e["steps"] for e in table] == [4, 8, 12]
    assert table[0]["d_loss"] == float(f"{np.mean([1, 1 / 2, 1 / 3, 1 / 4]):.4g}") and table[2]["val_l1"] == 0.3
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())  # written atomically


def test_rebuild_command_for_an_older_run(tmp_path):
    fake_run(tmp_path / "old")  # no run.json, no losses.png, no index.html: a run from before the report
    done = subprocess.run([sys.executable, "-m", "minigan.kit.report", str(tmp_path / "old")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "old" / "index.html").read_text()
    assert (tmp_path / "old" / "losses.png").exists() and '<img class="plot" src="losses.png"' in html
    assert "data = &#x27;x&#x27;" in html and "not recorded" in html  # the config from the checkpoint
    assert len(re.findall(r'<img src="samples/', html)) == 4
    # not a run directory: one line, exit 2
    (tmp_path / "empty").mkdir()
    done = subprocess.run([sys.executable, "-m", "minigan.kit.report", str(tmp_path / "empty")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "not a run directory" in done.stderr
    helped = subprocess.run([sys.executable, "-m", "minigan.kit.report", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert "index.html" in helped.stdout


def test_every_scripts_help_names_the_report_command():
    parser = kit.parser("a training script")
    kit.add_common_args(parser, batch_size=1, lr=0.1, beta1=0.5, epochs=1)
    assert "`python -m minigan.kit.report RUN_DIR`" in " ".join(parser.format_help().split())
