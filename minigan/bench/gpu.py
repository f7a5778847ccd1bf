"""The one GPU check: `python -m minigan.bench gpu`, about 5-8 minutes on one H100/H200, one table at the end.

1. the `cuda`-marked tests (the Triton kernels compiled, not interpreted; the registered ops' opcheck,
   the compiled kernels in a torch.compile graph), their pytest summary line;
2. the fused instance norm + LeakyReLU(0.2) forward+backward at CycleGAN's layer shapes (batch 1 and
   4, float32 and bfloat16): minigan's Triton kernels vs torch eager (F.instance_norm + F.leaky_relu)
   vs torch.compile of eager, in ms and in % of the bandwidth of `y.copy_(x)` (bytes model of
   `minigan.bench.norm`: forward+backward moves 5 tensors);
3. 50 CycleGAN 256x256 training steps (the paper's nets, batch 1, the script's train_step) eager,
   with --amp (bf16 autocast), with --compile, and with both: median s/step after warm-up.

Without CUDA it says so in one line and exits with status 1, having run nothing.
"""
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
SHAPES = [(64, 256, 256), (128, 128, 128), (256, 64, 64)]    # (C, H, W) of the ResNet generator's norms
SLOPE = 0.2


def cuda_tests(rows, timeout=240):
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider",
                           str(ROOT / "tests")], capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    summary = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    rows.append(("cuda tests", "pytest -m cuda", f"{summary} (exit {done.returncode}, "
                 f"{time.perf_counter() - start:.0f} s)"))
    if done.returncode:
        print(done.stdout[-4000:], done.stderr[-2000:])


def kernels_table(rows):
    import minigan
    from . import forward_backward, timed

    def eager(x):
        return F.leaky_relu(F.instance_norm(x), SLOPE)

    def kernel(x):
        return minigan.instance_norm_leaky_relu(x, negative_slope=SLOPE, impl="triton")

    for dtype in (torch.float32, torch.bfloat16):
        torch._dynamo.reset()
        compiled = torch.compile(eager, dynamic=True)    # one compilation for every shape of a dtype
        for batch in (1, 4):
            for shape in SHAPES:
                x = torch.randn(batch, *shape, device="cuda", dtype=dtype)
                y = torch.empty_like(x)
                tensor_bytes = x.numel() * x.element_size()
                copy_gbps = 2 * tensor_bytes / timed(lambda: y.copy_(x), "cuda") / 1e9
                cells = []
                for name, fn in (("triton", kernel), ("eager", eager), ("compile", compiled)):
                    seconds = timed(forward_backward(fn, x.detach().requires_grad_()), "cuda")
                    percent = 100 * 5 * tensor_bytes / seconds / 1e9 / copy_gbps
                    cells.append(f"{name} {seconds * 1e3:.3f} ms ({percent:.0f}%)")
                label = f"{(batch, *shape)} {str(dtype).replace('torch.', '')}"
                rows.append(("norm fwd+bwd", label, "; ".join(cells) + f"; copy {copy_gbps:.0f} GB/s"))


def cyclegan_steps(rows, steps=50, warmup=5):
    from ..kit.image2image import mixed_precision
    from .step import adam, cyclegan_nets
    for amp in (False, True):
        for compile in (False, True):
            torch._dynamo.reset()
            torch.manual_seed(0)
            nets, batch, train_step, _ = cyclegan_nets(256, 64, 64, 9)("cuda")
            nets = [net.cuda() for net in nets]
            if compile:
                for net in nets:
                    net.compile()
            opt_g, opt_d = adam(*nets[:2]), adam(*nets[2:])
            autocast, scaler = mixed_precision(amp, torch.device("cuda"))
            times = []
            start = time.perf_counter()
            for i in range(warmup + steps):
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                with autocast():
                    losses = train_step(*nets, opt_g, opt_d, *batch)
                torch.cuda.synchronize()
                if i >= warmup:
                    times.append(time.perf_counter() - t0)
            finite = all(math.isfinite(float(v)) for v in losses.values())
            label = "eager" + (" --amp" if amp else "") + (" --compile" if compile else "")
            rows.append(("cyclegan 256 step", label, f"{statistics.median(times) * 1e3:.1f} ms/step median "
                         f"({min(times) * 1e3:.1f} - {max(times) * 1e3:.1f}), {steps} steps, "
                         f"{time.perf_counter() - start:.0f} s with warm-up/compile; losses finite: {finite}"))


def main():
    if not torch.cuda.is_available():
        print("python -m minigan.bench gpu: needs a CUDA GPU and torch.cuda.is_available() is False here; "
              "nothing was run")
        return 1
    os.environ.pop("TRITON_INTERPRET", None)    # the kernels compiled for the GPU, not interpreted
    rows = []
    start = time.perf_counter()
    for section in (cuda_tests, kernels_table, cyclegan_steps):
        try:
            section(rows)
        except Exception as error:   # one failing section must not hide the others' figures
            rows.append((section.__name__, "FAILED", f"{type(error).__name__}: {str(error)[:300]}"))
    print(f"\nminigan GPU check on {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"{time.perf_counter() - start:.0f} s")
    width = max(len(label) for _, label, _ in rows)
    for what, label, value in rows:
        print(f"| {what:<18} | {label:<{width}} | {value} |")
    return 0
