"""Datasets and transforms: MNIST idx files, an image folder, pix2pix A|B pairs, CycleGAN domains.

Every item is a float tensor CxSxS in [-1, 1], the range of the generator's tanh output, so real and
fake images are compared on the same scale (see images.py for the pixel mapping).

The training transform of pix2pix and CycleGAN ("resize_and_crop" + flip in the reference code):

    resize to load_size x load_size (bicubic) -> random crop_size x crop_size -> random h-flip (p=1/2)

a cheap augmentation ("remember data augmentation", as the course says): with the papers' 286 / 256
every epoch sees each image shifted by up to 30 pixels and mirrored half the time. At test time
(train=False) the image is only resized to crop_size x crop_size.

Randomness comes from torch's RNG (torch.randint / torch.rand) inside __getitem__, so torch's seeding
governs it: torch.manual_seed(s) in the main process makes num_workers=0 reproducible, and a
DataLoader seeds each worker's torch RNG from its own base seed, so num_workers>0 is reproducible
under torch.manual_seed too (and workers never repeat each other's crops).

>>> from PIL import Image
>>> img = Image.new("RGB", (300, 200), "white")
>>> _ = torch.manual_seed(0)
>>> transform(img, load_size=286, crop_size=256, train=True).shape
torch.Size([3, 256, 256])
>>> transform(img, load_size=286, crop_size=256, train=False).amin().item()   # white -> +1
1.0
"""
import gzip
import struct
import zlib
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import MiniganError
from .images import EXTENSIONS, from_pil, image_files, load_image

# ----------------------------------------------------------------------------------------------
# Transforms


def random_crop_flip(load_size, crop_size, generator=None):
    """Draw one crop corner (top, left) and a flip decision, from torch's RNG (or `generator`)."""
    top = int(torch.randint(0, load_size - crop_size + 1, (1,), generator=generator))
    left = int(torch.randint(0, load_size - crop_size + 1, (1,), generator=generator))
    flip = bool(torch.rand(1, generator=generator) < 0.5)
    return top, left, flip


def transform(img, load_size=286, crop_size=256, train=True, params=None, generator=None):
    """PIL image -> CxSxS tensor in [-1, 1]; train: resize, random crop, random flip; test: resize.

    `params` = (top, left, flip) from random_crop_flip applies a given crop and flip: pix2pix passes the
    same params for A and B so the two halves stay aligned pixel for pixel. 286 / 256 are the papers'.
    """
    if not 1 <= crop_size <= load_size:
        raise ValueError(f"need 1 <= crop_size <= load_size, got crop_size={crop_size}, load_size={load_size}")
    if not train:
        return from_pil(img.resize((crop_size, crop_size), Image.BICUBIC))
    top, left, flip = params if params is not None else random_crop_flip(load_size, crop_size, generator)
    img = img.resize((load_size, load_size), Image.BICUBIC)
    img = img.crop((left, top, left + crop_size, top + crop_size))
    if flip:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return from_pil(img)


def center_square(img, size):
    """The DCGAN tutorial's Resize(size) then CenterCrop(size), computed as torchvision does on a PIL
    image: the shorter side to `size` and the longer to int(size * long / short) (truncated), with
    Pillow's bilinear filter (which, shrinking, averages over the whole footprint); then the
    size x size square at offset round((side - size) / 2) (Python's round: halves go to even).

    >>> center_square(Image.new("RGB", (259, 173)), 64).size     # via 95x64, cut at left = round(15.5) = 16
    (64, 64)
    """
    w, h = img.size
    if w <= h:
        w, h = size, int(size * h / w)
    else:
        w, h = int(size * w / h), size
    img = img.resize((w, h), Image.BILINEAR)
    left, top = int(round((w - size) / 2.0)), int(round((h - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def _item_generator(seed, index):
    """A generator seeded by (seed, index): item `index` draws the same numbers in any worker/order."""
    return None if seed is None else torch.Generator().manual_seed(seed * 1_000_003 + index)


def _images_in(folder, what):
    """The sorted image files of `folder`; a missing or image-less folder is a MiniganError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MiniganError(f"{what}: folder not found: {folder}")
    files = image_files(folder)
    if not files:
        raise MiniganError(f"{what}: no images ({EXTENSIONS}) in {folder}")
    return files


# ----------------------------------------------------------------------------------------------
# MNIST from the four idx files

MNIST_FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
IDX_IMAGES, IDX_LABELS = 2051, 2049  # the idx magic numbers: 0x0803 (ubyte, 3 dims), 0x0801


def _find_idx(root, name):
    """`name` or `name.gz` in root (or root/raw, root/MNIST/raw, torchvision's layout)."""
    for folder in (root, root / "raw", root / "MNIST" / "raw"):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise MiniganError(f"MNIST file {name}(.gz) not found in {root}: put the four idx files there "
                       f"(or pass --data mnist to download them)")


def read_idx(path, magic):
    """Read an idx file (gzipped or not) -> uint8 tensor: (N, rows, cols) for images, (N,) for labels.

    Format: big-endian int32 magic, int32 count (and rows, cols for images), then the raw bytes.
    """
    path = Path(path)
    try:
        data = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise MiniganError(f"cannot read MNIST file {path}: {e}; download it again") from None
    dims = 3 if magic == IDX_IMAGES else 1
    header = 4 * (1 + dims)
    if len(data) < header or struct.unpack(">i", data[:4])[0] != magic:
        raise MiniganError(f"{path} is not an MNIST idx file (magic number is not {magic}); "
                           f"download it again")
    shape = struct.unpack(f">{dims}i", data[4:header])
    if len(data) != header + int(torch.tensor(shape).prod()):
        raise MiniganError(f"{path} is truncated or padded: header says {shape}, "
                           f"file has {len(data) - header} data bytes; download it again")
    return torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8).reshape(shape)


class MNIST(torch.utils.data.Dataset):
    """The MNIST digits: item = (image 1xSxS in [-1, 1], label int 0..9); 60000 train, 10000 test.

    `root` holds the four official idx files (gzipped or not). image_size != 28 resizes bilinearly
    (DCGAN works at 64x64).
    """

    def __init__(self, root, train=True, image_size=28):
        root = Path(root)
        if not root.is_dir():
            raise MiniganError(f"MNIST folder not found: {root}")
        images_name, labels_name = MNIST_FILES[bool(train)]
        self.images = read_idx(_find_idx(root, images_name), IDX_IMAGES)  # N x 28 x 28, uint8
        self.labels = read_idx(_find_idx(root, labels_name), IDX_LABELS)  # N, uint8
        if len(self.images) != len(self.labels):
            raise MiniganError(f"MNIST files in {root} disagree: {len(self.images)} images but "
                               f"{len(self.labels)} labels; download them again")
        if len(self.labels) and int(self.labels.max()) > 9:
            raise MiniganError(f"MNIST labels in {root} go above 9: not an MNIST label file")
        self.image_size = image_size

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x = self.images[i].float().div(127.5).sub(1.0)[None]  # 1 x 28 x 28 in [-1, 1]
        if x.shape[-1] != self.image_size:
            x = F.interpolate(x[None], size=(self.image_size, self.image_size), mode="bilinear",
                              align_corners=False, antialias=True)[0].clamp(-1.0, 1.0)
        return x, int(self.labels[i])


# ----------------------------------------------------------------------------------------------
# A folder of images (DCGAN)


class ImageFolder(torch.utils.data.Dataset):
    """Every image under `root` (flat or nested, sorted): item = image CxSxS in [-1, 1].

    Resized (shorter side to image_size) and centre-cropped to a square, as in the DCGAN tutorial;
    channels=1 makes grayscale. Non-image files are skipped; an unreadable image is an error naming it.
    """

    def __init__(self, root, image_size=64, channels=3):
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {image_size}")
        self.files = _images_in(root, "ImageFolder")
        self.image_size, self.channels = image_size, channels

    def __len__(self):
        return len(self.files)

    def file_lists(self):
        """The lists of files read (for checking them all before training: minigan.data.check)."""
        return [self.files]

    def __getitem__(self, i):
        img = load_image(self.files[i], self.channels)
        return from_pil(center_square(img, self.image_size))


# ----------------------------------------------------------------------------------------------
# pix2pix: side-by-side pairs


def _check_not_unpaired(root, loader):
    if (root / "trainA").is_dir() or (root / "testA").is_dir():
        raise MiniganError(f"{root} has the unpaired layout (trainA/ trainB/ ...): {loader} needs "
                           f"root/{{train,val,test}}/ of side-by-side A|B images; use the CycleGAN loader")


class PairedImages(torch.utils.data.Dataset):
    """pix2pix pairs: each file in root/split/ is A|B side by side; item = (a, b) each 3xSxS in [-1, 1].

    direction "BtoA" swaps them (facades: A = photo, B = labels, the task is labels -> photo). The
    same random crop and flip go to both halves, so a and b stay aligned pixel for pixel.
    """

    def __init__(self, root, split="train", direction="AtoB", load_size=286, crop_size=256, train=True):
        if direction not in ("AtoB", "BtoA"):
            raise ValueError(f"direction must be 'AtoB' or 'BtoA', got {direction!r}")
        if not 1 <= crop_size <= load_size:
            raise ValueError(f"need 1 <= crop_size <= load_size, got crop_size={crop_size}, load_size={load_size}")
        root = Path(root)
        if not root.is_dir():
            raise MiniganError(f"paired dataset folder not found: {root}")
        _check_not_unpaired(root, "PairedImages")
        if not (root / split).is_dir():
            present = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
            raise MiniganError(f"no '{split}' split in {root} (found folders: {', '.join(present) or 'none'}); "
                               f"expected root/{split}/ of side-by-side A|B images")
        self.files = _images_in(root / split, "PairedImages")
        self.direction, self.load_size, self.crop_size, self.train = direction, load_size, crop_size, train

    def __len__(self):
        return len(self.files)

    def file_lists(self):
        return [self.files]

    def __getitem__(self, i):
        ab = load_image(self.files[i])
        if ab.width < 2:
            raise MiniganError(f"{self.files[i]} is {ab.width} pixel wide: not a side-by-side A|B pair")
        return split_pair(ab, self.direction, self.load_size, self.crop_size, self.train)


def halves(ab, direction="AtoB"):
    """One A|B image -> its (input, target) halves, PIL images: A is the left w // 2 columns, as the
    reference's aligned dataset cuts them; BtoA swaps them."""
    w, h = ab.size
    a, b = ab.crop((0, 0, w // 2, h)), ab.crop((w // 2, 0, w, h))
    return (a, b) if direction == "AtoB" else (b, a)


def split_pair(ab, direction="AtoB", load_size=286, crop_size=256, train=True):
    """One A|B image -> (input, target) tensors; the halves share one random crop and flip."""
    x, y = halves(ab, direction)
    params = random_crop_flip(load_size, crop_size) if train else None
    return transform(x, load_size, crop_size, train, params), transform(y, load_size, crop_size, train, params)


# ----------------------------------------------------------------------------------------------
# CycleGAN: two unpaired domains


class UnpairedImages(torch.utils.data.Dataset):
    """CycleGAN domains root/{split}A/ and root/{split}B/: item i = (A[i % len A], a random B).

    As in the reference code, len = max(len A, len B) and B is drawn at random so the pairs change
    every epoch. seed=None: torch's RNG (seeded per worker by the DataLoader). seed=int: item i always
    gets the same B, crop and flip (a generator seeded by (seed, i)), e.g. for a fixed evaluation set.
    """

    def __init__(self, root, split="train", load_size=286, crop_size=256, train=True, seed=None):
        if not 1 <= crop_size <= load_size:
            raise ValueError(f"need 1 <= crop_size <= load_size, got crop_size={crop_size}, load_size={load_size}")
        root = Path(root)
        if not root.is_dir():
            raise MiniganError(f"unpaired dataset folder not found: {root}")
        dir_a, dir_b = root / f"{split}A", root / f"{split}B"
        if not dir_a.is_dir() or not dir_b.is_dir():
            if any((root / s).is_dir() for s in ("train", "val", "test")):
                raise MiniganError(f"{root} has the paired layout (train/ val/ test/ of A|B images): "
                                   f"UnpairedImages needs {split}A/ and {split}B/; use the pix2pix loader")
            raise MiniganError(f"{root} lacks {split}A/ and {split}B/: UnpairedImages needs one folder per domain "
                               f"(trainA/ trainB/ testA/ testB/)")
        self.files_a = _images_in(dir_a, "UnpairedImages")
        self.files_b = _images_in(dir_b, "UnpairedImages")
        self.load_size, self.crop_size, self.train, self.seed = load_size, crop_size, train, seed

    def __len__(self):
        return max(len(self.files_a), len(self.files_b))

    def file_lists(self):
        return [self.files_a, self.files_b]

    def __getitem__(self, i):
        g = _item_generator(self.seed, i)
        j = int(torch.randint(0, len(self.files_b), (1,), generator=g))
        a = load_image(self.files_a[i % len(self.files_a)])
        b = load_image(self.files_b[j])
        # each domain gets its own crop and flip: the images are unrelated, nothing to keep aligned
        return (transform(a, self.load_size, self.crop_size, self.train, generator=g),
                transform(b, self.load_size, self.crop_size, self.train, generator=g))
