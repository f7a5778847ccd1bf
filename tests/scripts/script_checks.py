"""Checks shared by the training scripts' end-to-end tests (imported by tests/test_train_*.py)."""
import gzip
import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
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


def small_mnist(source, dest, n_train):
    """`dest` holding the first `n_train` training digits of the real MNIST at `source` (idx files
    written anew) and its whole test split (links): an epoch of a few steps, and real test digits."""
    dest.mkdir(parents=True)
    for kind, dims in (("images", 3), ("labels", 1)):
        name = f"train-{kind}-idx{dims}-ubyte"
        data = gzip.open(source / f"{name}.gz").read()
        header = 4 * (1 + dims)
        magic, _, *shape = struct.unpack(">" + "i" * (1 + dims), data[:header])
        size = n_train * int(np.prod(shape))  # bytes of n_train items (np.prod([]) is 1 for labels)
        (dest / name).write_bytes(struct.pack(">" + "i" * (1 + dims), magic, n_train, *shape)
                                  + data[header:header + size])
        test = f"t10k-{kind}-idx{dims}-ubyte.gz"
        (dest / test).symlink_to(source / test)
    return dest


# --- the run report in a real browser ---

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# appended to a copy of the page: once everything has loaded, each <img> records the size it decoded to
RECORD_SIZES = ("<script>addEventListener('load', () => { for (const im of document.images) "
                "im.setAttribute('data-natural', im.naturalWidth + 'x' + im.naturalHeight); });</script>")


def browser():
    """A headless-capable Chromium, or skip saying how to get one."""
    found = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
    if not found:
        pytest.skip("no Chromium to render the run report: `apt-get install chromium` (.ci/run installs it)")
    return found


def headless(*args):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"]
    return subprocess.run([browser(), *flags, *args], capture_output=True, text=True, timeout=120)


def assert_report_renders(folder):
    """The run's index.html, opened from disk in headless Chromium, shows every image it references:
    each <img> decoded at the size of its file (a missing or broken one decodes to 0x0), and its
    screenshot is not blank. Every reference is relative, inside the run directory. Returns the
    screenshot's path (beside the run directory)."""
    page = Path(folder) / "index.html"
    html = page.read_text()
    sources = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert sources and "samples/" in " ".join(sources) and "losses.png" in sources, sources
    for src in sources:
        assert not re.match(r"^(/|[a-z]+:)", src) and ".." not in src, f"not a relative path: {src}"
    check = page.with_name("index-check.html")  # beside the page, so the relative paths resolve the same
    check.write_text(html.replace("</body>", RECORD_SIZES + "</body>"))
    try:
        dom = headless("--dump-dom", "--virtual-time-budget=10000", check.as_uri()).stdout
    finally:
        check.unlink()
    decoded = re.findall(r'<img [^>]*src="([^"]+)"[^>]*data-natural="(\d+)x(\d+)"', dom)
    assert [src for src, _, _ in decoded] == sources, dom[-2000:]
    for src, width, height in decoded:
        assert int(width) > 0 and int(height) > 0, f"{src} did not load in the browser"
        assert (int(width), int(height)) == Image.open(Path(folder) / src).size, src
    shot = Path(folder).with_name(Path(folder).name + "-report.png")
    headless(f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri())
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 10, "the screenshot is blank"
    return shot
