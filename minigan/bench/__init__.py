"""Benchmarks that print ratios against torch measured in the same process.

    python -m minigan.bench conv     fast transposed convolution vs F.conv_transpose2d
    python -m minigan.bench norm     instance norm (+ LeakyReLU): torch eager, torch.compile, minigan
    python -m minigan.bench step     whole training steps of each script's nets: minigan vs torch-native twins
    python -m minigan.bench gpu      the one GPU check: cuda tests, Triton kernels, CycleGAN steps (CUDA only)

Speed is measured here, never asserted in tests. Each figure is the median of several timed repeats
after warm-up; on CUDA the clock is read after `torch.cuda.synchronize()`.
"""
import statistics
import time

import torch


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device="cpu", warmup=3, repeats=10, min_time=0.2):
    """Median seconds per call of `fn()` (warm-up calls first; repeats grow until `min_time` is spent)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
        if len(times) >= 10 * repeats:
            break
    return statistics.median(times)


def forward_backward(fn, *inputs):
    """A closure running `fn(*inputs)` forward and backward with a fixed random upstream gradient."""
    out = fn(*inputs)
    grad = torch.randn_like(out)

    def step():
        for x in inputs:
            if isinstance(x, torch.Tensor):
                x.grad = None
        fn(*inputs).backward(grad)
    return step


def forward_and_backward_times(fn, *inputs, device="cpu"):
    """(seconds per forward call without autograd, seconds per forward+backward call) of fn(*inputs)."""
    with torch.no_grad():
        forward = timed(lambda: fn(*inputs), device)
    return forward, timed(forward_backward(fn, *inputs), device)
