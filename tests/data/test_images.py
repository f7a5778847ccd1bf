"""images.py: pixel mapping round trips, loading odd files, grids, atomic writes."""
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from minigan.errors import MiniganError
from minigan.data.images import (from_pil, image_files, load_image, make_grid, save_grid, save_image,
                            to_pil)


def pixel_arrays():
    shapes = st.tuples(st.integers(1, 12), st.integers(1, 12)) | \
        st.tuples(st.integers(1, 12), st.integers(1, 12), st.just(3))
    return shapes.flatmap(lambda s: arrays(np.uint8, s))


@given(pixel_arrays())
def test_round_trip_pil_tensor_pil_is_exact(pixels):
    img = Image.fromarray(pixels)
    t = from_pil(img)
    channels = 1 if pixels.ndim == 2 else 3
    assert t.shape == (channels, *pixels.shape[:2]) and t.dtype == torch.float32
    assert t.min() >= -1 and t.max() <= 1
    # the definition: v / 127.5 - 1
    expected = torch.from_numpy(pixels.astype(np.float32)).reshape(*pixels.shape[:2], channels) / 127.5 - 1
    torch.testing.assert_close(t, expected.permute(2, 0, 1))
    back = to_pil(t)
    assert back.mode == ("L" if channels == 1 else "RGB")
    assert np.array_equal(np.array(back), pixels)


@given(st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=30))
def test_to_pil_clamps_and_rounds(values):
    t = torch.tensor(values).reshape(1, 1, -1)
    got = np.array(to_pil(t)).reshape(-1).astype(int)
    want = [round((min(max(v, -1.0), 1.0) + 1) * 127.5) for v in values]
    assert np.abs(got - np.array(want)).max() <= 1  # float32 vs python float at .5 ties


def test_to_pil_shapes():
    assert to_pil(torch.zeros(4, 5)).size == (5, 4)  # HxW -> grayscale, PIL size is (w, h)
    assert to_pil(torch.zeros(3, 4, 5, requires_grad=True)).mode == "RGB"
    assert to_pil(torch.full((1, 2, 2), float("nan"))).getpixel((0, 0)) == 128
    with pytest.raises(ValueError, match="C=1 or 3"):
        to_pil(torch.zeros(2, 4, 4))
    with pytest.raises(ValueError):
        to_pil(torch.zeros(1, 3, 4, 4))


def test_from_pil_other_modes_become_rgb():
    rgba = Image.new("RGBA", (3, 2), (10, 20, 30, 0))
    assert from_pil(rgba).shape == (3, 2, 3)
    palette = Image.new("P", (3, 2))
    assert from_pil(palette).shape == (3, 2, 3)


def save_as(tmp_path, name, img, **kw):
    path = tmp_path / name
    img.save(path, **kw)
    return path


def test_load_image_converts_modes(tmp_path):
    gray = save_as(tmp_path, "gray.jpg", Image.new("L", (5, 4), 100))
    rgba = save_as(tmp_path, "rgba.png", Image.new("RGBA", (5, 4), (1, 2, 3, 4)))
    pal = Image.new("P", (5, 4), 1)
    pal.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    pal.info["transparency"] = 0
    pal = save_as(tmp_path, "pal.png", pal, transparency=0)
    for path in (gray, rgba, pal):
        img = load_image(path)
        assert img.mode == "RGB" and img.size == (5, 4)
        assert load_image(path, channels=1).mode == "L"
    assert load_image(pal).getpixel((0, 0)) == (200, 100, 50)
    assert load_image(rgba).getpixel((0, 0)) == (1, 2, 3)
    with pytest.raises(ValueError):
        load_image(gray, channels=2)


def test_load_image_bad_files_name_the_file(tmp_path):
    good = tmp_path / "good.jpg"
    Image.new("RGB", (64, 64), "red").save(good)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:300])
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not a png at all" * 10)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    for path in (truncated, garbage, empty, tmp_path / "missing.jpg"):
        with pytest.raises(MiniganError, match=path.name) as info:
            load_image(path)
        assert "\n" not in str(info.value)


def test_image_files_sorted_recursive_by_extension(tmp_path):
    for rel in ["b.PNG", "a.jpg", "sub/c.jpeg", "sub/deeper/d.BMP", "e.webp", "notes.txt", "x.gif", "g.ppm", "h.TIF",
                "i.tiff",
                ".hidden.jpg", ".cache/f.jpg", "sub/._c.jpeg"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    (tmp_path / "folder.jpg").mkdir()  # a folder with an image-like name is not a file
    names = [p.relative_to(tmp_path).as_posix() for p in image_files(tmp_path)]
    assert names == ["a.jpg", "b.PNG", "e.webp", "g.ppm", "h.TIF", "i.tiff", "sub/c.jpeg", "sub/deeper/d.BMP"]
    assert image_files(tmp_path / "sub" / "deeper") == [tmp_path / "sub/deeper/d.BMP"]
    with pytest.raises(MiniganError, match="not found"):
        image_files(tmp_path / "nope")


def test_the_references_lossless_formats_load(tmp_path):
    # .ppm and .tif/.tiff are on the reference code's list of image extensions: found and decoded exactly
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    for name in ("a.ppm", "b.tif", "c.TIFF"):
        Image.fromarray(pixels).save(tmp_path / name)
    files = image_files(tmp_path)
    assert [f.name for f in files] == ["a.ppm", "b.tif", "c.TIFF"]
    assert all(np.array_equal(np.asarray(load_image(f)), pixels) for f in files)


def naive_grid(batch, nrow, padding):
    """The layout by definition: a black canvas, image i at row i // cols, column i % cols."""
    n, c, h, w = batch.shape
    cols = min(nrow, n)
    rows = -(-n // cols)
    canvas = torch.full((c, padding + rows * (h + padding), padding + cols * (w + padding)), -1.0)
    for i in range(n):
        for y in range(h):
            for x in range(w):
                canvas[:, padding + (i // cols) * (h + padding) + y,
                       padding + (i % cols) * (w + padding) + x] = batch[i, :, y, x]
    return canvas


@given(n=st.integers(1, 11), c=st.sampled_from([1, 3]), h=st.integers(1, 5), w=st.integers(1, 5),
       nrow=st.integers(1, 9), padding=st.integers(0, 3))
def test_make_grid_matches_definition(n, c, h, w, nrow, padding):
    batch = torch.rand(n, c, h, w) * 2 - 1
    grid = make_grid(batch, nrow, padding)
    cols = min(nrow, n)
    rows = -(-n // cols)
    assert grid.shape == (c, rows * (h + padding) + padding, cols * (w + padding) + padding)
    assert torch.equal(grid, naive_grid(batch, nrow, padding))


def test_make_grid_bad_arguments():
    with pytest.raises(ValueError):
        make_grid(torch.zeros(0, 3, 4, 4))
    with pytest.raises(ValueError):
        make_grid(torch.zeros(2, 3, 4, 4), nrow=0)
    assert make_grid(torch.zeros(3, 4, 4)).shape == (3, 8, 8)  # one CHW image


def test_save_grid_writes_the_grid(tmp_path):
    batch = torch.rand(10, 3, 8, 6) * 2 - 1
    path = tmp_path / "samples" / "grid.png"  # the folder is created
    save_grid(batch, path, nrow=4, padding=2)
    img = Image.open(path)
    assert img.format == "PNG" and img.mode == "RGB" and img.size == (4 * 8 + 2, 3 * 10 + 2)
    assert np.array_equal(np.array(img), np.array(to_pil(make_grid(batch, 4, 2))))
    save_grid(torch.zeros(2, 1, 5, 5), tmp_path / "gray.png", nrow=8, padding=1)
    assert Image.open(tmp_path / "gray.png").size == (13, 7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gray.png", "samples"]


def test_save_image_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "x.jpg"
    save_image(torch.zeros(3, 4, 4), path)
    assert Image.open(path).format == "JPEG"
    before = path.read_bytes()

    def failing_save(self, fp, format=None, **params):
        fp.write(b"half an image")
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of writing

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        save_image(torch.ones(3, 4, 4), path)
    assert [p.name for p in tmp_path.iterdir()] == ["x.jpg"]  # no temp file left
    assert path.read_bytes() == before                     # and the old image intact


def test_save_image_unknown_extension(tmp_path):
    with pytest.raises(MiniganError, match="unknown extension"):
        save_image(torch.zeros(3, 2, 2), tmp_path / "x.abc")
    assert list(tmp_path.iterdir()) == []
