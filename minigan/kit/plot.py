"""The loss curves of a run as a PNG, drawn with pillow (no plotting library).

The course's "Generator and Discriminator Loss During Training" figure: one line per loss, the
training step on x, the loss on y. GAN losses are noisy and an early spike would flatten the rest, so
the y range covers the 1st..99th percentile of the values (a spike is clipped at the frame), and a
thin raw line is overdrawn by a moving average when there are many steps.

>>> import tempfile
>>> rows = [{"step": s, "d_loss": 1.4 - s / 100, "g_loss": 0.7 + s / 100} for s in range(50)]
>>> path = plot_losses(rows, Path(tempfile.mkdtemp()) / "losses.png")
>>> Image.open(path).size
(800, 450)
>>> _ = plot_losses(rows + [{"step": 50, "d_loss": float("nan"), "g_loss": float("inf")}], path)  # not drawn
"""
import math
import os
from pathlib import Path

from PIL import Image, ImageDraw

COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
SIZE, MARGIN = (800, 450), (60, 20, 20, 40)  # left, top, right, bottom


def plot_losses(rows, path, keys=None, title="Generator and discriminator loss during training"):
    """Draw every numeric column of `rows` (dicts with a "step") except step/epoch; returns path."""
    keys = keys or [k for k in rows[0] if k not in ("step", "epoch", "time")] if rows else []
    image = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = MARGIN[0], MARGIN[1], SIZE[0] - MARGIN[2], SIZE[1] - MARGIN[3]
    draw.text((left, 4), title, fill="black")
    values = sorted(r[k] for r in rows for k in keys if k in r and math.isfinite(r[k]))  # no NaN (a skipped step)
    if values:
        y_lo, y_hi = values[len(values) // 100], values[-1 - len(values) // 100]
        if y_hi - y_lo < 1e-6:
            y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
        x_lo, x_hi = rows[0]["step"], max(rows[-1]["step"], rows[0]["step"] + 1)

        def xy(step, value):  # data -> pixel, clipped to the frame
            fx = (step - x_lo) / (x_hi - x_lo)
            fy = min(max((value - y_lo) / (y_hi - y_lo), 0.0), 1.0)
            return left + fx * (right - left), bottom - fy * (bottom - top)

        for i in range(5):  # horizontal grid lines with their loss values
            value = y_lo + (y_hi - y_lo) * i / 4
            y = xy(x_lo, value)[1]
            draw.line([(left, y), (right, y)], fill=(225, 225, 225))
            draw.text((4, y - 6), f"{value:.3g}", fill="black")
        draw.text((left, bottom + 6), f"step {x_lo}", fill="black")
        draw.text((right - 90, bottom + 6), f"step {x_hi}", fill="black")
        for i, key in enumerate(keys):
            color = COLORS[i % len(COLORS)]
            points = [(r["step"], r[key]) for r in rows if key in r and math.isfinite(r[key])]
            if not points:
                continue
            window = max(1, len(points) // 100)
            faint = tuple(c + (255 - c) * 2 // 3 for c in color)
            if window > 1:  # raw values faint, their moving average on top
                draw.line([xy(s, v) for s, v in points], fill=faint, width=1)
                points = moving_average(points, window)
            draw.line([xy(s, v) for s, v in points], fill=color, width=2)
            draw.rectangle([right - 150, top + 8 + 16 * i, right - 138, top + 18 + 16 * i], fill=color)
            draw.text((right - 132, top + 6 + 16 * i), key, fill="black")
    draw.rectangle([left, top, right, bottom], outline="black")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)  # a viewer never sees half a PNG
    return path


def moving_average(points, window):
    """Mean of each run of `window` consecutive (step, value) points, at the run's last step.

    >>> moving_average([(0, 1.0), (1, 3.0), (2, 5.0), (3, 7.0)], 2)
    [(1, 2.0), (3, 6.0)]
    """
    return [(points[i + window - 1][0], sum(v for _, v in points[i:i + window]) / window)
            for i in range(0, len(points) - window + 1, window)]
