"""--translate's two protocols on real images, against outputs computed by hand: the reference's
test.py (Pillow bicubic to S x S, the output at S x S, 8 bits by truncation) and --native-size (near
the image's own size, torch bicubic there and back, rounded); A|B pairs split per direction."""
from argparse import Namespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from minigan.errors import MiniganError
from minigan.kit.image2image import translate_files


class Pointwise(nn.Module):
    """A stand-in generator with no size constraint: tanh(1.3 x - 0.2) on every pixel."""

    def forward(self, x):
        return torch.tanh(1.3 * x - 0.2)


def by_reference(img, size, G=Pointwise()):
    """What the reference's test.py writes for `img`, step by step as its code does it."""
    arr = np.asarray(img.resize((size, size), Image.BICUBIC))                     # transforms.Resize, bicubic
    x = torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div(255).sub(0.5).div(0.5)  # ToTensor, Normalize
    y = G(x[None])[0].numpy()
    return ((np.transpose(y, (1, 2, 0)) + 1) / 2.0 * 255.0).astype(np.uint8)    # tensor2im: truncation


def by_native_size(img, multiple, G=Pointwise()):
    """--native-size: to the nearest multiples of `multiple`, G, back to the image's size, rounded."""
    x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 127.5 - 1
    h, w = x.shape[1:]
    fit = [max(multiple, round(n / multiple) * multiple) for n in (h, w)]
    y = F.interpolate(G(F.interpolate(x[None], fit, mode="bicubic")), (h, w), mode="bicubic")[0]
    return ((y.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


def translate(source, out, native=False, size=64, direction=None, multiple=8, ckpt={"step": 0}):
    args = Namespace(translate=str(source), init_from=None, native_size=native, image_size=size)
    translate_files(Pointwise(), args, ckpt, out, multiple, torch.device("cpu"), direction=direction)


def pixels(path):
    return np.asarray(Image.open(path))


@pytest.fixture
def photo(data_root):
    """A real photo, cut to 150x110 (neither square nor a size the protocols keep)."""
    return Image.open(sorted((data_root / "horse2zebra" / "testA").iterdir())[0]).convert("RGB").crop((20, 30, 170, 140))


def test_reference_protocol_on_a_real_image(photo, tmp_path):
    photo.save(tmp_path / "photo.png")
    translate(tmp_path / "photo.png", tmp_path, size=64)
    out = pixels(tmp_path / "translated" / "photo.png")
    assert out.shape == (64, 64, 3) and np.array_equal(out, by_reference(photo, 64))
    # each of the three choices shows: rounding instead of truncation, torch's bicubic instead of
    # Pillow's (which averages the whole footprint when shrinking), or the native size would differ
    x = torch.from_numpy(np.asarray(photo).copy()).permute(2, 0, 1).float() / 127.5 - 1
    y = Pointwise()(F.interpolate(x[None], (64, 64), mode="bicubic"))[0]
    torch_resized = ((y.clamp(-1, 1) + 1) * 127.5).floor().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.abs(out.astype(int) - torch_resized).mean() > 1
    arr = np.asarray(photo.resize((64, 64), Image.BICUBIC))
    rounded = ((Pointwise()(torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 127.5 - 1) + 1) * 127.5).round()
    assert 0.2 < (rounded.permute(1, 2, 0).numpy() != out).mean() < 0.8  # about half the pixels, one level


def test_native_size_on_a_real_image(photo, tmp_path):
    photo.save(tmp_path / "photo.png")
    translate(tmp_path / "photo.png", tmp_path, native=True, multiple=8)   # via 152 x 112 and back
    out = pixels(tmp_path / "translated" / "photo.png")
    assert out.shape == (110, 150, 3) and np.array_equal(out, by_native_size(photo, 8))


def test_pairs_of_a_dataset_folder_and_single_images(data_root, tmp_path):
    # a pix2pix dataset folder: its test/ split is used, every file an A|B pair
    root = tmp_path / "facades"
    for split, n in (("train", 1), ("test", 2)):
        (root / split).mkdir(parents=True)
        for f in sorted((data_root / "facades" / split).iterdir())[:n]:
            (root / split / f.name).symlink_to(f)
    translate(root, tmp_path / "run", size=64, direction="BtoA")
    tests = sorted((root / "test").iterdir())
    names = [f.stem + ".png" for f in tests]
    assert sorted(p.name for p in (tmp_path / "run" / "translated").iterdir()) == sorted(names)
    for f in tests:
        ab = Image.open(f).convert("RGB")                                      # 512 x 256: A | B
        a, b = ab.crop((0, 0, 256, 256)), ab.crop((256, 0, 512, 256))
        out = pixels(tmp_path / "run" / "translated" / (f.stem + ".png"))
        assert np.array_equal(out, by_reference(b, 64))                        # BtoA: the right half in
        side = pixels(tmp_path / "run" / "side_by_side" / (f.stem + ".png"))  # input | output | target
        expected = [np.asarray(b.resize((64, 64), Image.BICUBIC)), out, np.asarray(a.resize((64, 64), Image.BICUBIC))]
        assert np.array_equal(side, np.concatenate(expected, axis=1))

    # single files: a 2:1 image is a pair (AtoB: the left half in), any other is translated whole
    pair = sorted((data_root / "facades" / "val").iterdir())[0]
    horse = sorted((data_root / "horse2zebra" / "testA").iterdir())[0]
    for source in (pair, horse):
        translate(source, tmp_path / "single", size=64, direction="AtoB")
    ab = Image.open(pair).convert("RGB")
    assert np.array_equal(pixels(tmp_path / "single" / "translated" / (pair.stem + ".png")),
                          by_reference(ab.crop((0, 0, 256, 256)), 64))
    assert np.array_equal(pixels(tmp_path / "single" / "translated" / (horse.stem + ".png")),
                          by_reference(Image.open(horse).convert("RGB"), 64))
    assert [p.name for p in (tmp_path / "single" / "side_by_side").iterdir()] == [pair.stem + ".png"]

    # at native size a pair keeps its halves' size; without a direction (CycleGAN) nothing is a pair
    translate(pair, tmp_path / "native", native=True, direction="AtoB")
    assert pixels(tmp_path / "native" / "side_by_side" / (pair.stem + ".png")).shape == (256, 768, 3)
    translate(pair, tmp_path / "whole", native=True)
    assert pixels(tmp_path / "whole" / "translated" / (pair.stem + ".png")).shape == (256, 512, 3)
    assert not (tmp_path / "whole" / "side_by_side").exists()


def test_translate_mistakes(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(MiniganError, match="no images"):
        translate(tmp_path / "empty", tmp_path)
    with pytest.raises(MiniganError, match="needs trained weights"):
        translate(tmp_path / "empty", tmp_path, ckpt=None)
