"""data.py: transforms (properties), the four datasets on synthetic and real data, bad input."""
import gzip
import struct

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from PIL import Image

from minigan.data import (MNIST, ImageFolder, PairedImages, UnpairedImages, center_square,
                          split_pair, transform)
from minigan.errors import MiniganError
from minigan.data.images import from_pil


def noise_image(w, h, seed):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


# ----------------------------------------------------------------------------------------------
# transforms


@given(w=st.integers(1, 40), h=st.integers(1, 40), load=st.integers(1, 48), crop_frac=st.floats(0.1, 1.0),
       train=st.booleans(), seed=st.integers(0, 2**31))
def test_transform_size_and_range(w, h, load, crop_frac, train, seed):
    crop = max(1, int(load * crop_frac))
    torch.manual_seed(seed)
    x = transform(noise_image(w, h, seed), load, crop, train)
    assert x.shape == (3, crop, crop) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1


def test_transform_test_mode_is_a_plain_resize():
    img = noise_image(30, 20, 0)
    x = transform(img, 286, 16, train=False)
    want = np.array(img.resize((16, 16), Image.BICUBIC))
    assert np.array_equal(np.array(Image.fromarray(((x + 1) * 127.5).round().byte().permute(1, 2, 0).numpy())), want)
    with pytest.raises(ValueError, match="crop_size"):
        transform(img, 16, 17)


def test_transform_train_crops_and_flips_at_random():
    img = noise_image(12, 12, 1)
    torch.manual_seed(0)
    outs = [transform(img, 12, 8, train=True) for _ in range(40)]
    distinct = {tuple(o.flatten()[:20].tolist()) for o in outs}
    assert len(distinct) > 10  # 5x5 corners x 2 flips
    # flips happen: some output equals the mirror of some crop of the unflipped image
    plain = from_numpy_crops(img, 8)
    assert any(any(torch.equal(o.flip(-1), p) for p in plain) for o in outs)
    assert any(any(torch.equal(o, p) for p in plain) for o in outs)


def from_numpy_crops(img, crop):
    x = transform(img, img.width, img.width, train=False)  # no resize, just to tensor
    return [x[:, t:t + crop, l:l + crop] for t in range(img.height - crop + 1) for l in range(img.width - crop + 1)]


@given(w=st.integers(1, 50), h=st.integers(1, 50), size=st.integers(1, 40))
def test_center_square_size_and_range(w, h, size):
    img = center_square(noise_image(w, h, w * h), size)
    assert img.size == (size, size)
    x = from_pil(img)
    assert x.shape == (3, size, size) and x.min() >= -1 and x.max() <= 1


def test_center_square():
    img = Image.new("RGB", (40, 20))
    img.paste((255, 0, 0), (10, 0, 30, 20))  # the centre 20x20 is red
    out = center_square(img, 10)
    assert out.size == (10, 10)
    assert np.all(np.abs(np.array(out).astype(int) - [255, 0, 0]).max(axis=2)[:, 1:-1] <= 2)


def test_center_square_is_the_dcgan_tutorials_resize_and_crop(data_root):
    # A real photo cut to 259x173 (and turned to 173x259), by hand the tutorial's way: Resize(64) makes
    # the short side 64 and the long int(64 * 259 / 173) = int(95.8) = 95 (bilinear); CenterCrop(64)
    # starts at round((95 - 64) / 2) = round(15.5) = 16.
    photo = Image.open(sorted((data_root / "facades" / "val").iterdir())[0]).convert("RGB")
    wide = photo.crop((0, 0, 259, 173))
    expected = np.asarray(wide.resize((95, 64), Image.BILINEAR).crop((16, 0, 80, 64)))
    assert np.array_equal(np.asarray(center_square(wide, 64)), expected)
    tall = wide.transpose(Image.TRANSPOSE)
    expected = np.asarray(tall.resize((64, 95), Image.BILINEAR).crop((0, 16, 64, 80)))
    assert np.array_equal(np.asarray(center_square(tall, 64)), expected)


# ----------------------------------------------------------------------------------------------
# PairedImages: a synthetic A|B where B = 255 - A must survive every crop and flip


def write_pairs(root, split, count, w, h, seed=0):
    (root / split).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        a = np.array(noise_image(w, h, seed + i))
        Image.fromarray(np.concatenate([a, 255 - a], axis=1)).save(root / split / f"{i:03d}.png")


@given(w=st.integers(1, 24), h=st.integers(1, 24), load=st.integers(1, 32), crop_frac=st.floats(0.1, 1.0),
       seed=st.integers(0, 2**31), direction=st.sampled_from(["AtoB", "BtoA"]), train=st.booleans())
def test_paired_crop_and_flip_keep_a_and_b_aligned(w, h, load, crop_frac, seed, direction, train):
    # A is dark noise (0..127), B = 255 - A is bright: every pixel of B is a known function of A
    a_pixels = np.random.default_rng(seed).integers(0, 128, (h, w, 3), dtype=np.uint8)
    ab = Image.fromarray(np.concatenate([a_pixels, 255 - a_pixels], axis=1))
    crop = max(1, int(load * crop_frac))
    torch.manual_seed(seed)
    x, y = split_pair(ab, direction, load, crop, train)
    assert x.shape == y.shape == (3, crop, crop)
    assert x.min() >= -1 and x.max() <= 1 and y.min() >= -1 and y.max() <= 1
    a, b = (x, y) if direction == "AtoB" else (y, x)
    assert a.mean() < 0 < b.mean()  # the left half is A
    # inverting commutes with resize, crop and flip (up to one rounding step); misaligned noise would not
    assert (a + b).abs().max() <= 2.5 / 127.5


def test_paired_direction_swaps(tmp_path):
    write_pairs(tmp_path, "train", 2, 8, 8)
    a, b = PairedImages(tmp_path, "train", "AtoB", 8, 8, train=False)[1]
    b2, a2 = PairedImages(tmp_path, "train", "BtoA", 8, 8, train=False)[1]
    assert torch.equal(a, a2) and torch.equal(b, b2) and not torch.equal(a, b)
    with pytest.raises(ValueError, match="direction"):
        PairedImages(tmp_path, "train", "AB")


def test_paired_bad_input(tmp_path):
    with pytest.raises(MiniganError, match="not found"):
        PairedImages(tmp_path / "none")
    (tmp_path / "trainA").mkdir()
    with pytest.raises(MiniganError, match="unpaired layout"):
        PairedImages(tmp_path)
    (tmp_path / "trainA").rmdir()
    write_pairs(tmp_path, "val", 1, 4, 4)
    with pytest.raises(MiniganError, match="no 'train' split.*found folders: val"):
        PairedImages(tmp_path)
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "readme.txt").write_text("not an image")
    with pytest.raises(MiniganError, match="no images"):
        PairedImages(tmp_path, "test")
    Image.new("RGB", (1, 8)).save(tmp_path / "test" / "tall.png")
    with pytest.raises(MiniganError, match="tall.png.*not a side-by-side"):
        PairedImages(tmp_path, "test")[0]
    (tmp_path / "test" / "tall.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(MiniganError, match="tall.png"):
        PairedImages(tmp_path, "test")[0]


# ----------------------------------------------------------------------------------------------
# UnpairedImages


def write_domain(folder, colours):
    folder.mkdir(parents=True)
    for i, c in enumerate(colours):
        Image.new("RGB", (6, 6), (c, c, c)).save(folder / f"{i}.png")


@pytest.fixture
def two_domains(tmp_path):
    write_domain(tmp_path / "trainA", [0, 10, 20])
    write_domain(tmp_path / "trainB", [100, 110, 120, 130, 140])
    return tmp_path


def colour(x):
    return round((x.mean().item() + 1) * 127.5)


def test_unpaired_pairs_a_in_order_with_random_b(two_domains):
    data = UnpairedImages(two_domains, "train", 6, 4)
    assert len(data) == 5  # max(3, 5)
    torch.manual_seed(0)
    seen_b = {i: set() for i in range(len(data))}
    for epoch in range(8):
        for i in range(len(data)):
            a, b = data[i]
            assert a.shape == b.shape == (3, 4, 4)
            assert colour(a) == [0, 10, 20][i % 3]
            seen_b[i].add(colour(b))
    assert set().union(*seen_b.values()) == {100, 110, 120, 130, 140}
    assert all(len(s) > 1 for s in seen_b.values())  # each A meets a different B from epoch to epoch


def test_unpaired_seed_fixes_each_item(two_domains):
    data = UnpairedImages(two_domains, "train", 6, 4, seed=3)
    first = [colour(data[i][1]) for i in range(5)]
    torch.manual_seed(123)  # the global RNG does not matter with a seed
    assert [colour(data[i][1]) for i in reversed(range(5))] == first[::-1]
    other = UnpairedImages(two_domains, "train", 6, 4, seed=4)
    assert [colour(other[i][1]) for i in range(5)] != first


def loader_batches(data, workers, seed):
    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(data, batch_size=2, shuffle=True, num_workers=workers)
    return [torch.cat([a, b]) for a, b in loader]


@pytest.mark.parametrize("workers", [0, 2])
def test_unpaired_reproducible_under_torch_seed(tmp_path, workers):
    write_domain(tmp_path / "trainA", range(0, 80, 10))
    (tmp_path / "trainB").mkdir()
    for i in range(8):
        noise_image(12, 12, i).save(tmp_path / "trainB" / f"{i}.png")
    data = UnpairedImages(tmp_path, "train", 12, 8)
    first, again, other = (loader_batches(data, workers, s) for s in (0, 0, 1))
    assert all(torch.equal(x, y) for x, y in zip(first, again))
    assert not all(torch.equal(x, y) for x, y in zip(first, other))


def test_unpaired_bad_input(tmp_path):
    with pytest.raises(MiniganError, match="not found"):
        UnpairedImages(tmp_path / "none")
    write_pairs(tmp_path, "train", 1, 4, 4)
    with pytest.raises(MiniganError, match="paired layout"):
        UnpairedImages(tmp_path)
    write_domain(tmp_path / "trainA", [1])
    (tmp_path / "trainB").mkdir()
    with pytest.raises(MiniganError, match="no images.*trainB"):
        UnpairedImages(tmp_path)
    with pytest.raises(MiniganError, match="trainA lacks trainA/ and trainB/"):
        UnpairedImages(tmp_path / "trainA")


# ----------------------------------------------------------------------------------------------
# ImageFolder


def test_image_folder_nested_skips_non_images(tmp_path):
    noise_image(30, 20, 0).save(tmp_path / "b.jpg")
    (tmp_path / "sub").mkdir()
    Image.new("L", (16, 16), 255).save(tmp_path / "sub" / "a.PNG")
    (tmp_path / "sub" / "labels.csv").write_text("x,y")
    data = ImageFolder(tmp_path, image_size=8)
    assert len(data) == 2 and [p.name for p in data.files] == ["b.jpg", "a.PNG"]
    x = data[1]
    assert x.shape == (3, 8, 8) and torch.allclose(x, torch.ones(3, 8, 8))  # grayscale -> RGB
    assert ImageFolder(tmp_path, image_size=5, channels=1)[0].shape == (1, 5, 5)
    with pytest.raises(ValueError):
        ImageFolder(tmp_path, channels=4)


def test_image_folder_bad_input(tmp_path):
    with pytest.raises(MiniganError, match="not found"):
        ImageFolder(tmp_path / "none")
    with pytest.raises(MiniganError, match="no images"):
        ImageFolder(tmp_path)
    (tmp_path / "zero.jpg").write_bytes(b"")
    with pytest.raises(MiniganError, match="zero.jpg"):
        ImageFolder(tmp_path)[0]


# ----------------------------------------------------------------------------------------------
# MNIST from idx files


def write_idx(path, magic, array, gz):
    data = struct.pack(">i", magic) + struct.pack(f">{array.ndim}i", *array.shape) + array.tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def write_mnist(root, n=5, gz=True, train=True):
    prefix = "train" if train else "t10k"
    ext = ".gz" if gz else ""
    images = np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10
    write_idx(root / f"{prefix}-images-idx3-ubyte{ext}", 2051, images, gz)
    write_idx(root / f"{prefix}-labels-idx1-ubyte{ext}", 2049, labels, gz)
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reads_idx(tmp_path, gz):
    images, labels = write_mnist(tmp_path, 5, gz)
    data = MNIST(tmp_path)
    assert len(data) == 5
    x, y = data[3]
    assert x.shape == (1, 28, 28) and y == 3 and isinstance(y, int)
    torch.testing.assert_close(x[0], torch.from_numpy(images[3]).float() / 127.5 - 1)
    x64, _ = MNIST(tmp_path, image_size=64)[3]
    assert x64.shape == (1, 64, 64) and x64.min() >= -1 and x64.max() <= 1
    with pytest.raises(MiniganError, match="t10k-images-idx3-ubyte"):
        MNIST(tmp_path, train=False)


def test_mnist_bad_files(tmp_path):
    write_mnist(tmp_path, 5, gz=False)
    images = tmp_path / "train-images-idx3-ubyte"
    labels = tmp_path / "train-labels-idx1-ubyte"
    good_images, good_labels = images.read_bytes(), labels.read_bytes()
    images.write_bytes(struct.pack(">i", 2049) + good_images[4:])
    with pytest.raises(MiniganError, match="magic number is not 2051"):
        MNIST(tmp_path)
    images.write_bytes(good_images[:-10])
    with pytest.raises(MiniganError, match="truncated"):
        MNIST(tmp_path)
    images.write_bytes(good_images)
    labels.write_bytes(good_labels[:8] + good_labels[8:-1])  # 4 label bytes, header says 5
    with pytest.raises(MiniganError, match="train-labels"):
        MNIST(tmp_path)
    write_idx(labels, 2049, np.arange(4, dtype=np.uint8), gz=False)
    with pytest.raises(MiniganError, match="5 images but 4 labels"):
        MNIST(tmp_path)
    gz = tmp_path / "gz"
    gz.mkdir()
    write_mnist(gz, 5, gz=True)
    (gz / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(MiniganError, match="cannot read MNIST file"):
        MNIST(gz)
    with pytest.raises(MiniganError, match="not found"):
        MNIST(tmp_path / "none")


# ----------------------------------------------------------------------------------------------
# Real data (MINIGAN_DATA)


def test_real_mnist(data_root):
    train, test = MNIST(data_root / "mnist"), MNIST(data_root / "mnist", train=False)
    assert (len(train), len(test)) == (60000, 10000)
    assert sorted(train.labels.unique().tolist()) == list(range(10)) == sorted(test.labels.unique().tolist())
    x, y = train[0]
    assert x.shape == (1, 28, 28) and x.min() == -1 and x.max() == 1 and y == 5  # the famous first 5
    assert MNIST(data_root / "mnist", train=False, image_size=64)[0][0].shape == (1, 64, 64)


def test_real_horse2zebra(data_root):
    root = data_root / "horse2zebra"
    train, test = UnpairedImages(root, "train"), UnpairedImages(root, "test", train=False)
    assert (len(train.files_a), len(train.files_b), len(test.files_a), len(test.files_b)) == (1067, 1334, 120, 140)
    assert len(train) == 1334 and len(test) == 140
    # the 7 grayscale files come out as 3-channel images
    gray = [p for p in train.files_a + train.files_b + test.files_a + test.files_b if Image.open(p).mode == "L"]
    assert len(gray) == 7
    data = UnpairedImages(root, "train", 36, 32)
    data.files_a = gray  # domain A made of the grayscale files only
    for i in range(len(gray)):
        a, b = data[i]
        assert a.shape == b.shape == (3, 32, 32) and a.min() >= -1 and a.max() <= 1
    data = UnpairedImages(root, "train", 36, 32)
    loader = torch.utils.data.DataLoader(data, batch_size=4, shuffle=True, num_workers=2)
    torch.manual_seed(0)
    a, b = next(iter(loader))
    assert a.shape == b.shape == (4, 3, 32, 32) and a.min() >= -1 and a.max() <= 1


def test_real_facades(data_root):
    root = data_root / "facades"
    assert [len(PairedImages(root, s)) for s in ("train", "val", "test")] == [400, 100, 106]
    a, b = PairedImages(root, "train", "BtoA")[0]
    assert a.shape == b.shape == (3, 256, 256) and a.min() >= -1 and b.max() <= 1
    with pytest.raises(MiniganError, match="paired layout"):
        UnpairedImages(root)
    with pytest.raises(MiniganError, match="unpaired layout"):
        PairedImages(data_root / "horse2zebra")


def test_real_edges2shoes_and_anime(data_root):
    shoes = PairedImages(data_root / "edges2shoes", "val", load_size=64, crop_size=64, train=False)
    assert len(shoes) == 20 and shoes[0][0].shape == (3, 64, 64)
    faces = ImageFolder(data_root / "anime_faces", image_size=64)
    assert len(faces) == 5000 and faces[0].shape == (3, 64, 64)
