"""The benchmarks' own pieces: the torch-native twins compute minigan's functions, `bench step` runs,
and `bench gpu` refuses in one line where there is no GPU. (Speed itself is never asserted.)"""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from minigan.bench import step
from minigan.bench.twins import twin
from minigan.nets import DCGANGenerator, PatchGAN, ResnetGenerator, UNet256

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("make, x", [
    (lambda: ResnetGenerator(ngf=4, n_blocks=2), torch.randn(1, 3, 16, 16)),
    (lambda: PatchGAN(3, 8, 3, norm="instance"), torch.randn(1, 3, 32, 32)),
    (lambda: PatchGAN(6, 8, 3, norm="batch"), torch.randn(2, 6, 32, 32)),
    (lambda: UNet256(ngf=2), torch.randn(1, 3, 256, 256)),
    (lambda: DCGANGenerator(10, 4, 3), torch.randn(2, 10)),
])
def test_twin_is_the_same_function_from_torch_layers(make, x):
    torch.manual_seed(0)
    net = make()
    other = twin(net)
    leaves = [m for m in other.modules() if not list(m.children())]
    assert all(type(m).__module__.startswith("torch.") for m in leaves), \
        [type(m) for m in leaves if not type(m).__module__.startswith("torch.")]   # no minigan layer left
    outputs, grads = [], []
    for model in (net, other):
        torch.manual_seed(1)                    # the same dropout masks (the U-Net's)
        outputs.append(model(x))
        outputs[-1].square().mean().backward()
        grads.append(sorted(p.grad.norm().item() for p in model.parameters()))
    torch.testing.assert_close(outputs[1], outputs[0], atol=1e-5, rtol=1e-4)
    assert grads[1] == pytest.approx(grads[0], rel=1e-4, abs=1e-7)


def test_step_benchmark_runs_and_prints_ratios(capsys):
    step.main("cpu", ["recipe"], repeats=1, eager_only=True)
    out = capsys.readouterr().out
    assert "recipe: CycleGAN CPU recipe" in out and "eager minigan / twin:" in out
    with pytest.raises(SystemExit, match="unknown --nets nope"):
        step.main("cpu", ["nope"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where there is no GPU")
def test_gpu_check_refuses_in_one_line_without_cuda():
    done = subprocess.run([sys.executable, "-m", "minigan.bench", "gpu"], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 1, done.stderr
    assert done.stderr == "" and done.stdout.count("\n") == 1, (done.stdout, done.stderr)
    assert done.stdout.startswith("python -m minigan.bench gpu: needs a CUDA GPU")
