"""Finding a dataset by name or path, and downloading the public ones (urllib, nothing else).

Scripts take `--data NAME_OR_PATH` and `--data-root`. A path that exists is used as is; a known name
is looked up as <data root>/<name>, where the data root is --data-root, else $MINIGAN_DATA, else
./datasets; when it is absent it is downloaded there:

    CycleGAN sets   <CYCLEGAN_URL>/<name>.zip     -> <root>/<name>/{trainA,trainB,testA,testB}/
    pix2pix sets    <PIX2PIX_URL>/<name>.tar.gz   -> <root>/<name>/{train,val,test}/   (A|B images)
    MNIST           <MNIST_URL>/<4 idx files>.gz  -> <root>/mnist/                     (MD5-checked)

facades and maps exist in both forms; `layout` ("paired" or "unpaired") picks the archive, and is
checked against what arrives. A download goes into a hidden temp folder inside the data root, is
verified (MD5 where known, archive integrity, size, the expected layout), extracted there (entries
that would land outside it are refused) and only then renamed into place. Whatever fails -- no
network, HTTP 404, a truncated or wrong archive, Ctrl-C -- the temp folder is removed and the user
gets one line (a MiniganError): what failed, the URL, and where to put the files by hand.

The base URLs are module constants, overridable with $MINIGAN_CYCLEGAN_URL, $MINIGAN_PIX2PIX_URL and
$MINIGAN_MNIST_URL (the tests point them at a local server).

>>> sorted(set(CYCLEGAN_SETS) & set(PIX2PIX_SETS))
['facades', 'maps']
>>> find_dataset("no_such_set", data_root="/nonexistent")
Traceback (most recent call last):
...
minigan.errors.MiniganError: unknown dataset 'no_such_set': pass a folder path, or one of: ...
"""
import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from ..errors import MiniganError
from .images import EXTENSIONS, image_files

CYCLEGAN_URL = os.environ.get("MINIGAN_CYCLEGAN_URL", "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets")
PIX2PIX_URL = os.environ.get("MINIGAN_PIX2PIX_URL", "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets")
MNIST_URL = os.environ.get("MINIGAN_MNIST_URL", "https://ossci-datasets.s3.amazonaws.com/mnist")
TIMEOUT = 30  # seconds without a byte before a download is given up

CYCLEGAN_SETS = ("horse2zebra", "apple2orange", "summer2winter_yosemite", "monet2photo", "cezanne2photo",
                 "ukiyoe2photo", "vangogh2photo", "maps", "iphone2dslr_flower", "facades")
PIX2PIX_SETS = ("facades", "maps", "edges2shoes", "edges2handbags", "night2day")
MNIST_MD5 = {  # the official files' MD5s
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
NO_DOWNLOAD = {  # known sets with no public direct URL: the user brings the folder
    "anime_faces": "the Anime Face Dataset (e.g. from Kaggle)",
}
LAYOUTS = ("mnist", "folder", "paired", "unpaired")


def default_data_root():
    """Where dataset names are looked up: $MINIGAN_DATA, else ./datasets."""
    return Path(os.environ.get("MINIGAN_DATA") or Path.cwd() / "datasets").expanduser()


# ----------------------------------------------------------------------------------------------
# Layouts


def _has_images(folder):
    return folder.is_dir() and len(image_files(folder)) > 0


def layout_problem(path, layout):
    """What is wrong with `path` as a dataset of `layout`, in a few words; None when it fits."""
    path = Path(path)
    if not path.is_dir():
        return f"{path} is not a folder"
    if layout == "mnist":
        folders = (path, path / "raw", path / "MNIST" / "raw")
        missing = [n for n in MNIST_MD5 if not any((f / n).is_file() or (f / n[:-3]).is_file() for f in folders)]
        return f"{path} lacks the MNIST idx files {', '.join(missing)}" if missing else None
    if layout == "folder":
        return None if _has_images(path) else f"{path} holds no images ({EXTENSIONS})"
    if layout == "paired":
        if (path / "trainA").is_dir():
            return f"{path} has the unpaired layout (trainA/ trainB/), not the paired train/ val/ test/ of A|B images"
        if any(_has_images(path / s) for s in ("train", "val", "test")):
            return None
        return f"{path} lacks train/ (or val/, test/) folders of side-by-side A|B images"
    if layout == "unpaired":
        if any(_has_images(path / f"{s}A") and _has_images(path / f"{s}B") for s in ("train", "test")):
            return None
        if (path / "train").is_dir():
            return f"{path} has the paired layout (train/ val/ test/ of A|B images), not trainA/ trainB/"
        return f"{path} lacks trainA/ and trainB/ (one folder of images per domain)"
    raise ValueError(f"layout must be one of {LAYOUTS} or None, got {layout!r}")


# ----------------------------------------------------------------------------------------------
# Finding


def _source(name, layout):
    """Which archive serves `name` for `layout`: "cyclegan", "pix2pix" or "mnist"."""
    if name == "mnist":
        if layout not in (None, "mnist"):
            raise MiniganError(f"mnist is a set of idx files, not the {layout} layout: use the MNIST loader")
        return "mnist"
    kinds = [k for k, sets in (("cyclegan", CYCLEGAN_SETS), ("pix2pix", PIX2PIX_SETS)) if name in sets]
    wanted = {"unpaired": "cyclegan", "paired": "pix2pix"}.get(layout)
    if wanted is not None and wanted not in kinds:
        have = "unpaired (CycleGAN)" if kinds == ["cyclegan"] else "paired (pix2pix)"
        sets = CYCLEGAN_SETS if wanted == "cyclegan" else PIX2PIX_SETS
        raise MiniganError(f"{name} is a {have} dataset but the {layout} layout is needed: use one of "
                           f"{', '.join(sets)}, or pass a folder")
    if wanted is not None:
        return wanted
    if len(kinds) > 1 and layout is None:
        raise MiniganError(f"{name} exists as a CycleGAN (unpaired) and a pix2pix (paired) set: "
                           f"say which with layout='unpaired' or layout='paired'")
    return kinds[0]


def find_dataset(name_or_path, data_root=None, layout=None):
    """A dataset's folder: an existing path as is, else <data root>/<name>, downloaded if absent.

    `layout` ("mnist" | "folder" | "paired" | "unpaired" | None) picks the archive when a name has
    two (facades, maps) and is checked on what is found or downloaded. Raises MiniganError with one
    line saying what to do: unknown name, wrong layout, failed download.
    """
    if layout not in LAYOUTS + (None,):
        raise ValueError(f"layout must be one of {LAYOUTS} or None, got {layout!r}")
    path = Path(name_or_path).expanduser()
    if path.exists():
        problem = layout and layout_problem(path, layout)
        if problem:
            raise MiniganError(f"wrong dataset layout: {problem}")
        return path
    name = str(name_or_path).lower()
    known = set(CYCLEGAN_SETS) | set(PIX2PIX_SETS) | {"mnist"} | set(NO_DOWNLOAD)
    if name not in known:
        if len(path.parts) > 1 or str(name_or_path).startswith((".", "~")):
            raise MiniganError(f"dataset folder not found: {path}")
        raise MiniganError(f"unknown dataset '{name_or_path}': pass a folder path, or one of: "
                           f"{', '.join(sorted(known))}")
    root = Path(data_root).expanduser() if data_root else default_data_root()
    target = root / name
    if name in NO_DOWNLOAD:
        if target.exists():
            return find_dataset(target, layout=layout)
        raise MiniganError(f"{name} has no public direct download: get {NO_DOWNLOAD[name]}, then pass its "
                           f"folder with --data /path/to/images, or put the images in {target}")
    source = _source(name, layout)
    layout = layout or {"mnist": "mnist", "cyclegan": "unpaired", "pix2pix": "paired"}[source]
    if target.exists():
        problem = layout_problem(target, layout)
        if problem:
            raise MiniganError(f"wrong dataset layout: {problem}; pass --data with the path of a {layout} copy, "
                               f"or remove {target} to have it downloaded")
        return target
    return download(name, source, root, layout)


# ----------------------------------------------------------------------------------------------
# Downloading


class _Failed(Exception):
    """A download step failed: `reason` is a few words, `url` what was being fetched."""

    def __init__(self, url, reason):
        super().__init__(reason)
        self.url, self.reason = url, reason


def _first_line(error):
    """An exception's message cut to its first line: the user's error stays one line."""
    return (str(error).strip().splitlines() or [""])[0]


def _fetch(url, dest, md5=None):
    """Stream `url` into the file `dest` with a progress bar; check the size and (if given) the MD5."""
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response, open(dest, "wb") as f:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=Path(dest).name) as bar:
                while chunk := response.read(1 << 20):
                    f.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            size = f.tell()
    except urllib.error.HTTPError as e:  # before URLError: it is one
        raise _Failed(url, f"HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise _Failed(url, f"network unreachable: {_first_line(e.reason)}") from None
    except (http.client.HTTPException, OSError) as e:  # incomplete read, reset, timeout, disk full
        raise _Failed(url, f"transfer failed: {type(e).__name__} {_first_line(e)}") from None
    if total is not None and size != total:
        raise _Failed(url, f"truncated transfer: got {size} of {total} bytes")
    if md5 is not None and digest.hexdigest() != md5:
        raise _Failed(url, f"MD5 mismatch: got {digest.hexdigest()}, expected {md5} (corrupt or wrong file)")


def _safe_path(into, member_name, url):
    """Where an archive entry goes inside `into`; refuses absolute paths and '..' (path traversal)."""
    posix = PurePosixPath(member_name.replace("\\", "/"))
    if posix.is_absolute() or ".." in posix.parts or ":" in (posix.parts[:1] or ("",))[0]:
        raise _Failed(url, f"unsafe path in archive: {member_name!r} would land outside the dataset folder")
    if not posix.parts or posix.parts[0] == "__MACOSX":  # macOS zip metadata, not data
        return None
    return into.joinpath(*posix.parts)


def _extract(archive, into, url):
    """Unpack a .zip or .tar.gz into `into` (regular files and folders only; links are skipped)."""
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                bad = zf.testzip()  # reads every entry and checks its CRC
                if bad is not None:
                    raise _Failed(url, f"corrupt archive: bad CRC in {bad}")
                for member in zf.infolist():
                    dest = _safe_path(into, member.filename, url)
                    if dest is None or member.is_dir():
                        continue
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(member) as src, open(dest, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        else:
            with tarfile.open(archive, "r:gz") as tf:
                for member in tf:  # streams: a truncated .tar.gz fails here
                    dest = _safe_path(into, member.name, url)
                    if dest is None or not member.isfile():
                        continue
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with tf.extractfile(member) as src, open(dest, "wb") as dst:
                        shutil.copyfileobj(src, dst)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as e:
        raise _Failed(url, f"corrupt or truncated archive ({type(e).__name__}: {_first_line(e)})") from None
    except OSError as e:
        raise _Failed(url, f"cannot extract the archive: {_first_line(e)}") from None
    # an archive usually holds one top folder <name>/; use it, else the archive's root itself
    entries = [p for p in into.iterdir() if not p.name.startswith(".")] if into.is_dir() else []
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else into


def _by_hand(name, source, root):
    """Where to put the files when the download cannot be done for the user."""
    if source == "mnist":
        return (f"download the four files {', '.join(MNIST_MD5)} from {MNIST_URL}/ by hand into "
                f"{root / 'mnist'}, or pass --data /path/to/mnist")
    layout = "trainA" if source == "cyclegan" else "train"
    return (f"download it by hand and extract it into {root} so that {root / name / layout} exists, "
            f"or pass --data /path/to/{name}")


def download(name, source, root, layout):
    """Download dataset `name` from `source` into root/name; verify, extract, rename; all or nothing."""
    root = Path(root)
    url = f"{MNIST_URL}/" if source == "mnist" else \
        f"{CYCLEGAN_URL}/{name}.zip" if source == "cyclegan" else f"{PIX2PIX_URL}/{name}.tar.gz"
    created = [p for p in (root, *root.parents) if not p.exists()]  # folders made here, deepest first
    try:
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{name}.download-", dir=root))
    except OSError as e:
        raise MiniganError(f"cannot create the data root {root}: {_first_line(e)}; pass a writable --data-root") from None
    try:
        print(f"downloading {name} from {url} into {root}")
        if source == "mnist":
            folder = work / "mnist"
            folder.mkdir()
            for file, md5 in MNIST_MD5.items():
                _fetch(f"{MNIST_URL}/{file}", folder / file, md5)
        else:
            archive = work / Path(url).name
            _fetch(url, archive)
            folder = _extract(archive, work / "extracted", url)
        problem = layout_problem(folder, layout)
        if problem:
            raise _Failed(url, f"unexpected archive layout: {problem.replace(str(folder), 'the archive')}")
        try:
            os.rename(folder, root / name)  # atomic: the dataset appears whole or not at all
        except OSError as e:  # e.g. another process put root/name there meanwhile
            raise _Failed(url, f"cannot move it into place: {_first_line(e)}") from None
        return root / name
    except _Failed as e:
        raise MiniganError(f"could not download {name} from {e.url} ({e.reason}); nothing was kept; "
                           f"{_by_hand(name, source, root)}") from None
    except KeyboardInterrupt:
        raise MiniganError(f"download of {name} from {url} interrupted; nothing was kept; run again, or "
                           f"{_by_hand(name, source, root)}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for folder in created:  # a failed download leaves no empty data root behind either
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
