"""When things go wrong, through the scripts' command line on real images: bad files are all named
before step 1 and nothing is written."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

CYCLEGAN_NETS = ["--image-size", "32", "--ngf", "4", "--ndf", "4", "--n-blocks", "1", "--n-layers-d", "2"]


def cli(script, *flags, cwd=None):
    """Run `python train_<script>.py flags...` -> CompletedProcess (text)."""
    return subprocess.run([sys.executable, str(ROOT / f"train_{script}.py"), *map(str, flags)], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def planted_horses(data_root, tmp_path):
    """horse2zebra's first few files per split (copies), plus a truncated JPEG in trainA, a text file
    named .jpg in trainB and an empty one in testA."""
    source, root = data_root / "horse2zebra", tmp_path / "h2z"
    for split, n in {"trainA": 3, "trainB": 2, "testA": 2, "testB": 2}.items():
        (root / split).mkdir(parents=True)
        for f in sorted((source / split).iterdir())[:n]:
            shutil.copy(f, root / split / f.name)
    whole = sorted((source / "trainA").iterdir())[5].read_bytes()
    (root / "trainA" / "cut.jpg").write_bytes(whole[:len(whole) // 2])
    (root / "trainB" / "notes.jpg").write_text("not an image\n")
    (root / "testA" / "empty.jpg").write_bytes(b"")
    return root


def test_bad_images_are_all_named_before_step_1(planted_horses, tmp_path):
    out = tmp_path / "run"
    result = cli("cyclegan", "--data", planted_horses, "--out", out, *CYCLEGAN_NETS, "--threads", "1")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: 3 of 12 image files cannot be read: ")
    for name in ("trainA/cut.jpg", "trainB/notes.jpg", "testA/empty.jpg", "--skip-bad-images"):
        assert name in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()  # nothing written

    # --skip-bad-images: one warning with the count, then the run trains on the rest
    result = cli("cyclegan", "--data", planted_horses, "--out", out, *CYCLEGAN_NETS, "--threads", "1",
                 "--skip-bad-images", "--max-steps", "2")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and warnings[0].startswith("warning: skipping 3 of 12 image files"), result.stderr
    assert (out / "checkpoint.pt").is_file()


def test_dcgan_folder_is_checked_too(data_root, tmp_path):
    faces = tmp_path / "faces"
    faces.mkdir()
    for f in sorted((data_root / "anime_faces").iterdir())[:6]:
        shutil.copy(f, faces / f.name)
    for i in range(12):
        (faces / f"junk{i:02d}.jpg").write_text("junk")
    result = cli("dcgan", "--data", faces, "--out", tmp_path / "run", "--threads", "1")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: 12 of 18 image files cannot be read") and "and 2 more;" in result.stderr
    assert not (tmp_path / "run").exists()
