"""Images in and out: PIL <-> tensor in the tanh range, safe loading, atomic saving, sample grids.

A GAN's generator ends in tanh, so every image the networks see or produce lives in [-1, 1]. The
8-bit pixel value v in {0..255} maps to

    x = v / 127.5 - 1          (from_pil: 0 -> -1, 255 -> +1)
    v = round((x + 1) * 127.5)  (to_pil, after clamping x to [-1, 1])

which are exact inverses on the 256 pixel values, so a real image survives a round trip unchanged:

>>> import torch
>>> t = torch.tensor([[[-1.0, 0.0, 1.0]]])          # 1x1x3: black, mid grey, white
>>> img = to_pil(t)
>>> img.mode, img.size, [img.getpixel((x, 0)) for x in range(3)]
('L', (3, 1), [0, 128, 255])
>>> from_pil(img)
tensor([[[-1.0000,  0.0039,  1.0000]]])

A grid lays a batch out row by row, `nrow` images per row, with `padding` pixels of black around
every cell (the layout torchvision's make_grid uses), so 10 images of 8x8 with nrow=4:

>>> make_grid(torch.zeros(10, 3, 8, 8), nrow=4, padding=2).shape   # 3 rows of 4 cells of 10x10, +2
torch.Size([3, 32, 42])

Files are written atomically (a temp file in the same folder, then a rename), so an interrupted run
never leaves a half-written PNG where a sample or a dataset file is expected.
"""
import contextlib
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import MiniganError
from ..files import write_atomically

# The reference code's list (data/image_folder.py: jpg jpeg png ppm bmp tif tiff, either case), so a
# folder it trains on trains here too, plus .webp, which Pillow also reads.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff", ".webp")
EXTENSIONS = " ".join(IMAGE_EXTENSIONS)  # for messages: "no images (.jpg .jpeg ...) in ..."
MODES = {1: "L", 3: "RGB"}  # channels -> PIL mode


def image_files(folder):
    """All image files under `folder` (recursive), sorted; other files are skipped by extension.

    Hidden files and folders (names starting with '.', e.g. macOS '._x.jpg' resource forks that zip
    tools leave behind) are skipped too: they carry an image extension but are not images.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MiniganError(f"image folder not found: {folder} (pass an existing folder of images)")
    found = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder).parts
        if any(part.startswith(".") for part in relative):
            continue
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
            found.append(path)
    return sorted(found)


def _to_mode(img, mode):
    """Convert to "RGB" or "L"; palette images with a transparent colour go through RGBA first."""
    if img.mode == mode:
        return img.copy()
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # PIL warns when converting such palettes straight to RGB
    return img.convert(mode)       # alpha is dropped, as the reference loaders' convert('RGB') does


def load_image(path, channels=3):
    """Open, fully decode and convert an image file to RGB (channels=3) or grayscale (channels=1).

    Grayscale, RGBA and palette files all come back in the requested mode (horse2zebra has 7
    grayscale JPEGs among its colour ones). A missing, empty, truncated or undecodable file raises
    MiniganError naming it.
    """
    if channels not in MODES:
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    with decoded(path) as img:
        return _to_mode(img, MODES[channels])


def image_problem(path):
    """Why the file `path` is not a usable image (a short phrase), or None when it opens and fully
    decodes: what `load_image` would fail on, without converting anything.

    >>> image_problem(Path(__file__))
    'cannot identify image file'
    """
    try:
        with decoded(path, reduced=True):
            return None
    except BadImage as e:
        return e.reason


class BadImage(MiniganError):
    """An image file that cannot be used: `path` and the `reason`, e.g. "truncated" or "empty"."""

    def __init__(self, path, reason):
        super().__init__(f"cannot read image {path}: {reason}; delete or replace the file")
        self.path, self.reason = path, reason


@contextlib.contextmanager
def decoded(path, reduced=False):
    """The opened and fully decoded PIL image of `path`; BadImage (a MiniganError) otherwise.

    reduced: a JPEG is decoded at 1/8 of its size (every coefficient is still read, so a truncated or
    corrupt file still fails; only the inverse DCT is smaller): about 1.5x faster, for checking."""
    path = Path(path)
    if not path.is_file():
        raise BadImage(path, "file not found")
    if path.stat().st_size == 0:
        raise BadImage(path, "empty file (0 bytes)")
    try:
        with Image.open(path) as img:
            if reduced and img.format == "JPEG":
                img.draft(img.mode, (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()  # decode now: a truncated file fails here, not later inside a DataLoader
            if img.width == 0 or img.height == 0:
                raise BadImage(path, f"zero size ({img.width}x{img.height})")
            yield img
    except MiniganError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        reason = (str(e).strip() or type(e).__name__).splitlines()[0].replace(f" '{path}'", "")
        raise BadImage(path, reason) from None


def from_pil(img):
    """PIL image -> float tensor CxHxW in [-1, 1] (C=1 for "L", else 3: other modes become RGB)."""
    if img.mode not in ("L", "RGB"):
        img = _to_mode(img, "RGB")
    pixels = torch.from_numpy(np.array(img, dtype=np.uint8))  # HxW or HxWx3, uint8
    if pixels.ndim == 2:
        pixels = pixels.unsqueeze(2)
    return pixels.permute(2, 0, 1).float() / 127.5 - 1.0  # CxHxW in [-1, 1]


def to_pil(t, truncate=False):
    """Float tensor CxHxW (C=1 or 3) or HxW in [-1, 1] -> PIL "L"/"RGB" image; out-of-range values clamp.

    truncate=True converts to 8 bits as the reference code's tensor2im does, v = floor((x + 1) * 127.5)
    (its `astype(uint8)`), instead of rounding: about half the pixels come out one level darker.

    >>> t = torch.tensor([[[-0.5, 0.0, 0.6]]])                    # (x + 1) * 127.5 = 63.75, 127.5, 204
    >>> [[to_pil(t, truncate).getpixel((i, 0)) for i in range(3)] for truncate in (False, True)]
    [[64, 128, 204], [63, 127, 204]]
    """
    t = t.detach().cpu().float()
    if t.ndim == 2:
        t = t.unsqueeze(0)
    if t.ndim != 3 or t.shape[0] not in MODES:
        raise ValueError(f"to_pil expects a CxHxW tensor with C=1 or 3 (or HxW), got shape {tuple(t.shape)}")
    t = torch.nan_to_num(t, nan=0.0).clamp(-1.0, 1.0)
    pixels = (t + 1.0) * 127.5  # in float32, the same as the reference's (x + 1) / 2 * 255
    pixels = (pixels if truncate else pixels.round()).to(torch.uint8)  # CxHxW in {0..255}; uint8 truncates
    array = pixels.permute(1, 2, 0).numpy()                 # HxWxC, as PIL wants
    if array.shape[2] == 1:
        return Image.fromarray(array[:, :, 0], mode="L")
    return Image.fromarray(array, mode="RGB")


def _save_atomic(img, path):
    """Write `img` to `path` atomically (minigan.files.write_atomically): never half a file."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise MiniganError(f"cannot save image {path}: unknown extension '{path.suffix}' (use .png or .jpg)")
    write_atomically(path, lambda f: img.save(f, format=fmt))


def save_image(t, path, truncate=False):
    """Save one CxHxW (or HxW) tensor in [-1, 1] as an image file (format from the extension),
    atomically; `truncate` as in to_pil."""
    _save_atomic(to_pil(t, truncate), path)


def make_grid(batch, nrow=8, padding=2):
    """NxCxHxW batch -> one Cx(rows*(H+p)+p)x(cols*(W+p)+p) image, cells row by row, black padding."""
    if batch.ndim == 3:
        batch = batch.unsqueeze(0)
    if batch.ndim != 4 or batch.shape[0] == 0:
        raise ValueError(f"make_grid expects a non-empty NxCxHxW batch, got shape {tuple(batch.shape)}")
    if nrow < 1 or padding < 0:
        raise ValueError(f"nrow must be >= 1 and padding >= 0, got nrow={nrow}, padding={padding}")
    n, c, h, w = batch.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = batch.new_full((c, rows * (h + padding) + padding, cols * (w + padding) + padding), -1.0)
    for i in range(n):
        top = padding + (i // cols) * (h + padding)
        left = padding + (i % cols) * (w + padding)
        grid[:, top:top + h, left:left + w] = batch[i]
    return grid


def save_grid(batch, path, nrow=8, padding=2):
    """Save an NxCxHxW batch in [-1, 1] as one grid image (see make_grid), atomically."""
    save_image(make_grid(batch.detach().cpu(), nrow, padding), path)
