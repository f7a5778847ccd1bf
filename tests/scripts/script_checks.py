"""Checks shared by the training scripts' end-to-end tests (imported by tests/test_train_*.py)."""
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from minigan.data.images import from_pil, load_image, to_pil


def link_subset(source, dest, counts):
    """`dest` holding the first counts[split] files of each split folder of `source`, as links: a
    real dataset small enough for an epoch of a few steps."""
    for split, n in counts.items():
        (dest / split).mkdir(parents=True)
        for f in sorted((source / split).iterdir())[:n]:
            (dest / split / f.name).symlink_to(f)
    return dest


def record_lrs(monkeypatch, script):
    """Wrap `script.train_step` so that each call first records the LR of every optimizer passed to
    it; returns the list it fills, one tuple per step."""
    lrs, step = [], script.train_step

    def recording(*args, **kwargs):
        optimizers = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.optim.Optimizer)]
        lrs.append(tuple(o.param_groups[0]["lr"] for o in optimizers))
        return step(*args, **kwargs)
    monkeypatch.setattr(script, "train_step", recording)
    return lrs


def read_log(folder):
    """The rows of a run's losses.jsonl."""
    return [json.loads(line) for line in (Path(folder) / "losses.jsonl").read_text().splitlines()]


def flatten(tree):
    """The leaves of nested dicts/lists/tuples (a state_dict), in a fixed order."""
    if isinstance(tree, dict):
        return [leaf for key in sorted(tree, key=str) for leaf in flatten(tree[key])]
    if isinstance(tree, (list, tuple)):
        return [leaf for item in tree for leaf in flatten(item)]
    return [tree]


def assert_same_state(a, b, names):
    """Two checkpoints hold exactly `names`, and every tensor and number under them is identical."""
    assert sorted(a["state"]) == sorted(b["state"]) == sorted(names)
    for name in names:
        leaves_a, leaves_b = flatten(a["state"][name]), flatten(b["state"][name])
        assert len(leaves_a) == len(leaves_b) > 0, name
        for x, y in zip(leaves_a, leaves_b):
            assert torch.equal(x, y) if torch.is_tensor(x) else x == y, name


def assert_translated(G, source, output, size=None, half=None, run=None):
    """`output` is G's translation of the image file `source` (of its left or right `half` for an A|B
    pair): by the reference's protocol at size x size (Pillow bicubic in, 8 bits by truncation), or
    with size None at the image's own size, one G takes (rounded); up to one level (float32 sums).
    `run(G, x)` computes G's output (default: G(x))."""
    run = run or (lambda G, x: G(x))
    img = load_image(source)
    if half is not None:
        w, h = img.size
        img = img.crop((0, 0, w // 2, h) if half == "left" else (w // 2, 0, w, h))
    with torch.no_grad():
        if size is None:
            expected = to_pil(run(G, from_pil(img)[None])[0])
        else:
            expected = to_pil(run(G, from_pil(img.resize((size, size), Image.BICUBIC))[None])[0], truncate=True)
    diff = np.asarray(Image.open(output), dtype=int) - np.asarray(expected, dtype=int)
    assert np.abs(diff).max() <= 1
