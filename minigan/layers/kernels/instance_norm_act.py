"""Fused instance norm + (Leaky)ReLU as Triton kernels: the math of `minigan.layers.instance_norm`, on a GPU.

A plane is one (sample, channel) pair: M = H*W pixels. Per plane (see minigan/layers/instance_norm.py):

    forward                                      backward (g = dL/dy)
    mean = (1/M) sum_i x_i                       dz_i = g_i if z_i > 0 else slope * g_i
    var  = (1/M) sum_i (x_i - mean)^2            sum_dz = sum_i dz_i,  sum_dzx = sum_i dz_i * x_hat_i
    rstd = 1 / sqrt(var + eps)                   dx_i = rstd * gamma * (dz_i - sum_dz / M
    x_hat_i = (x_i - mean) * rstd                                             - x_hat_i * sum_dzx / M)
    z_i = gamma * x_hat_i + beta                 dbeta = sum over the batch of sum_dz
    y_i = z_i if z_i > 0 else slope * z_i        dgamma = sum over the batch of sum_dzx

(dx is rstd * (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)) with dx_hat = gamma * dz; gamma
is constant on a plane, so it moves out of both means.) Forward saves x, mean and rstd; backward
recomputes x_hat and z from them, which costs one multiply-add and saves storing two full tensors.

Two ways to cut the work into Triton programs:

- whole planes: one program per plane does everything (reduce, then normalize) -- the simple path;
- split planes: with few planes (batch 1: a 1x64x256x256 layer has only 64 planes of 65,536 pixels)
  one program per plane would leave most of a 132-SM GPU idle. Then every plane is cut into chunks,
  one program per chunk: a first kernel writes per-chunk partial reductions, a second kernel
  combines its plane's partials and does the elementwise pass on its chunk. `plane_chunk` holds the
  rule.

Numerics: sums accumulate in float32 for float16/bfloat16/float32 inputs (loaded, upcast, computed,
cast back on store) and in float64 for float64. The variance is two-pass (mean first, then the sum
of squared deviations), and chunk partials are merged with Chan et al.'s parallel formula, which is
exact in exact arithmetic and never subtracts two large sums:

    M2 = sum_k [ M2_k + n_k * (mean_k - mean)^2 ]      M2 = sum of squared deviations, n_k pixels

Python floats (slope, eps) reach a compiled kernel as float32 scalars, so float64 results match torch to
~1e-8 relative rather than 1e-16. Layout: contiguous NCHW and channels_last tensors are read in place
through three element strides (sample, channel, pixel); other layouts are made contiguous first.
A program walks one channel, so channels_last reads are strided (every C-th element): correct, but
not coalesced on a GPU -- that layout would want programs over pixel tiles of all channels. All
offsets inside one sample are int32, so one sample must hold fewer than 2**31 elements.

Registration: the launchers `_forward` and `_backward` are torch ops too (`torch.library.triton_op`,
`minigan::instance_norm_act_triton` and `..._backward`, with the autograd formula registered between
them). Their bodies launch through `wrap_triton`, so torch.compile traces into the kernels and
Inductor schedules them inside its graph; eager calls take the same launchers through a plain
autograd.Function (no custom-op dispatch per call).

The split rule, worked (an H100 has 132 SMs, so 528 programs are wanted):

>>> plane_chunk(planes=64, pixels=256 * 256, programs_wanted=528)    # 8 chunks a plane, 512 programs
8192
>>> plane_chunk(planes=256, pixels=64 * 64, programs_wanted=528)     # small planes stay whole
4096
"""
import contextlib
import math
from typing import Optional

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

PROGRAMS_PER_SM = 4     # enough programs in flight per SM to hide memory latency
MIN_CHUNK = 4096        # pixels; below that a program's reduction overhead outweighs its bytes
MAX_BLOCK = 1024        # pixels loaded at once: 4 warps x 32 threads x 8 elements


def plane_chunk(planes, pixels, programs_wanted, min_chunk=MIN_CHUNK, align=MAX_BLOCK):
    """Pixels per program: the whole plane, unless the planes are too few to fill the GPU.

    Then cut each plane into ceil(programs_wanted / planes) chunks, but none smaller than `min_chunk`
    pixels; a chunk is rounded up to a multiple of `align` so every program starts on a full block.
    """
    if planes >= programs_wanted or pixels < 2 * min_chunk:
        return pixels
    chunks = min(math.ceil(programs_wanted / planes), pixels // min_chunk)
    return math.ceil(pixels / chunks / align) * align


# ---------------------------------------------------------------------------------------------------
# Building blocks: one plane's pixels [start, stop), read through `X + base + pixel * sP`
# ---------------------------------------------------------------------------------------------------

@triton.jit
def _mean_m2(X, base, start, stop, sP, ACC: tl.constexpr, BLOCK: tl.constexpr):
    """mean and M2 = sum (x - mean)^2 of x over [start, stop): the two-pass variance."""
    total = tl.zeros([BLOCK], dtype=ACC)
    for off in range(start, stop, BLOCK):
        p = off + tl.arange(0, BLOCK)
        total += tl.load(X + base + p * sP, mask=p < stop, other=0.).to(ACC)  # 0 past the end
    mean = tl.sum(total, axis=0) / (stop - start)                       # mean = (1/M) sum x
    squares = tl.zeros([BLOCK], dtype=ACC)
    for off in range(start, stop, BLOCK):
        p = off + tl.arange(0, BLOCK)
        x = tl.load(X + base + p * sP, mask=p < stop, other=0.).to(ACC)
        deviation = tl.where(p < stop, x - mean, 0.)
        squares += deviation * deviation                                # (x - mean)^2
    return mean, tl.sum(squares, axis=0)


@triton.jit
def _normalize(X, Y, base, start, stop, sP, mean, rstd, gamma, beta, slope,
               ACC: tl.constexpr, BLOCK: tl.constexpr):
    """y = leaky_relu(gamma * (x - mean) * rstd + beta) over [start, stop)."""
    for off in range(start, stop, BLOCK):
        p = off + tl.arange(0, BLOCK)
        x = tl.load(X + base + p * sP, mask=p < stop).to(ACC)
        z = (x - mean) * rstd * gamma + beta                            # x_hat * gamma + beta
        y = tl.where(z > 0, z, z * slope)
        tl.store(Y + base + p * sP, y.to(Y.dtype.element_ty), mask=p < stop)


@triton.jit
def _dz_sums(X, DY, base, start, stop, sP, mean, rstd, gamma, beta, slope,
             ACC: tl.constexpr, BLOCK: tl.constexpr):
    """sum dz and sum dz * x_hat over [start, stop): the two reductions of the backward."""
    sum_dz = tl.zeros([BLOCK], dtype=ACC)
    sum_dzx = tl.zeros([BLOCK], dtype=ACC)
    for off in range(start, stop, BLOCK):
        p = off + tl.arange(0, BLOCK)
        x_hat = (tl.load(X + base + p * sP, mask=p < stop, other=0.).to(ACC) - mean) * rstd
        dy = tl.load(DY + base + p * sP, mask=p < stop, other=0.).to(ACC)  # 0 past the end:
        dz = tl.where(x_hat * gamma + beta > 0, dy, dy * slope)           # so dz = 0 there
        sum_dz += dz
        sum_dzx += dz * x_hat
    return tl.sum(sum_dz, axis=0), tl.sum(sum_dzx, axis=0)


@triton.jit
def _input_grad(X, DY, DX, base, start, stop, sP, pixels, mean, rstd, gamma, beta, slope,
                sum_dz, sum_dzx, ACC: tl.constexpr, BLOCK: tl.constexpr):
    """dx = rstd * gamma * (dz - sum_dz / M - x_hat * sum_dzx / M) over [start, stop)."""
    mean_dz = sum_dz / pixels
    mean_dzx = sum_dzx / pixels
    for off in range(start, stop, BLOCK):
        p = off + tl.arange(0, BLOCK)
        x_hat = (tl.load(X + base + p * sP, mask=p < stop).to(ACC) - mean) * rstd
        dy = tl.load(DY + base + p * sP, mask=p < stop).to(ACC)
        dz = tl.where(x_hat * gamma + beta > 0, dy, dy * slope)         # the activation's mask
        dx = rstd * gamma * (dz - mean_dz - x_hat * mean_dzx)
        tl.store(DX + base + p * sP, dx.to(DX.dtype.element_ty), mask=p < stop)


@triton.jit
def _plane_start(plane, C, sN, sC):
    """Where plane n * C + c begins (int64: a batch may pass 2^31 elements), and its channel c."""
    n, c = plane // C, plane % C
    return n.to(tl.int64) * sN + c * sC, c


@triton.jit
def _gamma_beta(W, B, c, AFFINE: tl.constexpr, ACC: tl.constexpr):
    """The channel's gamma and beta; without affine 1 and 0, the identity."""
    gamma, beta = tl.full((), 1., ACC), tl.full((), 0., ACC)
    if AFFINE:
        gamma, beta = tl.load(W + c).to(ACC), tl.load(B + c).to(ACC)
    return gamma, beta


# ---------------------------------------------------------------------------------------------------
# Whole planes: program `plane` = n * C + c does the full plane
# ---------------------------------------------------------------------------------------------------

@triton.jit
def _forward_kernel(X, Y, W, B, Mean, Rstd, C, pixels, sN, sC, sP, slope, eps,
                    AFFINE: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr):
    plane = tl.program_id(0)
    base, c = _plane_start(plane, C, sN, sC)
    mean, m2 = _mean_m2(X, base, 0, pixels, sP, ACC, BLOCK)
    rstd = 1. / tl.sqrt(m2 / pixels + eps)                              # 1 / sqrt(var + eps)
    tl.store(Mean + plane, mean)                                        # saved for the backward
    tl.store(Rstd + plane, rstd)
    gamma, beta = _gamma_beta(W, B, c, AFFINE, ACC)
    _normalize(X, Y, base, 0, pixels, sP, mean, rstd, gamma, beta, slope, ACC, BLOCK)


@triton.jit
def _backward_kernel(X, DY, DX, W, B, Mean, Rstd, SumDz, SumDzx, C, pixels, sN, sC, sP, slope,
                     AFFINE: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr):
    plane = tl.program_id(0)
    base, c = _plane_start(plane, C, sN, sC)
    mean, rstd = tl.load(Mean + plane), tl.load(Rstd + plane)
    gamma, beta = _gamma_beta(W, B, c, AFFINE, ACC)
    sum_dz, sum_dzx = _dz_sums(X, DY, base, 0, pixels, sP, mean, rstd, gamma, beta, slope,
                               ACC, BLOCK)
    tl.store(SumDz + plane, sum_dz)                                     # dbeta, dgamma: summed
    tl.store(SumDzx + plane, sum_dzx)                                   # over n by the caller
    _input_grad(X, DY, DX, base, 0, pixels, sP, pixels, mean, rstd, gamma, beta, slope,
                sum_dz, sum_dzx, ACC, BLOCK)


# ---------------------------------------------------------------------------------------------------
# Split planes: program (plane, k) does pixels [k * chunk, (k + 1) * chunk) of its plane
# ---------------------------------------------------------------------------------------------------

@triton.jit
def _forward_partials_kernel(X, PartMean, PartM2, C, pixels, chunk, sN, sC, sP,
                             ACC: tl.constexpr, BLOCK: tl.constexpr):
    plane, k, chunks = tl.program_id(0), tl.program_id(1), tl.num_programs(1)
    base, c = _plane_start(plane, C, sN, sC)
    start = k * chunk
    mean, m2 = _mean_m2(X, base, start, tl.minimum(start + chunk, pixels), sP, ACC, BLOCK)
    tl.store(PartMean + plane * chunks + k, mean)
    tl.store(PartM2 + plane * chunks + k, m2)


@triton.jit
def _forward_split_kernel(X, Y, W, B, PartMean, PartM2, Mean, Rstd, C, pixels, chunk,
                          sN, sC, sP, slope, eps, AFFINE: tl.constexpr, ACC: tl.constexpr,
                          BLOCK: tl.constexpr, CHUNKS: tl.constexpr):
    plane, k = tl.program_id(0), tl.program_id(1)
    base, c = _plane_start(plane, C, sN, sC)
    # merge the plane's partials (every program of the plane does it; they are a few floats)
    j = tl.arange(0, CHUNKS)
    count = tl.maximum(tl.minimum(chunk, pixels - j * chunk), 0).to(ACC)  # n_k; 0 past the end
    part_mean = tl.load(PartMean + plane * tl.num_programs(1) + j, mask=count > 0, other=0.)
    part_m2 = tl.load(PartM2 + plane * tl.num_programs(1) + j, mask=count > 0, other=0.)
    mean = tl.sum(count * part_mean, axis=0) / pixels                   # mean = sum n_k mean_k / M
    spread = part_mean - mean
    m2 = tl.sum(part_m2 + count * spread * spread, axis=0)              # Chan et al.
    rstd = 1. / tl.sqrt(m2 / pixels + eps)
    if k == 0:
        tl.store(Mean + plane, mean)
        tl.store(Rstd + plane, rstd)
    gamma, beta = _gamma_beta(W, B, c, AFFINE, ACC)
    start = k * chunk
    _normalize(X, Y, base, start, tl.minimum(start + chunk, pixels), sP, mean, rstd, gamma, beta,
               slope, ACC, BLOCK)


@triton.jit
def _backward_partials_kernel(X, DY, W, B, Mean, Rstd, PartDz, PartDzx, C, pixels, chunk,
                              sN, sC, sP, slope, AFFINE: tl.constexpr, ACC: tl.constexpr,
                              BLOCK: tl.constexpr):
    plane, k, chunks = tl.program_id(0), tl.program_id(1), tl.num_programs(1)
    base, c = _plane_start(plane, C, sN, sC)
    mean, rstd = tl.load(Mean + plane), tl.load(Rstd + plane)
    gamma, beta = _gamma_beta(W, B, c, AFFINE, ACC)
    start = k * chunk
    sum_dz, sum_dzx = _dz_sums(X, DY, base, start, tl.minimum(start + chunk, pixels), sP,
                               mean, rstd, gamma, beta, slope, ACC, BLOCK)
    tl.store(PartDz + plane * chunks + k, sum_dz)
    tl.store(PartDzx + plane * chunks + k, sum_dzx)


@triton.jit
def _backward_split_kernel(X, DY, DX, W, B, Mean, Rstd, PartDz, PartDzx, C, pixels, chunk,
                           sN, sC, sP, slope, AFFINE: tl.constexpr, ACC: tl.constexpr,
                           BLOCK: tl.constexpr, CHUNKS: tl.constexpr):
    plane, k, chunks = tl.program_id(0), tl.program_id(1), tl.num_programs(1)
    base, c = _plane_start(plane, C, sN, sC)
    j = tl.arange(0, CHUNKS)
    sum_dz = tl.sum(tl.load(PartDz + plane * chunks + j, mask=j < chunks, other=0.), axis=0)
    sum_dzx = tl.sum(tl.load(PartDzx + plane * chunks + j, mask=j < chunks, other=0.), axis=0)
    mean, rstd = tl.load(Mean + plane), tl.load(Rstd + plane)
    gamma, beta = _gamma_beta(W, B, c, AFFINE, ACC)
    start = k * chunk
    _input_grad(X, DY, DX, base, start, tl.minimum(start + chunk, pixels), sP, pixels,
                mean, rstd, gamma, beta, slope, sum_dz, sum_dzx, ACC, BLOCK)


# ---------------------------------------------------------------------------------------------------
# Launchers and the autograd Function
# ---------------------------------------------------------------------------------------------------

def _layout(x):
    """x (made contiguous unless channels_last), its memory format and its (sample, channel, pixel)
    element strides: NCHW (C*M, M, 1), channels_last (M*C, 1, C)."""
    c, m = x.shape[1], math.prod(x.shape[2:])
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return x, torch.channels_last, (m * c, 1, c)
    return x.contiguous(), torch.contiguous_format, (c * m, m, 1)


def _device_context(x):
    # launches go to the current CUDA device; make it x's (nothing to do on CPU, the interpreter)
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


def _programs_wanted(x):
    sms = torch.cuda.get_device_properties(x.device).multi_processor_count if x.is_cuda else 1
    return PROGRAMS_PER_SM * sms


def _config(x, chunk, block):
    """(pixels per program, BLOCK, num_warps, accumulator dtype) for x."""
    planes, pixels = x.shape[0] * x.shape[1], math.prod(x.shape[2:])
    if chunk is None:
        chunk = plane_chunk(planes, pixels, _programs_wanted(x))
    chunk = max(min(chunk, pixels), 1)
    block = min(block or MAX_BLOCK, triton.next_power_of_2(chunk))
    num_warps = min(max(block // 256, 1), 8)                           # 256 pixels a warp
    acc = tl.float64 if x.dtype == torch.float64 else tl.float32
    return chunk, block, num_warps, acc


def _forward(input: torch.Tensor, weight: Optional[torch.Tensor], bias: Optional[torch.Tensor],
             slope: float, eps: float, chunk: Optional[int], block: Optional[int]
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(y, mean, rstd): the output and the per-plane statistics the backward reads."""
    x, memory_format, (sN, sC, sP) = _layout(input)
    n, c, pixels = x.shape[0], x.shape[1], math.prod(x.shape[2:])
    affine = weight is not None
    chunk, block, num_warps, acc = _config(x, chunk, block)
    y = torch.empty_like(x, memory_format=memory_format)
    stat_dtype = torch.float64 if acc == tl.float64 else torch.float32
    mean = torch.empty(n * c, device=x.device, dtype=stat_dtype)
    rstd = torch.empty_like(mean)
    with _device_context(x):
        if x.numel() == 0:
            pass                                    # nothing to launch (and no grid of 0)
        elif chunk == pixels:
            wrap_triton(_forward_kernel)[(n * c,)](
                x, y, weight, bias, mean, rstd, c, pixels, sN, sC, sP, slope, eps,
                AFFINE=affine, ACC=acc, BLOCK=block, num_warps=num_warps)
        else:
            chunks = math.ceil(pixels / chunk)
            part_mean = torch.empty(n * c, chunks, device=x.device, dtype=stat_dtype)
            part_m2 = torch.empty_like(part_mean)
            wrap_triton(_forward_partials_kernel)[(n * c, chunks)](
                x, part_mean, part_m2, c, pixels, chunk, sN, sC, sP,
                ACC=acc, BLOCK=block, num_warps=num_warps)
            wrap_triton(_forward_split_kernel)[(n * c, chunks)](
                x, y, weight, bias, part_mean, part_m2, mean, rstd, c, pixels, chunk,
                sN, sC, sP, slope, eps, AFFINE=affine, ACC=acc, BLOCK=block,
                CHUNKS=triton.next_power_of_2(chunks), num_warps=num_warps)
    return y, mean, rstd


def _backward(x: torch.Tensor, dy: torch.Tensor, weight: Optional[torch.Tensor],
              bias: Optional[torch.Tensor], mean: torch.Tensor, rstd: torch.Tensor, slope: float,
              chunk: Optional[int], block: Optional[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dx, sum_dz, sum_dzx): the input gradient and per-plane (per-chunk) sums of dz, dz * x_hat."""
    x, memory_format, (sN, sC, sP) = _layout(x)
    n, c, pixels = x.shape[0], x.shape[1], math.prod(x.shape[2:])
    affine = weight is not None
    chunk, block, num_warps, acc = _config(x, chunk, block)
    dy = dy.contiguous(memory_format=memory_format)                    # x's strides
    dx = torch.empty_like(x, memory_format=memory_format)
    chunks = math.ceil(pixels / chunk)
    # 0 when there is nothing to sum
    new = torch.zeros if x.numel() == 0 else torch.empty
    sum_dz = new(n * c, chunks, device=x.device, dtype=mean.dtype)
    sum_dzx = new(n * c, chunks, device=x.device, dtype=mean.dtype)
    with _device_context(x):
        if x.numel() == 0:
            pass
        elif chunks == 1:
            wrap_triton(_backward_kernel)[(n * c,)](
                x, dy, dx, weight, bias, mean, rstd, sum_dz, sum_dzx, c, pixels, sN, sC, sP,
                slope, AFFINE=affine, ACC=acc, BLOCK=block, num_warps=num_warps)
        else:
            wrap_triton(_backward_partials_kernel)[(n * c, chunks)](
                x, dy, weight, bias, mean, rstd, sum_dz, sum_dzx, c, pixels, chunk,
                sN, sC, sP, slope, AFFINE=affine, ACC=acc, BLOCK=block, num_warps=num_warps)
            wrap_triton(_backward_split_kernel)[(n * c, chunks)](
                x, dy, dx, weight, bias, mean, rstd, sum_dz, sum_dzx, c, pixels, chunk,
                sN, sC, sP, slope, AFFINE=affine, ACC=acc, BLOCK=block,
                CHUNKS=triton.next_power_of_2(chunks), num_warps=num_warps)
    return dx, sum_dz, sum_dzx


def _setup_context(ctx, inputs, output):
    input, weight, bias, slope, eps, chunk, block = inputs
    _, mean, rstd = output
    ctx.save_for_backward(input, weight, bias, mean, rstd)
    ctx.slope, ctx.chunk, ctx.block = slope, chunk, block


def _gradients(ctx, dy, backward):
    """(dx, dgamma, dbeta, None x 4) from `backward` (the plain function or the registered op)."""
    if torch.is_grad_enabled():
        raise RuntimeError("instance_norm_leaky_relu (Triton): double backward (create_graph=True) "
                           "is not supported")
    x, weight, bias, mean, rstd = ctx.saved_tensors
    dx, sum_dz, sum_dzx = backward(x, dy, weight, bias, mean, rstd, ctx.slope, ctx.chunk, ctx.block)
    grad_weight = grad_bias = None
    if weight is not None:
        # per-plane partials -> per channel: sum over samples n and chunks k
        n, c, chunks = *x.shape[:2], sum_dz.shape[1]
        grad_weight = sum_dzx.view(n, c, chunks).sum((0, 2)).to(weight.dtype).view(weight.shape)
        grad_bias = sum_dz.view(n, c, chunks).sum((0, 2)).to(bias.dtype).view(bias.shape)
    return dx, grad_weight, grad_bias, None, None, None, None


# The kernels registered with torch as ops whose bodies launch them through `wrap_triton`:
# torch.compile (Inductor) then sees the Triton kernels themselves inside its graph, forward and
# backward, instead of an opaque call.
forward_op = triton_op("minigan::instance_norm_act_triton", mutates_args=())(_forward)
backward_op = triton_op("minigan::instance_norm_act_triton_backward", mutates_args=())(_backward)
forward_op.register_autograd(lambda ctx, dy, _dmean, _drstd: _gradients(ctx, dy, backward_op),
                             setup_context=_setup_context)


class InstanceNormLeakyReLU(torch.autograd.Function):
    """The eager path: the same launches without the custom-op dispatch (cheaper per call)."""

    @staticmethod
    def forward(ctx, *inputs):
        output = _forward(*inputs)
        _setup_context(ctx, inputs, output)
        return output[0]

    @staticmethod
    def backward(ctx, dy):
        return _gradients(ctx, dy, _backward)


def instance_norm_leaky_relu(input, weight, bias, negative_slope, eps, *, chunk=None, block=None):
    """leaky_relu(instance_norm(input, weight, bias, eps), negative_slope) by the Triton kernels.

    input: (N, C, *spatial), float16/bfloat16/float32/float64, on CUDA (or CPU under
    TRITON_INTERPRET=1). weight, bias: (C,) or None (one alone: the other is 1 or 0).
    chunk, block: overrides of the pixels per program (`plane_chunk`) and per load (MAX_BLOCK), for
    tests that must reach the split path on small planes.
    """
    if input.dim() < 3:
        raise ValueError(f"instance_norm_leaky_relu: input must be (N, C, *spatial), "
                         f"got shape {tuple(input.shape)}")
    n, c = input.shape[:2]
    if math.prod(input.shape[1:]) >= 2 ** 31:
        raise RuntimeError(f"instance_norm_leaky_relu: one sample of {tuple(input.shape)} holds "
                           f"2**31 elements or more; the kernels index a sample with int32")
    for name, param in (("weight", weight), ("bias", bias)):
        if param is not None and (param.numel() != c or param.device != input.device):
            raise RuntimeError(f"instance_norm_leaky_relu: {name} must hold {c} elements on "
                               f"{input.device}, got shape {tuple(param.shape)} on {param.device}")
    if (weight is None) != (bias is None):
        # the kernels take both or neither; the filler is a constant, so it gets no gradient
        weight = torch.ones(c, device=input.device, dtype=input.dtype) if weight is None else weight
        bias = torch.zeros(c, device=input.device, dtype=input.dtype) if bias is None else bias
    if weight is not None:      # the kernels read gamma[c] at W + c
        weight, bias = weight.contiguous(), bias.contiguous()
    if torch.compiler.is_compiling():
        return forward_op(input, weight, bias, float(negative_slope), float(eps), chunk, block)[0]
    return InstanceNormLeakyReLU.apply(input, weight, bias, float(negative_slope), float(eps), chunk, block)
