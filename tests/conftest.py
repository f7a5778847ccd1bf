"""Shared test set-up.

- Triton's interpreter must be switched on *before* the kernel module is imported, so this runs first:
  without a CUDA device the Triton kernels execute on CPU tensors (slowly, but exactly).
- Hypothesis profiles: "ci" (the default; derandomized so CI is reproducible) and "thorough"
  (HYPOTHESIS_PROFILE=thorough, many more examples, for local hunting).
- The MNIST score's classifier is cached in one temporary folder for the whole session
  ($MINIGAN_CACHE): it is trained (about a minute) at most once per test run, never into the data.
- Fixtures for the real datasets (MINIGAN_DATA) and the reference golden files (MINIGAN_REFERENCE,
  else ../shared/reference beside the checkout). Tests that need them skip, saying why, when absent.
"""
import os
from pathlib import Path

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def data_root():
    """The shared real datasets (horse2zebra, mnist, facades, edges2shoes, anime_faces)."""
    root = os.environ.get("MINIGAN_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("real data absent: set MINIGAN_DATA to a folder holding the datasets")
    return Path(root)


@pytest.fixture(scope="session")
def reference_dir():
    """Golden files from the reference CycleGAN/pix2pix networks (weights, input, output)."""
    path = Path(os.environ.get("MINIGAN_REFERENCE", ROOT.parent / "shared" / "reference"))
    if not (path / "cyclegan_resnet9_ngf8.pt").is_file():
        pytest.skip(f"reference golden files absent at {path}: set MINIGAN_REFERENCE")
    return path


@pytest.fixture(scope="session", autouse=True)
def classifier_cache(tmp_path_factory):
    """$MINIGAN_CACHE for the session (unless it is set already): the first test that needs the MNIST
    classifier trains and caches it there, every later one loads it."""
    if not os.environ.get("MINIGAN_CACHE"):
        os.environ["MINIGAN_CACHE"] = str(tmp_path_factory.mktemp("minigan-cache"))
    return Path(os.environ["MINIGAN_CACHE"])
