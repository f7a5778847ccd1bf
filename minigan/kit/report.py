"""The run report: an `index.html` in every run directory that shows the whole run on one page.

The reference implementation's users look at its per-run web page rather than at log lines; this is
minigan's: the command line(s) and config, the device and world size, the loss curves, a table with one
row per epoch (the mean of each loss over the epoch, and the epoch's metrics: val L1/PSNR, test cycle
L1, the MNIST score) and the sample grids, newest first, each with its step and epoch. Plain HTML and
CSS, no script. Every image is referenced by a path relative to the run directory, so the folder can be
copied anywhere and opened from disk, no server needed.

The page is built from the files of the run directory alone, so a finished, copied or older run can be
rebuilt the same way a live one is written:

    run.json        the invocations: command line, device, world size, start time, the step it began at
                    (older runs have none: the config then comes from checkpoint.pt's saved arguments)
    losses.jsonl    one row per step: its losses, and at an epoch's last step the epoch's metrics
    losses.png      the loss curves (minigan.kit.plot)
    samples/step<N>.png   the grid written after N steps

A training run rewrites the page, atomically, whenever it writes a sample grid or a checkpoint and at
its end. For any run directory:

    python -m minigan.kit.report RUN_DIR [RUN_DIR ...]      # rebuild losses.png and index.html

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "samples").mkdir(), (folder / "samples" / "step0000002.png").write_bytes(b"")
>>> rows = [{"step": 0, "epoch": 0, "d_loss": 0.7}, {"step": 1, "epoch": 0, "d_loss": 0.5, "val_l1": 0.25}]
>>> html = write_report(folder, rows).read_text()
>>> '<img src="samples/step0000002.png"' in html, "step 2 &middot; epoch 0" in html
(True, True)
>>> epoch_table(rows)
[{'epoch': 0, 'steps': 2, 'd_loss': 0.6, 'val_l1': 0.25}]
"""
import argparse
import html
import json
import math
import re
import time
from pathlib import Path

from ..errors import MiniganError
from ..files import write_atomically
from .checkpoint import NAME as CHECKPOINT, load_checkpoint, plain
from .plot import METRIC_PREFIXES, plot_losses

INFO, LOG, PLOT, PAGE = "run.json", "losses.jsonl", "losses.png", "index.html"
GRID = re.compile(r"step(\d+)\.png")  # samples/step<N>.png: the grid after N steps
EAGER_GRIDS = 24                       # the newest grids load at once, older ones when scrolled to


# --- what the page is built from ---

def record_invocation(folder, command, args, device, world_size, step):
    """Append this invocation (command line, config, device, world size, time, the step it starts at)
    to run.json in `folder`, atomically."""
    path = Path(folder) / INFO
    info = read_info(folder) or {"invocations": []}
    info["invocations"].append({
        "command": command, "config": plain(vars(args)), "device": str(device), "world_size": int(world_size),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "step": int(step)})
    write_atomically(path, lambda f: f.write(json.dumps(info, indent=1).encode()))


def read_info(folder):
    """run.json as a dict, or None when absent or unreadable."""
    try:
        info = json.loads((Path(folder) / INFO).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and isinstance(info.get("invocations"), list) else None


def read_rows(folder):
    """The rows of losses.jsonl (a half-written last line, from a killed run, is skipped)."""
    rows = []
    path = Path(folder) / LOG
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def sample_grids(folder):
    """[(steps done, path relative to folder)] of samples/step<N>.png, newest first."""
    found = [(int(m.group(1)), f"samples/{p.name}") for p in (Path(folder) / "samples").glob("step*.png")
             if (m := GRID.fullmatch(p.name))]
    return sorted(found, reverse=True)


def epoch_table(rows):
    """One dict per epoch: its number, the steps done at its end, each per-step value's mean over the
    epoch, and the metrics logged in it (rounded to 4 significant digits)."""
    table = {}
    for r in rows:
        entry = table.setdefault(r["epoch"], {"epoch": r["epoch"], "steps": 0, "sums": {}, "metrics": {}})
        entry["steps"] = max(entry["steps"], r["step"] + 1)
        for k, v in r.items():
            if k in ("step", "epoch", "time") or not math.isfinite(v):  # NaN: a skipped step
                continue
            if k.startswith(METRIC_PREFIXES):
                entry["metrics"][k] = v
            else:
                entry["sums"].setdefault(k, []).append(v)
    return [{"epoch": e["epoch"], "steps": e["steps"],
             **{k: float(f"{sum(v) / len(v):.4g}") for k, v in e["sums"].items()},
             **{k: float(f"{v:.4g}") for k, v in e["metrics"].items()}} for e in table.values()]


# --- the page ---

CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1250px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.sub { color: #666; margin-top: 0; }
pre { background: #f6f6f6; padding: 0.6em 0.8em; overflow-x: auto; white-space: pre-wrap; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { padding: 0.2em 0.7em; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f3f3f3; } td.k { text-align: left; color: #555; } .scroll { max-height: 30em; overflow-y: auto; }
.config { columns: 3 22em; font-size: 0.85em; font-family: ui-monospace, monospace; }
.config div { break-inside: avoid; }
img.plot { width: 100%; max-width: 1200px; border: 1px solid #eee; }
.grids { display: grid; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); gap: 1em; }
figure { margin: 0; } figure img { width: 100%; image-rendering: pixelated; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; }
"""


def build_page(folder, rows):
    """The report of the run in `folder` as an HTML string."""
    folder = Path(folder)
    info = read_info(folder)
    esc = html.escape
    parts = [f"<h1>{esc(folder.resolve().name)}</h1>"]
    done = rows[-1]["step"] + 1 if rows else 0
    parts.append(f'<p class="sub">{done} steps logged, {len({r["epoch"] for r in rows})} epoch(s); '
                 f'page written {esc(time.strftime("%Y-%m-%d %H:%M:%S %Z"))}</p>')

    parts.append("<h2>Command</h2>")
    if info:
        for inv in info["invocations"]:
            where = f'device {esc(inv["device"])}, world size {inv["world_size"]}'
            parts.append(f'<pre>{esc(inv["command"])}</pre><p class="sub">{esc(inv["started"])}: {where}, '
                         f'from step {inv["step"]}</p>')
        config = info["invocations"][-1]["config"]
    else:
        config = old_config(folder)
        parts.append("<p>not recorded (a run from before run.json); the config is the checkpoint's</p>")
    if config:
        parts.append('<h2>Config</h2><div class="config">' + "".join(
            f"<div>{esc(k)} = {esc(repr(v))}</div>" for k, v in sorted(config.items())) + "</div>")

    parts.append("<h2>Loss curves</h2>")
    parts.append(f'<img class="plot" src="{PLOT}" alt="loss curves">' if (folder / PLOT).exists()
                 else "<p>no losses.png yet</p>")

    table = epoch_table(rows)
    if table:
        columns = list(dict.fromkeys(k for e in table for k in e))
        head = "".join(f"<th>{esc(c)}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{e.get(c, '')}</td>" for c in columns) + "</tr>" for e in table)
        parts.append(f'<h2>Per epoch</h2><p class="sub">each loss: its mean over the epoch; '
                     f'metrics ({", ".join(p + "*" for p in METRIC_PREFIXES)}): at the epoch\'s end</p>'
                     f'<div class="scroll"><table><tr>{head}</tr>{body}</table></div>')

    epoch_of = {r["step"] + 1: r["epoch"] for r in rows}  # steps done -> the epoch that step was in
    grids = sample_grids(folder)
    parts.append(f"<h2>Samples ({len(grids)} grids, newest first)</h2>")
    figures = []
    for i, (step, src) in enumerate(grids):
        epoch = f" &middot; epoch {epoch_of[step]}" if step in epoch_of else ""
        lazy = ' loading="lazy"' if i >= EAGER_GRIDS else ""
        figures.append(f'<figure><img src="{esc(src)}" alt="samples after {step} steps"{lazy}>'
                       f"<figcaption>step {step}{epoch}</figcaption></figure>")
    parts.append('<div class="grids">' + "".join(figures) + "</div>" if figures else "<p>no sample grids yet</p>")
    title = esc(f"{folder.resolve().name}: minigan run report")
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{CSS}</style></head>\n<body>\n" + "\n".join(parts) + "\n</body></html>\n")


def old_config(folder):
    """The saved arguments of the checkpoint in `folder`, for a run without run.json ({} if none)."""
    if not (Path(folder) / CHECKPOINT).exists():
        return {}
    try:
        return load_checkpoint(folder)["args"]
    except MiniganError:
        return {}


def write_report(folder, rows=None):
    """Write `folder`/index.html atomically from the run's files (`rows`: the log, if already in
    memory). Returns its path."""
    rows = read_rows(folder) if rows is None else rows
    page = build_page(folder, rows)
    return write_atomically(Path(folder) / PAGE, lambda f: f.write(page.encode()))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m minigan.kit.report",
        description="Rebuild the loss curves (losses.png) and the report (index.html) of run directories, "
        "e.g. runs from before the report existed, or copied ones. Open the index.html in a browser.")
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR",
                        help="a run directory (holding losses.jsonl, samples/ or checkpoint.pt)")
    args = parser.parse_args(argv)
    for folder in args.run_dirs:
        if not any((folder / name).exists() for name in (LOG, "samples", CHECKPOINT)):
            raise MiniganError(f"{folder}: not a run directory (no {LOG}, samples/ or {CHECKPOINT} in it)")
        rows = read_rows(folder)
        if rows:
            plot_losses(rows, folder / PLOT)
        print(f"wrote {write_report(folder, rows)}")
    return 0


if __name__ == "__main__":
    from .run import run_main  # (run.py imports this module: only the command needs run_main)
    run_main(main)
