"""download.py against a real HTTP server on 127.0.0.1 (started here, serving archives built here).

Every failure must leave the data root exactly as it was: the listings before and after are compared.
"""
import gzip
import hashlib
import io
import socket
import struct
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from minigan.data import download
from minigan.data import MNIST, PairedImages, UnpairedImages
from minigan.data.download import default_data_root, find_dataset
from minigan.errors import MiniganError


class Server:
    """Serves `routes` {url path: bytes}; a path in `lie_about_length` announces more bytes than it sends."""

    def __init__(self):
        self.routes, self.requests, self.lie_about_length = {}, [], set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                body = server.routes.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                extra = 1000 if self.path in server.lie_about_length else 0
                self.send_header("Content-Length", str(len(body) + extra))
                self.end_headers()
                self.wfile.write(body)
                if extra:
                    self.close_connection = True

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    s = Server()
    monkeypatch.setattr(download, "CYCLEGAN_URL", f"{s.url}/cyclegan")
    monkeypatch.setattr(download, "PIX2PIX_URL", f"{s.url}/pix2pix")
    monkeypatch.setattr(download, "MNIST_URL", f"{s.url}/mnist")
    yield s
    s.close()


@pytest.fixture
def root(tmp_path):
    """A data root that already holds something, which must stay untouched."""
    r = tmp_path / "data"
    (r / "other").mkdir(parents=True)
    (r / "other" / "keep.txt").write_text("mine")
    return r


def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else None


def png_bytes(colour=(10, 200, 30), size=(8, 8)):
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


UNPAIRED = {f"{d}/{i}.png": png_bytes() for d in ("trainA", "trainB", "testA", "testB") for i in range(2)}
PAIRED = {f"{s}/{i}.png": png_bytes(size=(16, 8)) for s in ("train", "val") for i in range(3)}


def make_zip(files, top="horse2zebra"):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(f"{top}/{name}" if top else name, data)
    return buf.getvalue()


def make_tar_gz(files, top="facades"):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}" if top else name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def idx(magic, array):
    raw = struct.pack(">i", magic) + struct.pack(f">{array.ndim}i", *array.shape) + array.tobytes()
    return gzip.compress(raw)


def fake_mnist():
    rng = np.random.default_rng(0)
    return {"train-images-idx3-ubyte.gz": idx(2051, rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)),
            "train-labels-idx1-ubyte.gz": idx(2049, np.arange(6, dtype=np.uint8)),
            "t10k-images-idx3-ubyte.gz": idx(2051, rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)),
            "t10k-labels-idx1-ubyte.gz": idx(2049, np.arange(2, dtype=np.uint8))}


def serve_mnist(server, monkeypatch, files):
    for name, data in files.items():
        server.routes[f"/mnist/{name}"] = data
    monkeypatch.setattr(download, "MNIST_MD5", {n: hashlib.md5(d).hexdigest() for n, d in files.items()})


def fails(root, match, *args, **kwargs):
    """find_dataset must raise a one-line MiniganError matching `match` and leave `root` as it was."""
    before = listing(root)
    with pytest.raises(MiniganError, match=match) as info:
        find_dataset(*args, data_root=root, **kwargs)
    assert "\n" not in str(info.value)
    assert listing(root) == before
    return str(info.value)


# ----------------------------------------------------------------------------------------------
# success


def test_zip_download_unpaired(server, root):
    server.routes["/cyclegan/horse2zebra.zip"] = make_zip(UNPAIRED)
    path = find_dataset("horse2zebra", data_root=root, layout="unpaired")
    assert path == root / "horse2zebra"
    assert listing(root) == sorted(["other", "other/keep.txt", "horse2zebra"] +
                                   [f"horse2zebra/{d}" for d in ("trainA", "trainB", "testA", "testB")] +
                                   [f"horse2zebra/{n}" for n in UNPAIRED])
    assert len(UnpairedImages(path, load_size=8, crop_size=8)) == 2
    # a second call finds it and downloads nothing
    assert find_dataset("horse2zebra", data_root=root) == path and len(server.requests) == 1


def test_tar_gz_download_paired_picks_the_pix2pix_archive(server, root):
    server.routes["/pix2pix/facades.tar.gz"] = make_tar_gz(PAIRED)
    server.routes["/cyclegan/facades.zip"] = make_zip(UNPAIRED, top="facades")
    path = find_dataset("facades", data_root=root, layout="paired")
    assert server.requests == ["/pix2pix/facades.tar.gz"]
    assert len(PairedImages(path, "val", load_size=8, crop_size=8)) == 3
    fails(root, "unpaired|trainA", "facades", layout="unpaired")  # the paired copy is there now


def test_zip_for_facades_unpaired_and_archive_without_top_folder(server, root):
    server.routes["/cyclegan/facades.zip"] = make_zip(UNPAIRED, top=None)
    path = find_dataset("FACADES", data_root=root, layout="unpaired")  # names are case-insensitive
    assert server.requests == ["/cyclegan/facades.zip"] and path == root / "facades"
    assert (path / "trainA" / "0.png").is_file()


def test_mnist_download_checks_md5(server, root, monkeypatch):
    serve_mnist(server, monkeypatch, fake_mnist())
    path = find_dataset("mnist", data_root=root, layout="mnist")
    assert path == root / "mnist" and len(MNIST(path)) == 6 and len(MNIST(path, train=False)) == 2


def test_real_mnist_with_official_md5(server, tmp_path, data_root):
    for name in download.MNIST_MD5:  # served straight from the shared data, never copied
        server.routes[f"/mnist/{name}"] = (data_root / "mnist" / name).read_bytes()
    path = find_dataset("mnist", data_root=tmp_path)
    assert len(MNIST(path)) == 60000


def test_data_root_is_created_and_removed(server, tmp_path):
    server.routes["/cyclegan/horse2zebra.zip"] = make_zip(UNPAIRED)
    root = tmp_path / "new" / "root"
    assert find_dataset("horse2zebra", data_root=root).is_dir()
    with pytest.raises(MiniganError, match="404"):
        find_dataset("apple2orange", data_root=tmp_path / "missing" / "root")
    assert not (tmp_path / "missing").exists()
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(MiniganError, match="cannot create the data root"):
        find_dataset("apple2orange", data_root=tmp_path / "file" / "root")


# ----------------------------------------------------------------------------------------------
# failures: one line, nothing left behind


def test_404(server, root):
    message = fails(root, "HTTP 404", "horse2zebra")
    assert f"{server.url}/cyclegan/horse2zebra.zip" in message
    assert f"extract it into {root} so that {root / 'horse2zebra' / 'trainA'} exists" in message


def test_offline(monkeypatch, root):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(download, "CYCLEGAN_URL", f"http://127.0.0.1:{port}/cyclegan")
    message = fails(root, "network unreachable", "horse2zebra")
    assert message.startswith(f"could not download horse2zebra from http://127.0.0.1:{port}/cyclegan/horse2zebra.zip")
    assert "nothing was kept" in message and "--data /path/to/horse2zebra" in message


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_truncated_archive(server, root, kind):
    if kind == "zip":
        data = make_zip({f"trainA/{i}.png": np.random.default_rng(i).bytes(3000) for i in range(4)})
        server.routes["/cyclegan/horse2zebra.zip"] = data[:len(data) // 2]
        fails(root, "corrupt or truncated archive", "horse2zebra")
    else:
        data = make_tar_gz({f"train/{i}.png": np.random.default_rng(i).bytes(3000) for i in range(4)})
        server.routes["/pix2pix/edges2shoes.tar.gz"] = data[:len(data) // 2]
        fails(root, "corrupt or truncated archive", "edges2shoes")


def test_truncated_transfer(server, root):
    server.routes["/cyclegan/horse2zebra.zip"] = make_zip(UNPAIRED)
    server.lie_about_length.add("/cyclegan/horse2zebra.zip")  # the connection drops early
    fails(root, "truncated transfer|transfer failed", "horse2zebra")


def test_corrupt_zip_entry(server, root):
    data = bytearray(make_zip({"trainA/0.png": b"x" * 5000}))
    data[60:70] = b"0123456789"  # inside the stored (deflated) data: the CRC check catches it
    server.routes["/cyclegan/horse2zebra.zip"] = bytes(data)
    fails(root, "corrupt", "horse2zebra")


def test_not_an_archive(server, root):
    server.routes["/pix2pix/night2day.tar.gz"] = b"<html>a proxy's error page</html>"
    fails(root, "corrupt or truncated archive", "night2day")


def test_md5_mismatch(server, root, monkeypatch):
    files = fake_mnist()
    serve_mnist(server, monkeypatch, files)
    server.routes["/mnist/t10k-images-idx3-ubyte.gz"] = files["t10k-images-idx3-ubyte.gz"][:-1] + b"!"
    message = fails(root, "MD5 mismatch", "mnist")
    assert "t10k-images-idx3-ubyte.gz" in message and str(root / "mnist") in message


def test_wrong_layout(server, root):
    server.routes["/cyclegan/horse2zebra.zip"] = make_zip(PAIRED)  # a pix2pix archive under a CycleGAN name
    fails(root, "unexpected archive layout.*paired layout", "horse2zebra")
    server.routes["/pix2pix/edges2shoes.tar.gz"] = make_tar_gz({"readme.txt": b"hi"})
    fails(root, "unexpected archive layout", "edges2shoes")


@pytest.mark.parametrize("evil", ["../evil.png", "/tmp/evil.png", "a/../../evil.png"])
def test_path_traversal_refused(server, root, evil):
    server.routes["/cyclegan/horse2zebra.zip"] = make_zip({**UNPAIRED, evil: b"x"}, top=None)
    fails(root, "unsafe path in archive", "horse2zebra")
    server.routes["/pix2pix/maps.tar.gz"] = make_tar_gz({**PAIRED, evil: b"x"}, top=None)
    fails(root, "unsafe path in archive", "maps", layout="paired")
    assert not (root.parent / "evil.png").exists()


def test_tar_links_are_not_followed(server, root):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in PAIRED.items():
            info = tarfile.TarInfo(f"maps/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("maps/train/link.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    server.routes["/pix2pix/maps.tar.gz"] = buf.getvalue()
    path = find_dataset("maps", data_root=root, layout="paired")
    assert not (path / "train" / "link.png").exists()


def test_interrupted(server, root, monkeypatch):
    server.routes["/cyclegan/horse2zebra.zip"] = make_zip(UNPAIRED)

    def interrupted_extract(archive, into, url):
        (into / "horse2zebra").mkdir(parents=True)
        raise KeyboardInterrupt  # Ctrl-C half way through

    monkeypatch.setattr(download, "_extract", interrupted_extract)
    fails(root, "download of horse2zebra .* interrupted; nothing was kept", "horse2zebra")


# ----------------------------------------------------------------------------------------------
# finding


def test_existing_paths_are_used_as_is(tmp_path):
    (tmp_path / "trainA").mkdir()
    (tmp_path / "trainB").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "trainA" / "a.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "trainB" / "b.png")
    assert find_dataset(tmp_path) == tmp_path
    assert find_dataset(str(tmp_path), layout="unpaired") == tmp_path
    assert find_dataset(tmp_path, layout="folder") == tmp_path
    with pytest.raises(MiniganError, match="wrong dataset layout.*has the unpaired layout"):
        find_dataset(tmp_path, layout="paired")
    with pytest.raises(MiniganError, match="wrong dataset layout.*lacks train/"):
        find_dataset(tmp_path / "trainA", layout="paired")
    with pytest.raises(MiniganError, match="MNIST idx files"):
        find_dataset(tmp_path, layout="mnist")
    with pytest.raises(ValueError, match="layout"):
        find_dataset(tmp_path, layout="pairs")


def test_unknown_names_and_paths(tmp_path):
    with pytest.raises(MiniganError, match="unknown dataset 'cifar10'.*horse2zebra"):
        find_dataset("cifar10", data_root=tmp_path)
    with pytest.raises(MiniganError, match="dataset folder not found"):
        find_dataset(tmp_path / "horse2zebra_copy")
    with pytest.raises(MiniganError, match="dataset folder not found"):
        find_dataset("./horse2zebra")
    assert list(tmp_path.iterdir()) == []


def test_name_layout_mismatch(tmp_path):
    with pytest.raises(MiniganError, match="horse2zebra is a unpaired .CycleGAN. dataset but the paired"):
        find_dataset("horse2zebra", data_root=tmp_path, layout="paired")
    with pytest.raises(MiniganError, match="facades exists as a CycleGAN"):
        find_dataset("facades", data_root=tmp_path)
    with pytest.raises(MiniganError, match="mnist is a set of idx files"):
        find_dataset("mnist", data_root=tmp_path, layout="folder")
    assert list(tmp_path.iterdir()) == []


def test_anime_faces_has_no_download(tmp_path):
    message = fails(tmp_path, "no public direct download", "anime_faces", layout="folder")
    assert "--data /path/to/images" in message and str(tmp_path / "anime_faces") in message
    (tmp_path / "anime_faces").mkdir()
    fails(tmp_path, "holds no images", "anime_faces", layout="folder")
    Image.new("RGB", (4, 4)).save(tmp_path / "anime_faces" / "1.jpg")
    assert find_dataset("anime_faces", data_root=tmp_path, layout="folder") == tmp_path / "anime_faces"


def test_default_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("MINIGAN_DATA", str(tmp_path))
    assert default_data_root() == tmp_path
    monkeypatch.delenv("MINIGAN_DATA")
    monkeypatch.chdir(tmp_path)
    assert default_data_root() == tmp_path / "datasets"


def test_real_data_root(data_root):
    assert find_dataset("horse2zebra", data_root=data_root, layout="unpaired") == data_root / "horse2zebra"
    assert find_dataset("facades", data_root=data_root, layout="paired") == data_root / "facades"
    assert find_dataset("edges2shoes", data_root=data_root, layout="paired") == data_root / "edges2shoes"
    assert find_dataset("mnist", data_root=data_root) == data_root / "mnist"
    assert find_dataset("anime_faces", data_root=data_root, layout="folder") == data_root / "anime_faces"
