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
needs only x_hat, rstd, gamma, and for the activation the output y (which the next layer keeps
alive anyway); x itself is not saved.

How this file spends its passes over the (N*C, M) data, one plane per row:
forward: mean; x_c = x - mean; var = |x_c|^2 / M as one fused norm; one scaling pass (in place
without gamma/beta, else z = x_c * (rstd * gamma) + beta, keeping x_c: x_hat = x_c * rstd); the
activation. Backward: the activation's mask, sum dz, sum dz * x_hat (one BLAS dot per plane, or on
planes of at most _SMALL_PLANE elements a product into dx's buffer and a row sum), then
dx = scale * (dz - mean(dz) - x_hat * mean(dz * x_hat)) as three in-place passes over one buffer.

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
import importlib.util
import math

import torch
import torch.nn.functional as F
from torch import nn


# planes of at most this many elements take the backward's dot products as one elementwise
# product and a row sum instead of one BLAS call per plane (measured on CPU, one thread: the whole
# forward+backward 15-20% faster at 128-256 elements, 5% at 512, even at 1024)
_SMALL_PLANE = 512


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


class _InstanceNormAct(torch.autograd.Function):
    """y = act(x_hat * gamma + beta), act = leaky_relu(., slope) or identity (slope None).

    Every plane is one row of an (N*C, M) matrix, so all reductions are row sums.
    """

    @staticmethod
    def forward(ctx, input, weight, bias, negative_slope, eps):
        n, c = input.shape[:2]
        m = math.prod(input.shape[2:])
        dtype = _compute_dtype(input.dtype)
        x = input.reshape(n * c, m).to(dtype)             # (N*C, M), a copy only when needed
        mean = x.mean(1, keepdim=True)                    # (N*C, 1)
        x_c = x - mean                                    # two-pass variance: centre, then square
        # rstd = 1 / sqrt(var + eps) with var = |x_c|^2 / M: a fused norm, then in place on (N*C, 1)
        rstd = torch.linalg.vector_norm(x_c, dim=1, keepdim=True).square_().div_(m).add_(eps).rsqrt_()
        # x_hat = x_c * rstd. Saved for backward as `x_saved * x_scale`: with gamma/beta, rstd is
        # folded into the one affine pass (z = x_c * (rstd * gamma) + beta) and x_c is kept;
        # without, x_c is normalized in place and that is both the output z and the saved tensor.
        if weight is None and bias is None:
            z = x_saved = x_c.mul_(rstd)
            x_scale = None
        else:
            gamma = rstd if weight is None else rstd * _per_plane(weight, n, c, dtype)
            z = torch.mul(x_c, gamma)
            if bias is not None:   # (mul then add_ beats one addcmul with broadcast beta on CPU)
                z.add_(_per_plane(bias, n, c, dtype))
            x_saved, x_scale = x_c, rstd
        if negative_slope is None:
            y = z
        else:   # in place when z is a temporary; x_saved must survive for backward
            y = F.leaky_relu(z, negative_slope, inplace=z is not x_saved)
        out = y.to(input.dtype).reshape(input.shape)
        ctx.negative_slope = negative_slope
        ctx.bias_dtype = None if bias is None else bias.dtype
        ctx.save_for_backward(x_saved, x_scale, rstd, weight,
                              out if negative_slope is not None else None)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        if torch.is_grad_enabled():
            # create_graph=True: the result would be differentiated again, and this backward's
            # ops on saved tensors would silently drop the second-order terms. Refuse loudly.
            raise RuntimeError("instance_norm: double backward (create_graph=True, e.g. a gradient "
                               "penalty through this layer) is not supported; use "
                               "torch.nn.functional.instance_norm in that network")
        x_saved, x_scale, rstd, weight, out = ctx.saved_tensors    # x_hat = x_saved * x_scale
        rows, m = x_saved.shape
        dz = grad_out.reshape(rows, m).to(x_saved.dtype)   # may be grad_out itself: never written
        if ctx.negative_slope is not None:
            # dz = where(y > 0, g, slope * g): torch's fused elementwise kernel for exactly this
            # (on CPU, torch.where with its bool mask is ~10x slower)
            y = out.reshape(rows, m).to(x_saved.dtype)
            dz = torch.ops.aten.leaky_relu_backward(dz, y, ctx.negative_slope, True)
        # the two per-plane sums shared by dbeta, dgamma and dx, each one read of the data:
        sum_dz = dz.sum(1, keepdim=True)                  # (N*C, 1)
        # dx needs an (N*C, M) buffer of its own: after the activation dz is our own temporary and
        # becomes dx, else grad_out must survive and dx is a fresh buffer. On small planes that
        # fresh buffer first holds dz * x_saved for its row sums (a BLAS call per plane costs more
        # than the product it computes); else sum(dz * x_saved) is a batch of (1 x M) @ (M x 1)
        # BLAS dots, no temporary. (`.mT` of a row, not unsqueeze(2), routes bmm to BLAS.)
        dx = None
        if ctx.negative_slope is None and ctx.needs_input_grad[0] and m <= _SMALL_PLANE:
            dx = torch.mul(dz, x_saved)
            sum_dz_xhat = dx.sum(1, keepdim=True)
        else:
            sum_dz_xhat = (x_saved.unsqueeze(1) @ dz.unsqueeze(1).mT).view(rows, 1)
        if x_scale is not None:
            sum_dz_xhat.mul_(x_scale)
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            n, c = grad_out.shape[:2]
            scale = rstd if weight is None else rstd * _per_plane(weight, n, c, x_saved.dtype)
            # dx = scale * (dz - mean(dz) - x_hat * mean(dz * x_hat)), every pass in place on dx:
            # on CPU, dx.addcmul_(x, column) is ~2x faster on small planes than the out-of-place
            # torch.addcmul(dz, x, column, out=dx), and fresh buffers cost page faults.
            # (the 1/M of both means rides in sub's alpha and addcmul_'s value: no extra ops)
            if ctx.negative_slope is not None:
                dx = dz.sub_(sum_dz, alpha=1 / m)
            else:
                dx = torch.sub(dz, sum_dz, alpha=1 / m, out=dx)
            # x_hat * sum(dz * x_hat) = x_saved * (x_scale * sum(dz * x_hat))
            coef = sum_dz_xhat if x_scale is None else sum_dz_xhat * x_scale
            dx.addcmul_(x_saved, coef, value=-1 / m).mul_(scale)
            grad_input = dx.to(grad_out.dtype).reshape(grad_out.shape)
        if weight is not None and ctx.needs_input_grad[1]:
            grad_weight = sum_dz_xhat.reshape(-1, weight.numel()).sum(0).to(weight.dtype)
            grad_weight = grad_weight.reshape(weight.shape)
        if ctx.bias_dtype is not None and ctx.needs_input_grad[2]:
            grad_bias = sum_dz.reshape(-1, grad_out.shape[1]).sum(0).to(ctx.bias_dtype)
        return grad_input, grad_weight, grad_bias, None, None


def instance_norm(input, weight=None, bias=None, eps=1e-5):
    """Instance norm of an (N, C, *spatial) tensor, as `F.instance_norm` without running stats.

    eps=1e-5: torch's default (the paper does not fix one).
    """
    _check("instance_norm", input, weight, bias, eps)
    return _InstanceNormAct.apply(input, weight, bias, None, eps)


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
    return _InstanceNormAct.apply(input, weight, bias, float(negative_slope), eps)


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
