"""Shared test set-up.

- Triton's interpreter must be switched on *before* the kernel module is imported, so this runs first:
  without a CUDA device the Triton kernels execute on CPU tensors (slowly, but exactly).
- Hypothesis profiles: "ci" (the default; derandomized so CI is reproducible) and "thorough"
  (HYPOTHESIS_PROFILE=thorough, many more examples, for local hunting).
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
