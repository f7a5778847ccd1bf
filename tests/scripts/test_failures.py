"""When things go wrong, through the scripts' command line on real images: bad files are all named
before step 1 and nothing is written; a failure after step 1 (an exception in a step, SIGTERM, Ctrl-C
twice, a file gone bad, a full disk, a NaN) leaves a checkpoint of the last completed step, and the
command the message gives continues it to exactly the uninterrupted run's result; resume conflicts
are refused up front."""
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from minigan.kit import checkpoint

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from script_checks import assert_same_state, flatten, read_log  # noqa: E402

pytestmark = pytest.mark.slow
TRACKED = ["G_AB", "G_BA", "D_A", "D_B", "opt_g", "opt_d", "sched_g", "sched_d", "pool_a", "pool_b"]

CYCLEGAN_NETS = ["--image-size", "32", "--ngf", "4", "--ndf", "4", "--n-blocks", "1", "--n-layers-d", "2"]


def cli(script, *flags, cwd=None):
    """Run `python train_<script>.py flags...` -> CompletedProcess (text)."""
    return subprocess.run([sys.executable, str(ROOT / f"train_{script}.py"), *map(str, flags)], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=300)


def last_line(result):
    """The one line a failed run ends with (after any progress bar), checked to be an error, not a crash."""
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


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
    message = last_line(result)  # (after the checking bar, on a machine so busy that it took > 1 s)
    assert result.returncode == 2 and message.startswith("error: 3 of 12 image files cannot be read: ")
    for name in ("trainA/cut.jpg", "trainB/notes.jpg", "testA/empty.jpg", "--skip-bad-images"):
        assert name in message
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
    message = last_line(result)
    assert result.returncode == 2 and message.startswith("error: 12 of 18 image files cannot be read")
    assert "and 2 more;" in message
    assert not (tmp_path / "run").exists()


# --- failures after step 1: a checkpoint of the last completed step, and the command that continues ---

def injected(script, *flags, at=None, action=None):
    """Run train_<script>.py with `action` (Python source) executed inside its optimizer step number
    `at` (counted from 1 over the whole run), as a failure at that point would; -> CompletedProcess."""
    path = ROOT / f"train_{script}.py"
    prelude = f'''
import errno, os, signal, sys
from pathlib import Path
from minigan import kit
real, calls = kit.optimizer_step, [0]
def optimizer_step(*args, **kwargs):
    calls[0] += 1
    if calls[0] == {at!r}:
        {action}
    return real(*args, **kwargs)
kit.optimizer_step = optimizer_step
''' if at else ""
    code = f"{prelude}\nimport runpy\nsys.argv = {[str(path), *map(str, flags)]!r}\nrunpy.run_path({str(path)!r}, run_name='__main__')"
    return subprocess.run([sys.executable, "-c", f"import sys\n{code}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def continue_with(message):
    """Run the command that `message` says continues the run; -> CompletedProcess."""
    command = shlex.split(message.rsplit("continue with: ", 1)[1].strip())
    assert command[0] == "python" and "--resume" in command
    return subprocess.run([sys.executable, *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300)


def left_behind(run):
    """Everything in a run directory besides what a run writes there."""
    expected = {"checkpoint.pt", "losses.jsonl", "losses.png", "samples", "index.html", "run.json"}
    names = {p.name for p in Path(run).iterdir()}
    hidden = [p for p in Path(run).rglob(".*")]
    return sorted(names - expected) + hidden


@pytest.fixture(scope="module")
def horses(data_root, tmp_path_factory):
    """Copies of a few horse2zebra files per split (copies: one test changes a file): 3 steps an epoch."""
    root = tmp_path_factory.mktemp("data") / "h2z"
    for split, n in {"trainA": 3, "trainB": 2, "testA": 2, "testB": 2}.items():
        (root / split).mkdir(parents=True)
        for f in sorted((data_root / "horse2zebra" / split).iterdir())[:n]:
            shutil.copy(f, root / split / f.name)
    return root


def cyclegan_flags(data, out, *more):
    return ["--data", data, "--out", out, "--device", "cpu", "--threads", "1", *CYCLEGAN_NETS, "--epochs", "1",
            "--epochs-decay", "1", "--pool-size", "2", "--sample-every", "100", "--checkpoint-every", "100", *more]


@pytest.fixture(scope="module")
def straight(horses, tmp_path_factory):
    """The uninterrupted CycleGAN run the resumed ones must reproduce: 6 steps, 2 optimizer steps each."""
    out = tmp_path_factory.mktemp("straight") / "run"
    result = cli("cyclegan", *cyclegan_flags(horses, out))
    assert result.returncode == 0, result.stderr
    return out


def assert_continues_to(straight, run, message, tracked=TRACKED):
    """The command in `message` continues `run` to exactly the state and losses of `straight`."""
    result = continue_with(message)
    assert result.returncode == 0, result.stderr
    assert read_log(run) == read_log(straight)
    assert_same_state(checkpoint.load_checkpoint(straight), checkpoint.load_checkpoint(run), tracked)
    assert left_behind(run) == []


def test_an_exception_inside_a_step_keeps_the_step_before(horses, straight, tmp_path):
    # optimizer step 8 is step 4's D step: G's step 4 has already changed G, so the saved state must
    # be the copy from before the step, not the nets as they are
    run = tmp_path / "run"
    result = injected("cyclegan", *cyclegan_flags(horses, run), at=8, action="raise RuntimeError('injected failure')")
    assert result.returncode == 1 and "Traceback" in result.stderr and "injected failure" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: RuntimeError; so the run stopped in step 4: step 3 is saved in "), last
    assert checkpoint.load_checkpoint(run)["step"] == 3 and left_behind(run) == []
    assert_continues_to(straight, run, last)


def test_sigterm_and_ctrl_c_finish_the_step(horses, straight, tmp_path):
    run = tmp_path / "run"
    result = injected("cyclegan", *cyclegan_flags(horses, run), at=8, action="os.kill(os.getpid(), signal.SIGTERM)")
    assert result.returncode == 143, result.stderr
    assert "SIGTERM: stopping after this step" in result.stderr
    done = result.stdout.strip().splitlines()[-1]
    assert done.startswith("interrupted at step 4: checkpoint ") and "continue with: " in done
    assert checkpoint.load_checkpoint(run)["step"] == 4 and left_behind(run) == []
    assert_continues_to(straight, run, done)

    # the same signal twice stops inside the step: the step before it is what is saved
    run = tmp_path / "twice"
    twice = "os.kill(os.getpid(), signal.SIGINT); os.kill(os.getpid(), signal.SIGINT)"
    result = injected("cyclegan", *cyclegan_flags(horses, run), at=8, action=twice)
    assert result.returncode == 130, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted; the run stopped in step 4: step 3 is saved in ") and "Traceback" not in last
    assert checkpoint.load_checkpoint(run)["step"] == 3 and left_behind(run) == []
    assert_continues_to(straight, run, last)


def test_a_file_that_goes_bad_during_the_run(horses, straight, tmp_path):
    data = tmp_path / "h2z"
    shutil.copytree(horses, data)
    victim = sorted((data / "trainA").iterdir())[0]
    good = victim.read_bytes()
    run = tmp_path / "run"
    # in step 2 the file is overwritten; the loader meets it before step 3, 4, 5 or 6 (whichever reads it)
    result = injected("cyclegan", *cyclegan_flags(data, run), at=3, action=f"Path({str(victim)!r}).write_text('x')")
    message = last_line(result)  # the line after the progress bar
    assert result.returncode == 2
    assert message.startswith(f"error: cannot read image {victim}: cannot identify image file; ") and "after step" in message
    step = int(message.split("the run stopped after step ")[1].split(":")[0])
    assert 2 <= step <= 5 and f"step {step} is saved in" in message
    assert checkpoint.load_checkpoint(run)["step"] == step and left_behind(run) == []
    victim.write_bytes(good)  # the file is put back; the run goes on where it stopped
    assert_continues_to(straight, run, message)


def test_a_full_disk_keeps_the_previous_checkpoint(horses, straight, tmp_path):
    # the second checkpoint write (step 4) fails half-way with ENOSPC
    run = tmp_path / "run"
    fail = ("import torch\nreal_save, saves = torch.save, [0]\n"
            "def save(obj, f, *a, **k):\n    saves[0] += 1\n    if saves[0] == 2:\n"
            "        f.write(b'half a checkpoint'); raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))\n"
            "    return real_save(obj, f, *a, **k)\ntorch.save = save")
    result = injected("cyclegan", *cyclegan_flags(horses, run, "--checkpoint-every", "2"), at=1,
                      action=fail.replace("\n", "\n        "))
    message = last_line(result)
    assert result.returncode == 2
    assert message.startswith(f"error: could not write the checkpoint of step 4 to {run / 'checkpoint.pt'} "
                                    "(No space left on device); the previous checkpoint there, of step 2, is intact")
    assert checkpoint.load_checkpoint(run)["step"] == 2 and left_behind(run) == []
    assert_continues_to(straight, run, message)


def test_a_nan_stops_before_the_optimizer_step(data_root, tmp_path):
    # a learning rate of 1e6 sends the MLPs' weights far out in step 1: D's loss in step 2 is not finite
    flags = ["--data", data_root / "mnist", "--device", "cpu", "--threads", "1", "--batch-size", "8",
             "--lr", "1e6", "--lr-g", "1e6", "--max-steps", "4"]
    skipped = tmp_path / "skipped"
    result = cli("mnist", *flags, "--out", skipped, "--on-nan", "skip")
    assert result.returncode == 0, result.stderr
    assert "optimizer steps skipped: non-finite loss" in result.stdout
    run = tmp_path / "run"
    result = cli("mnist", *flags, "--out", run)
    message = last_line(result)
    assert result.returncode == 2
    assert message.startswith("error: step 2: the loss of opt_d's step is nan: stopped before that optimizer step")
    assert "the run stopped in step 2: step 1 is saved in " in message
    saved = checkpoint.load_checkpoint(run)
    assert saved["step"] == 1 and left_behind(run) == []
    assert all(torch.isfinite(t).all() for t in flatten(saved["state"]["D"]))  # the weights never saw the NaN
    result = continue_with(message.replace("--resume", "--on-nan skip --resume"))
    assert result.returncode == 0, result.stderr
    assert_same_state(checkpoint.load_checkpoint(skipped), checkpoint.load_checkpoint(run), ["G", "D", "opt_g", "opt_d"])


# --- resume conflicts: named before anything else is printed ---

def test_resume_conflicts_are_named_up_front(straight, tmp_path):
    for script in ("pix2pix", "mnist"):
        result = cli(script, "--resume", straight)
        assert result.returncode == 2 and result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
        assert f"was written by train_cyclegan.py, not train_{script}.py" in result.stderr

    run = tmp_path / "run"
    shutil.copytree(straight, run)
    result = cli("cyclegan", "--resume", run, "--ngf", "8", "--image-size", "32", "--n-blocks", "3", "--lr", "1e-3")
    assert result.returncode == 2 and result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
    assert "--n-blocks 3 (the run was trained with --n-blocks 1), --ngf 8 (the run was trained with --ngf 4)" in result.stderr
    assert "--lr 0.001 (the run was trained with --lr 0.0002)" in result.stderr and "--image-size" not in result.stderr

    # how long to train may change: one line of note, then the run goes on
    result = cli("cyclegan", "--resume", run, "--epochs-decay", "2", "--threads", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "note: resuming with --epochs-decay 2 (was 1)"
    assert checkpoint.load_checkpoint(run)["step"] == 9
