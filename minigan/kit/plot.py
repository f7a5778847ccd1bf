"""The loss curves of a run as one PNG, drawn with matplotlib (the library the course plots with).

GAN losses are not one quantity: D's and G's have different scales and meanings (a CycleGAN's d_a is
~0.2 while its g_cycle is ~1), so they get separate panels: D's losses (columns starting with "d"),
G's (starting with "g"), and the per-epoch metrics (`val_*`, `test_*`, `score_*`, one small panel
each, on an epoch axis). The training step is on x, with the epoch boundaries as dotted lines and
epoch numbers along the top.

Raw per-step losses are noisy, so each is drawn faint, with its moving average on top, and the y range
covers the 1st..99th percentile of the values (an early spike is clipped at the frame instead of
flattening everything else).

>>> import tempfile; from PIL import Image
>>> rows = [{"step": s, "epoch": s // 20, "d_loss": 1.4 - s / 100, "g_loss": 0.7 + s / 100} for s in range(50)]
>>> rows[19]["val_l1"] = 0.4; rows[39]["val_l1"] = 0.3
>>> path = plot_losses(rows, Path(tempfile.mkdtemp()) / "losses.png")
>>> Image.open(path).size
(1200, 800)
>>> nan = {"step": 50, "epoch": 2, "d_loss": float("nan"), "g_loss": float("inf")}  # a skipped step: not drawn
>>> _ = plot_losses(rows + [nan], path)
"""
from pathlib import Path

import matplotlib
matplotlib.use("Agg")  # files only, no window: works on servers and in CI without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..files import write_atomically  # noqa: E402

METRIC_PREFIXES = ("val_", "test_", "score_")  # logged once per epoch, at its last step
SIZE, DPI = (12, 8), 100                       # inches and dots per inch: a 1200 x 800 PNG
MAX_RAW_POINTS = 4000                           # the faint raw line of a long run is thinned to this


def split_columns(rows):
    """(D's losses, G's losses, other per-step values, per-epoch metrics): the column names of `rows`.

    >>> split_columns([{"step": 0, "epoch": 0, "d_a": 1, "g_gan": 2, "lr": 0.1, "val_l1": 0.3}])
    (['d_a'], ['g_gan'], ['lr'], ['val_l1'])
    """
    names = list(dict.fromkeys(k for r in rows for k in r if k not in ("step", "epoch", "time")))
    metrics = [k for k in names if k.startswith(METRIC_PREFIXES)]
    d = [k for k in names if k.startswith("d") and k not in metrics]
    g = [k for k in names if k.startswith("g") and k not in metrics]
    return d, g, [k for k in names if k not in metrics + d + g], metrics


def plot_losses(rows, path, title="Generator and discriminator losses during training"):
    """Draw the columns of `rows` (dicts with "step" and "epoch") into the PNG `path`; returns path.
    Written atomically: a viewer (or the run report) never sees half a PNG."""
    d, g, other, metrics = split_columns(rows)
    loss_panels = [(keys, name) for keys, name in ((d, "D"), (g, "G"), (other, "other")) if keys] or [([], "loss")]
    fig = plt.figure(figsize=SIZE, dpi=DPI, layout="constrained")
    fig.suptitle(title)
    top, bottom = fig.subfigures(2, 1, height_ratios=[3, 2]) if metrics else (fig, None)
    for ax, (keys, name) in zip(np.atleast_1d(top.subplots(1, len(loss_panels))), loss_panels):
        draw_losses(ax, rows, keys, f"{name}'s losses" if name in "DG" else name)
    if metrics:
        for ax, key in zip(np.atleast_1d(bottom.subplots(1, len(metrics))), metrics):
            points = [(r["epoch"], r[key]) for r in rows if key in r and np.isfinite(r[key])]  # at the epoch's end
            if not points:
                continue
            ax.plot(*zip(*points), marker="o", markersize=3)
            ax.set_title(key, fontsize=10)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            ax.xaxis.get_major_locator().set_params(integer=True)
    try:
        return write_atomically(path, lambda f: fig.savefig(f, format="png"))
    finally:
        plt.close(fig)


def draw_losses(ax, rows, keys, title):
    """One panel: each key's raw values (faint) and moving average against the step."""
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    values = []
    for i, key in enumerate(keys):
        points = [(r["step"], r[key]) for r in rows if key in r and np.isfinite(r[key])]  # NaN: a skipped step
        if not points:
            continue
        steps, ys = np.array(points, dtype=float).T
        values.append(ys)
        color = f"C{i}"
        thin = max(1, len(ys) // MAX_RAW_POINTS)
        ax.plot(steps[::thin], ys[::thin], color=color, alpha=0.25, linewidth=0.8)
        window = max(1, len(ys) // 50)
        ax.plot(steps[window - 1:], moving_average(ys, window), color=color, linewidth=1.8, label=key)
    if values:
        ax.legend(loc="upper right")
        everything = np.concatenate(values)
        lo, hi = np.percentile(everything, [1, 99])
        pad = max(hi - lo, 1e-6) * 0.05
        ax.set_ylim(lo - pad, hi + pad)
    mark_epochs(ax, rows)


def mark_epochs(ax, rows, most=12):
    """Dotted lines where epochs start and their numbers on a top axis (at most `most` labels)."""
    starts = {}
    for r in rows:
        starts.setdefault(r["epoch"], r["step"])
    epochs = sorted(starts)[1:]  # epoch 0 starts at the left edge
    if not epochs:
        return
    every = -(-len(epochs) // most)  # ceil: 200 epochs -> every 17th labelled
    shown = epochs[::every]
    for e in epochs:
        ax.axvline(starts[e] - 0.5, color="grey", linestyle=":", linewidth=0.8)
    top = ax.secondary_xaxis("top")
    top.set_xticks([starts[e] - 0.5 for e in shown], labels=[str(e) for e in shown])
    top.set_xlabel("epoch", fontsize=9)
    top.tick_params(labelsize=8)


def moving_average(values, window):
    """The mean of each `window` consecutive values (len(values) - window + 1 of them), each placed
    at its window's last value.

    >>> moving_average(np.array([1.0, 3.0, 5.0, 7.0]), 2)
    array([2., 4., 6.])
    """
    return np.convolve(values, np.ones(window) / window, mode="valid")
