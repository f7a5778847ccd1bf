"""Instance norm + LeakyReLU(0.2): torch eager, torch.compile, minigan's torch path and its Triton kernels.

    python -m minigan.bench norm [--device cpu|cuda]

Shapes: the CycleGAN layers at batch 1 (1x64x256x256 ... 1x512x32x32), a batch-16 DCGAN-like
layer, and the small planes of the CycleGAN CPU recipe at batch 1 (1x16x64x64 ... 1x256x7x7). Every figure is the median time of a call (`minigan.bench.timed`) and the bandwidth it
achieves under a bytes model that counts each tensor the op must touch once (float32: 4 bytes each):

    forward           reads x, writes y                               2 tensors
    forward+backward  the forward, then reads x and dy, writes dx     5 tensors

Real implementations move more (the torch paths write intermediates; the kernels re-read x from
cache), so the model is a floor on traffic and "% copy" -- the bandwidth over that of `y.copy_(x)`
(read x, write y) measured in the same run -- tells how close an op gets to moving its bytes once.
The Triton column exists on CUDA only: on CPU the kernels run in Triton's interpreter, which is a
correctness tool, not a speed measure. On CPU the run uses one thread (see `main`).
"""
import os

import torch
import torch.nn.functional as F

import minigan
from . import forward_and_backward_times, timed

SHAPES = [(1, 64, 256, 256), (1, 128, 128, 128), (1, 256, 64, 64), (1, 512, 32, 32),
          (16, 256, 8, 8),
          # the CycleGAN CPU recipe's planes at batch 1 (64x64 images, ngf 16, ndf 32): where CPU
          # users train, and where per-call overhead, not bandwidth, decides
          (1, 16, 64, 64), (1, 32, 32, 32), (1, 64, 16, 16), (1, 128, 8, 8), (1, 256, 7, 7)]
SLOPE = 0.2     # the discriminators' LeakyReLU slope (DCGAN, pix2pix, CycleGAN)


def eager(x):
    return F.leaky_relu(F.instance_norm(x), SLOPE)


def minigan_torch(x):
    return minigan.instance_norm_leaky_relu(x, negative_slope=SLOPE, impl="torch")


def minigan_triton(x):
    return minigan.instance_norm_leaky_relu(x, negative_slope=SLOPE, impl="triton")


def compiled_eager():
    """A fresh torch.compile of `eager` (its first call compiles, for the shape it gets)."""
    torch._dynamo.reset()               # one cache per shape: no recompilation limit to hit
    return torch.compile(eager, dynamic=False)


def compile_error(device):
    """None when torch.compile works here, else why not (it needs a C++ compiler on CPU)."""
    try:
        x = torch.randn(1, 2, 4, 4, device=device, requires_grad=True)
        compiled_eager()(x).sum().backward()
    except Exception as error:          # whatever broke, the other columns are still worth having
        return f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    return None


def measure(fn, x, device):
    """Seconds per forward call and per forward+backward call of fn on x."""
    return forward_and_backward_times(fn, x.detach().requires_grad_(), device=device)


def main(device):
    device = torch.device(device)
    if device.type != "cpu":
        return run(device)
    # One CPU thread: on a shared machine a parallel region waits for its slowest thread, so with
    # every core busy elsewhere multi-thread medians swing tenfold; one thread just runs slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run(device)
    finally:
        torch.set_num_threads(threads)


def run(device):
    dtype = torch.float32
    # name -> a function that returns the op to time (torch.compile: a fresh compilation per shape)
    impls = {"eager": lambda: eager}
    compile_failure = compile_error(device)
    if compile_failure is None:
        impls["compile"] = compiled_eager
    impls["minigan torch"] = lambda: minigan_torch
    if device.type == "cuda":
        from minigan.layers.kernels import unavailable_reason
        triton_failure = unavailable_reason(torch.zeros(1, device=device))
        if triton_failure is None:
            impls["minigan triton"] = lambda: minigan_triton
        where = torch.cuda.get_device_name(device)
    else:
        triton_failure = ("no GPU here, and on CPU the kernels would run in Triton's interpreter, a "
                          "correctness tool, not a speed measure")
        # CPU timings swing with whatever else runs: say how busy the machine was
        where = (f"CPU, {torch.get_num_threads()} thread(s), load average "
                 f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    print(f"instance norm + LeakyReLU({SLOPE}), {dtype}, {where}")
    print("bytes model: forward 2 tensors (read x, write y); forward+backward 5 (also read x, dy, "
          "write dx); % copy = GB/s over y.copy_(x)'s GB/s")
    if compile_failure is not None:
        print(f"torch.compile column absent: {compile_failure}")
    if triton_failure is not None:
        print(f"GPU / minigan triton columns absent: {triton_failure}")
    header = f"{'shape':<18} {'pass':<8} {'copy GB/s':>9}" + "".join(
        f" | {name:^22}" for name in impls)
    print(header)
    print(f"{'':<18} {'':<8} {'':>9}" + " | {:>7} {:>7} {:>6}".format("ms", "GB/s", "% copy")
          * len(impls))
    ratios = []
    for shape in SHAPES:
        x = torch.randn(shape, device=device, dtype=dtype)
        tensor_bytes = x.numel() * x.element_size()
        y = torch.empty_like(x)
        copy_gbps = 2 * tensor_bytes / timed(lambda: y.copy_(x), device) / 1e9
        times = {}
        for name, make in impls.items():
            times[name] = measure(make(), x, device)
        for index, (label, tensors) in enumerate([("fwd", 2), ("fwd+bwd", 5)]):
            row = f"{str(shape):<18} {label:<8} {copy_gbps:>9.1f}"
            for name in impls:
                seconds = times[name][index]
                gbps = tensors * tensor_bytes / seconds / 1e9
                row += f" | {seconds * 1e3:>7.3f} {gbps:>7.1f} {100 * gbps / copy_gbps:>5.0f}%"
            print(row)
        ratios.append((shape, [times["minigan torch"][i] / times["eager"][i] for i in (0, 1)]))

    print("\nminigan torch path / torch eager (time ratio; < 1 is faster):")
    for shape, (fwd, fwd_bwd) in ratios:
        print(f"  {str(shape):<18} fwd {fwd:5.2f}x   fwd+bwd {fwd_bwd:5.2f}x")

    print("\ninstance norm alone, no activation: minigan.layers.instance_norm vs F.instance_norm")
    print(f"  {'shape':<18} {'F fwd ms':>9} {'minigan':>9} {'ratio':>6} | "
          f"{'F fwd+bwd':>9} {'minigan':>9} {'ratio':>6}")
    for shape in SHAPES:
        x = torch.randn(shape, device=device, dtype=dtype)
        theirs = measure(F.instance_norm, x, device)
        ours = measure(minigan.layers.instance_norm, x, device)
        print(f"  {str(shape):<18} {theirs[0] * 1e3:>9.3f} {ours[0] * 1e3:>9.3f} "
              f"{ours[0] / theirs[0]:>5.2f}x | {theirs[1] * 1e3:>9.3f} {ours[1] * 1e3:>9.3f} "
              f"{ours[1] / theirs[1]:>5.2f}x")
