"""Writing a file so that a crash never leaves half of it: the one way minigan writes what a run keeps
(checkpoints, sample grids, loss plots, the run report). Like `errors`, it imports nothing else from
minigan, so every layer may use it.
"""
import os
import tempfile
from pathlib import Path


def write_atomically(path, write):
    """Call `write(f)` on a temporary binary file beside `path`, then rename it onto `path`: a reader
    (a resumed run, a browser, a viewer) sees the old file or the new one, never half of one, even if
    the process is killed mid-write. Returns path. The checkpoint, the sample grids, the loss plot and
    the run report are all written this way.

    >>> import tempfile
    >>> path = write_atomically(Path(tempfile.mkdtemp()) / "a.txt", lambda f: f.write(b"hello"))
    >>> path.read_text(), [p.name for p in path.parent.iterdir()]
    ('hello', ['a.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
    except BaseException:  # also Ctrl-C mid-write: never leave the temp file behind
        Path(tmp).unlink(missing_ok=True)
        raise
    sync_dir(path.parent)  # make the rename itself durable
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a run killed mid-write
        stale.unlink(missing_ok=True)
    return path


def sync_dir(folder):
    if hasattr(os, "O_DIRECTORY"):  # POSIX only; on Windows os.replace is durable enough
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
