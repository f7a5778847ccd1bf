"""Instance normalization and the fused instance norm + (Leaky)ReLU, with a hand-derived backward.

Instance norm (Ulyanov et al. 2016) normalizes every (sample, channel) plane on its own, over H,W:

    mean = (1/M) sum_i x_i                      M = H*W, the plane's size
    var  = (1/M) sum_i (x_i - mean)^2           biased variance, as torch
    rstd = 1 / sqrt(var + eps)
    x_hat_i = (x_i - mean) * rstd
    z_i = gamma * x_hat_i + beta                gamma, beta: one per channel (affine=True), else 1, 0
    y_i = leaky_relu(z_i) = z_i if z_i > 0 else slope * z_i      (the fused op; slope 0 = ReLU)

CycleGAN and pix2pix put an activation right after every instance norm, so the pair is one op here,
`instance_norm_leaky_relu`, with one backward for both: z is never saved, nor its gradient kept.

Backward. Write g = dL/dy (the upstream gradient). Going back through the activation:

    dz_i = g_i          if z_i > 0          the mask is read off the saved output: for slope >= 0,
    dz_i = slope * g_i  otherwise           y > 0 exactly when z > 0 (so negative slopes are refused)

then through the affine step (summed over every plane of that channel, i.e. over N, H, W):

    dbeta  = sum dz          dgamma = sum dz * x_hat          dx_hat = gamma * dz

and through the normalization, whose every output depends on every input of the plane via mean and
rstd. With dx_hat_i known, the chain rule through x_hat_i = (x_i - mean) * rstd gives

    dx_i = rstd * (dx_hat_i - mean_j(dx_hat_j) - x_hat_i * mean_j(dx_hat_j * x_hat_j))

(the first term is the direct path, the second comes through `mean`, the third through `rstd`).
Because gamma is constant on a plane, both means are the two per-plane sums the affine backward needs
anyway: sum dz and sum dz * x_hat. So backward is two reductions and one elementwise pass, and it
needs only x_hat, rstd, gamma, and for the activation the sign of z (x_hat's without gamma/beta,
else the output's); x itself is not saved.

How this file spends its passes over the (N*C, M) data, one plane per row:
forward: sum x; x_c = x - sum / M; |x_c| as one fused norm, rstd = 1 / sqrt(eps + |x_c|^2 / M) as
one addcmul and rsqrt on the (N*C, 1) column; x_hat = x_c * rstd in place; z = x_hat * gamma + beta
when affine; the activation. Backward: the activation's mask, sum dz,
sum dz * x_hat (on planes of at most _SMALL_PLANE elements a product into a buffer and a row sum,
else one BLAS dot per plane), then dx = scale * (dz - mean(dz) - x_hat * mean(dz * x_hat)) as three
in-place passes over one buffer. On CPU at batch 1 the planes are small (a 64x64 CycleGAN recipe
layer holds 16 planes of 4096 pixels) and each of these ops costs a few microseconds of dispatch,
so the op count, not the bytes, is what this path minimizes.

The op is registered with torch as `torch.ops.minigan.instance_norm_act` (`torch.library.custom_op`,
with its fake implementation and its backward), for code that wants it as one named op (export,
other libraries); `torch.library.opcheck` tests the registration. minigan's layers call the same
three functions through a plain autograd.Function: eagerly it costs less per call than the
dispatcher's custom-op machinery, and torch.compile traces it, backward included, without a graph
break, so that Inductor can fuse its passes with the neighbouring ops.

Numerics. The variance is computed in two passes (mean first, then the mean of squared deviations).
The one-pass E[x^2] - E[x]^2 cancels catastrophically in float32 when the mean is large next to the
spread -- it can even go negative:

>>> x = torch.tensor([10000.0, 10000.0, 10000.0, 10001.0])
>>> float((x * x).mean() - x.mean() ** 2), float(((x - x.mean()) ** 2).mean())   # true: 0.1875
(0.0, 0.1875)

float16/bfloat16 inputs are computed in float32 and cast back; float64 stays float64.

Double backward is not supported: backward raises when asked to build a graph (create_graph=True);
float64 gradcheck passes.
`impl="triton"` runs the same math as Triton kernels from `minigan.layers.kernels`; this plain-torch path is
their reference.

>>> x = torch.randn(2, 3, 8, 8)
>>> torch.allclose(instance_norm(x), torch.nn.functional.instance_norm(x), atol=1e-5)
True
>>> y = instance_norm_leaky_relu(x, negative_slope=0.2)
>>> torch.allclose(y, torch.nn.functional.leaky_relu(instance_norm(x), 0.2), atol=1e-5)
True
"""
import functools
import importlib.util
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


# planes of at most this many elements take the backward's dot products sum(dz * x_hat) as a
# product into dx's buffer and a row sum instead of one batched BLAS dot per plane (measured on CPU,
# one thread: the BLAS call costs ~15 us whatever the size, the product and sum 6-12 us up to here)
_SMALL_PLANE = 4096


def _compute_dtype(dtype):
    # half precision has too few bits for sums over a whole plane: accumulate in float32
    return torch.promote_types(dtype, torch.float32)


def _check(name, input, weight, bias, eps):
    if not input.is_floating_point():
        # torch raises NotImplementedError for integer inputs to its norms
        raise NotImplementedError(f"{name}: input must be a floating-point tensor, got {input.dtype}")
    if input.dim() < 3:
        raise ValueError(f"{name}: input must be (N, C, *spatial) with at least 3 dims, "
                         f"got shape {tuple(input.shape)}")
    if math.prod(input.shape[2:]) == 1:
        # as torch: a one-element plane normalizes to exactly 0 whatever the input (a silent bug)
        raise ValueError(f"{name}: expected more than 1 spatial element per plane, "
                         f"got input size {tuple(input.shape)}")
    channels = input.shape[1]
    for arg, tensor in (("weight", weight), ("bias", bias)):
        if tensor is not None and tensor.numel() != channels:
            raise RuntimeError(f"{name}: {arg} should have {channels} elements (one per channel "
                               f"of input), got shape {tuple(tensor.shape)}")
    if eps < 0:
        raise ValueError(f"{name}: eps must be >= 0, got {eps}")


def _per_plane(param, n, c, dtype):
    """A per-channel (C,) parameter as a (N*C, 1) column, one value per plane (row)."""
    return param.to(dtype).reshape(1, c).expand(n, c).reshape(n * c, 1)


def _output_is_x_hat(input, weight, bias, negative_slope):
    # plain instance norm in float32/64: the output is x_hat itself, so it is saved once, as the output
    return (negative_slope is None and weight is None and bias is None
            and input.dtype == _compute_dtype(input.dtype))


@functools.lru_cache(maxsize=16)
def _eps_tensor(eps, dtype, device):
    # eps as a 0-dim tensor, so that var + eps is the `input` of one addcmul (never written to)
    return torch.tensor(eps, dtype=dtype, device=device)


def _forward(input, weight, bias, negative_slope, eps):
    """(y, x_hat, rstd): the output, and for backward x_hat (N*C, M) and rstd (N*C, 1).

    Every plane is one row of an (N*C, M) matrix, so all reductions are row sums. x_hat is an
    empty placeholder when it is the output itself (an op's outputs must not alias each other).
    """
    n, c = input.shape[:2]
    m = math.prod(input.shape[2:])
    dtype = _compute_dtype(input.dtype)
    x = input.reshape(n * c, m)                       # (N*C, M), a copy only when needed
    x = x if x.dtype == dtype else x.to(dtype)
    # two-pass variance: centre (x - sum/M in one pass), then rstd = 1 / sqrt(|x_c|^2 / M + eps)
    # from one fused norm and, on the (N*C, 1) column, one addcmul (eps + |x_c|^2 / M) and rsqrt
    x_hat = torch.sub(x, x.sum(1, keepdim=True), alpha=1 / m)
    norm = torch.linalg.vector_norm(x_hat, dim=1, keepdim=True)
    if torch.compiler.is_compiling():   # traced, the cached eps tensor gains nothing (and dynamo warns)
        rstd = (norm * norm * (1 / m) + eps).rsqrt()
    else:
        rstd = torch.addcmul(_eps_tensor(eps, dtype, x.device), norm, norm, value=1 / m).rsqrt_()
    x_hat.mul_(rstd)
    if weight is None and bias is None:
        z = x_hat
    else:
        z = x_hat if weight is None else torch.mul(x_hat, _per_plane(weight, n, c, dtype))
        z = z if bias is None else z.add(_per_plane(bias, n, c, dtype))   # (beats one addcmul)
    # the activation needs its own buffer (x_hat must survive for backward) unless z is a temporary
    if negative_slope is None:
        y = z
    elif z is x_hat:
        y = torch.relu(z) if negative_slope == 0 else F.leaky_relu(z, negative_slope)
    else:
        y = z.relu_() if negative_slope == 0 else F.leaky_relu(z, negative_slope, inplace=True)
    y = (y if y.dtype == input.dtype else y.to(input.dtype)).reshape(input.shape)
    if _output_is_x_hat(input, weight, bias, negative_slope):
        x_hat = x_hat.new_empty(0)
    return y, x_hat, rstd


def _setup_context(ctx, inputs, output):
    """What backward needs: x_hat, rstd, gamma, and for the activation the sign of z.

    z > 0 exactly when y > 0 (slope >= 0), and without affine parameters z is x_hat: then the
    activation's mask is read off x_hat and the output is not kept.
    """
    input, weight, bias, negative_slope, eps = inputs
    y, x_hat, rstd = output
    affine = weight is not None or bias is not None
    if _output_is_x_hat(input, weight, bias, negative_slope):
        x_hat = y
    ctx.save_for_backward(x_hat, rstd, weight, y if negative_slope is not None and affine else None)
    ctx.negative_slope, ctx.affine = negative_slope, affine
    ctx.bias_dtype = None if bias is None else bias.dtype


def _backward(ctx, grad_out, _grad_x_hat=None, _grad_rstd=None):
    """(dx, dgamma, dbeta, None, None) by the formulas of the module docstring."""
    if torch.is_grad_enabled():
        # create_graph=True: the result would be differentiated again, and this backward's
        # ops on saved tensors would silently drop the second-order terms. Refuse loudly.
        raise RuntimeError("instance_norm: double backward (create_graph=True, e.g. a gradient "
                           "penalty through this layer) is not supported; use "
                           "torch.nn.functional.instance_norm in that network")
    x_hat, rstd, weight, y = ctx.saved_tensors
    rows, m = rstd.shape[0], math.prod(grad_out.shape[2:])
    x_hat = x_hat.reshape(rows, m)                    # it may be the (N, C, *spatial) output
    dz = grad_out.reshape(rows, m)                    # may be grad_out itself: never written
    dz = dz if dz.dtype == x_hat.dtype else dz.to(x_hat.dtype)
    if ctx.negative_slope is not None:
        # dz = where(z > 0, g, slope * g): torch's fused elementwise kernel for exactly this (on
        # CPU, torch.where with its bool mask is ~10x slower); z's sign is x_hat's, or y's
        sign = x_hat if y is None else y.reshape(rows, m)
        sign = sign if sign.dtype == x_hat.dtype else sign.to(x_hat.dtype)
        dz = torch.ops.aten.leaky_relu_backward(dz, sign, ctx.negative_slope, y is not None)
    # the two per-plane sums shared by dbeta, dgamma and dx, each one read of the data. dx needs
    # an (N*C, M) buffer of its own: after the activation dz is our own temporary and becomes dx,
    # else grad_out must survive and dx is a fresh buffer. On small planes dz * x_hat goes into a
    # buffer (dx's when it is fresh) and is row-summed; else a batch of (1 x M) @ (M x 1) BLAS dots
    # (`.mT` of a row, not unsqueeze(2), routes bmm to BLAS).
    sum_dz = dz.sum(1, keepdim=True)                  # (N*C, 1)
    fresh = ctx.negative_slope is None and ctx.needs_input_grad[0]
    dx = torch.empty_like(dz) if fresh else None
    if m <= _SMALL_PLANE:
        sum_dz_xhat = torch.mul(dz, x_hat, out=dx).sum(1, keepdim=True)
    else:
        sum_dz_xhat = (x_hat.unsqueeze(1) @ dz.unsqueeze(1).mT).view(rows, 1)
    grad_input = grad_weight = grad_bias = None
    if ctx.needs_input_grad[0]:
        n, c = grad_out.shape[:2]
        scale = rstd if weight is None else rstd * _per_plane(weight, n, c, x_hat.dtype)
        # dx = scale * (dz - mean(dz) - x_hat * mean(dz * x_hat)), every pass in place on dx:
        # on CPU, dx.addcmul_(x, column) is ~2x faster on small planes than the out-of-place
        # torch.addcmul(dz, x, column, out=dx), and fresh buffers cost page faults.
        # (the 1/M of both means rides in sub's alpha and addcmul_'s value: no extra ops)
        dx = torch.sub(dz, sum_dz, alpha=1 / m, out=dz if dx is None else dx)
        dx.addcmul_(x_hat, sum_dz_xhat, value=-1 / m).mul_(scale)
        grad_input = (dx if dx.dtype == grad_out.dtype else dx.to(grad_out.dtype)).reshape(grad_out.shape)
    if weight is not None and ctx.needs_input_grad[1]:
        grad_weight = sum_dz_xhat.reshape(-1, weight.numel()).sum(0).to(weight.dtype)
        grad_weight = grad_weight.reshape(weight.shape)
    if ctx.bias_dtype is not None and ctx.needs_input_grad[2]:
        grad_bias = sum_dz.reshape(-1, grad_out.shape[1]).sum(0).to(ctx.bias_dtype)
    return grad_input, grad_weight, grad_bias, None, None


class _InstanceNormAct(torch.autograd.Function):
    """y = act(x_hat * gamma + beta), act = leaky_relu(., slope) or identity (slope None): the eager path.

    The same three functions as the custom op below; calling them through a classic autograd.Function
    (ctx in forward; the separate-setup_context form costs ~45 us more a call) costs ~5 us where
    the dispatcher's custom-op machinery costs ~30 us (CPU, measured): on the small planes of a CPU
    training step that is a tenth to a third of the whole op.
    """

    @staticmethod
    def forward(ctx, *inputs):
        output = _forward(*inputs)
        _setup_context(ctx, inputs, output)
        return output[0]    # x_hat and rstd ride in ctx: as outputs each would cost autograd time

    backward = staticmethod(_backward)


# The same op registered with torch (`torch.ops.minigan.instance_norm_act`): torch.compile and
# export see one op with a known output shape (the fake implementation) and a registered backward,
# so a graph calling it has no break there. `torch.library.opcheck` tests the registration.
@torch.library.custom_op("minigan::instance_norm_act", mutates_args=())
def instance_norm_act_op(input: torch.Tensor, weight: Optional[torch.Tensor], bias: Optional[torch.Tensor],
                         negative_slope: Optional[float], eps: float) -> tuple[torch.Tensor, torch.Tensor,
                                                                               torch.Tensor]:
    return _forward(input, weight, bias, negative_slope, eps)


@instance_norm_act_op.register_fake
def _(input, weight, bias, negative_slope, eps):
    # shapes, dtypes and strides as _forward makes them: (N*C, M) rows in x's layout (a view of a
    # channels_last input is column-major), the output that layout reshaped back
    n, c = input.shape[:2]
    x = input.reshape(n * c, -1)
    x_hat = torch.empty_like(x, dtype=_compute_dtype(input.dtype))
    y = torch.empty_like(x_hat, dtype=input.dtype).reshape(input.shape)
    if _output_is_x_hat(input, weight, bias, negative_slope):
        x_hat = x_hat.new_empty(0)
    return y, x_hat, x_hat.new_empty((n * c, 1))


instance_norm_act_op.register_autograd(_backward, setup_context=_setup_context)


def _instance_norm_act(input, weight, bias, negative_slope, eps):
    # also under torch.compile: dynamo traces the Function, forward and hand-written backward, into the
    # graph, where Inductor fuses its passes with the neighbours'; the registered op would be one
    # opaque call (the CPU recipe's compiled step: 0.160 s this way, 0.179 s through the op)
    return _InstanceNormAct.apply(input, weight, bias, negative_slope, eps)


def instance_norm(input, weight=None, bias=None, eps=1e-5):
    """Instance norm of an (N, C, *spatial) tensor, as `F.instance_norm` without running stats.

    eps=1e-5: torch's default (the paper does not fix one).
    """
    _check("instance_norm", input, weight, bias, eps)
    return _instance_norm_act(input, weight, bias, None, eps)


def instance_norm_leaky_relu(input, weight=None, bias=None, negative_slope=0.2, eps=1e-5,
                             impl="auto"):
    """leaky_relu(instance_norm(input, weight, bias, eps), negative_slope), fused; slope 0 = ReLU.

    negative_slope=0.2: the LeakyReLU slope of DCGAN, pix2pix and CycleGAN discriminators.
    impl: "torch" (this module's reference path), "triton" (the kernels in `minigan.layers.kernels`; raises
    RuntimeError saying why when they cannot run on `input`), "auto" (Triton for CUDA tensors when
    triton is installed, else torch).
    """
    if impl not in ("auto", "torch", "triton"):
        raise ValueError(f"instance_norm_leaky_relu: impl must be 'auto', 'torch' or 'triton', "
                         f"got {impl!r}")
    _check("instance_norm_leaky_relu", input, weight, bias, eps)
    if negative_slope < 0:
        raise ValueError(f"instance_norm_leaky_relu: negative_slope must be >= 0 (the backward reads "
                         f"the branch off the output's sign), got {negative_slope}")
    if impl == "auto":
        impl = "torch"
        if input.device.type == "cuda" and importlib.util.find_spec("triton") is not None:
            from . import kernels   # imported late: TRITON_INTERPRET must be settable before
            if kernels.unavailable_reason(input) is None:
                impl = "triton"
    if impl == "triton":
        try:
            from . import kernels
        except ImportError as error:
            raise RuntimeError(f"instance_norm_leaky_relu(impl='triton'): cannot import the Triton "
                               f"kernels ({error}); use impl='torch'") from error
        reason = kernels.unavailable_reason(input)
        if reason is not None:
            raise RuntimeError(f"instance_norm_leaky_relu(impl='triton'): {reason}")
        return kernels.instance_norm_leaky_relu(input, weight, bias, negative_slope, eps)
    return _instance_norm_act(input, weight, bias, float(negative_slope), float(eps))


def instance_norm_naive(input, weight=None, bias=None, eps=1e-5, negative_slope=None):
    """The definition, one plane at a time (slow; for tests and reading). slope None: no activation."""
    n, c = input.shape[:2]
    planes = []
    for i in range(n):
        for j in range(c):
            plane = input[i, j]
            mean = plane.sum() / plane.numel()
            var = ((plane - mean) ** 2).sum() / plane.numel()
            z = (plane - mean) / torch.sqrt(var + eps)
            if weight is not None:
                z = z * weight[j]
            if bias is not None:
                z = z + bias[j]
            if negative_slope is not None:
                z = torch.where(z > 0, z, negative_slope * z)
            planes.append(z)
    return torch.stack(planes).reshape(input.shape)


class InstanceNorm2d(nn.Module):
    """Instance norm over (N, C, H, W) or unbatched (C, H, W); state_dict-compatible with
    `torch.nn.InstanceNorm2d(num_features, eps, affine=...)` (no running statistics)."""

    def __init__(self, num_features, eps=1e-5, affine=False):
        super().__init__()
        self.num_features = num_features
        self.eps = eps          # torch's default
        self.affine = affine
        if affine:
            # start as the identity transform, as torch
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def _batched(self, input):
        if input.dim() not in (3, 4):
            raise ValueError(f"{type(self).__name__}: expected 3D or 4D input "
                             f"(got {input.dim()}D input)")
        if input.dim() == 3:
            input = input.unsqueeze(0)
        if self.affine and input.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: expected input's size at dim=1 to match "
                             f"num_features ({self.num_features}), but got: {input.shape[1]}.")
        return input

    def forward(self, input):
        out = instance_norm(self._batched(input), self.weight, self.bias, self.eps)
        return out.squeeze(0) if input.dim() == 3 else out

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, affine={self.affine}"


class InstanceNormLeakyReLU(InstanceNorm2d):
    """InstanceNorm2d followed by LeakyReLU(negative_slope), fused; same parameters as InstanceNorm2d."""

    def __init__(self, num_features, negative_slope=0.2, eps=1e-5, affine=False, impl="auto"):
        super().__init__(num_features, eps, affine)
        self.negative_slope = negative_slope    # 0.2: DCGAN / pix2pix / CycleGAN
        self.impl = impl

    def forward(self, input):
        out = instance_norm_leaky_relu(self._batched(input), self.weight, self.bias,
                                       self.negative_slope, self.eps, self.impl)
        return out.squeeze(0) if input.dim() == 3 else out

    def extra_repr(self):
        return f"{super().extra_repr()}, negative_slope={self.negative_slope}, impl={self.impl!r}"
