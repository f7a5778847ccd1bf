"""Every image file a run will read, checked before its first step: all the bad ones in one error.

A truncated JPEG or a text file named `.jpg` would otherwise stop a run when the loader reaches it,
anywhere in the first epoch (up to 1334 steps into a CycleGAN run), and only that one file would be
named. So before training each file of the splits the run reads is opened and fully decoded
(`image_problem`: the same decode the loader does, so what passes here loads later). The decoding
runs in a few threads (Pillow releases the GIL while it decodes); a progress bar appears when it
takes more than a second. On the 2-core development machine with other jobs running (load about 3),
5 runs each: horse2zebra (2661 JPEGs of 256x256, all four splits) 1.2-2.0 s, anime faces (5000 JPEGs
of 64x64) 0.8-1.1 s. JPEGs are decoded at 1/8 scale (`image_problem`; 1.2-2x faster than in full).

The error lists the first SHOW bad files with their reasons and the count, and says what to do;
`skip=True` (the scripts' --skip-bad-images) drops them from the lists instead, with a one-line
warning.

>>> import tempfile
>>> from PIL import Image
>>> folder = Path(tempfile.mkdtemp())
>>> Image.new("RGB", (4, 4)).save(folder / "good.png")
>>> _ = (folder / "notes.jpg").write_text("not an image")
>>> files = [folder / "good.png", folder / "notes.jpg"]
>>> [(path.name, reason[:26]) for path, reason in find_bad_images(files).items()]
[('notes.jpg', 'cannot identify image file')]
>>> check_images([files], skip=True)    # one warning line on stderr; the bad file is dropped
1
>>> [f.name for f in files]
['good.png']
"""
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from ..errors import MiniganError
from .images import image_problem

SHOW = 10  # bad files named in the message; the rest are counted


def find_bad_images(files, threads=None):
    """{path: reason} for every file of `files` that does not open and fully decode, in their order."""
    threads = threads or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(threads) as pool:
        problems = pool.map(image_problem, files, chunksize=32)
        problems = list(tqdm(problems, total=len(files), desc="checking images", unit="file", delay=1.0,
                             mininterval=1.0, dynamic_ncols=True, leave=False))
    return {path: reason for path, reason in zip(files, problems) if reason is not None}


def check_images(file_lists, skip=False):
    """Check every file of `file_lists` (lists of image paths, e.g. a dataset's `file_lists()`).

    Bad files raise one MiniganError naming them; with `skip` they are removed from the lists (in
    place) instead, with a one-line warning. Returns how many were skipped.
    """
    every = [path for files in file_lists for path in files]
    bad = find_bad_images(every)
    if not bad:
        return 0
    named = ", ".join(f"{path} ({reason})" for path, reason in list(bad.items())[:SHOW])
    more = f" and {len(bad) - SHOW} more" if len(bad) > SHOW else ""
    if not skip:
        raise MiniganError(f"{len(bad)} of {len(every)} image files cannot be read: {named}{more}; nothing was "
                           "trained or written: delete or replace them, or pass --skip-bad-images to train "
                           "without them")
    for files in file_lists:
        kept = [path for path in files if path not in bad]
        if files and not kept:
            raise MiniganError(f"none of the {len(files)} images in {Path(files[0]).parent} can be read, "
                               f"e.g. {named}: replace them")
        files[:] = kept
    print(f"warning: skipping {len(bad)} of {len(every)} image files, which cannot be read: {named}{more}",
          file=sys.stderr)
    return len(bad)
