"""Transposed convolution ("deconvolution", "fractionally-strided convolution"), three ways.

The definition (the course's picture). Every input pixel x[i, j] multiplies the whole kernel and the
product is *added* into the output window that starts at (i*stride, j*stride); overlapping windows
sum. With channels (weight shape (C_in, C_out/groups, kH, kW), as in torch):

    full[n, o, i*s + ky*d, j*s + kx*d] += x[n, c, i, j] * w[c, o, ky, kx]

then `padding` cuts p rows/columns off every side of `full` and `output_padding` adds rows/columns
at the bottom/right. Stride spreads the windows apart, dilation spreads the kernel taps. Hence

    H_out = (H_in - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1

(output_padding exists because a stride-s convolution maps s different sizes to the same H_in: it
picks which one to invert). The course's 2x2 examples, stride 1 and stride 2:

>>> x = torch.tensor([[[[0., 1.], [2., 3.]]]])
>>> k = torch.tensor([[[[0., 1.], [2., 3.]]]])
>>> conv_transpose2d(x, k)[0, 0]
tensor([[ 0.,  0.,  1.],
        [ 0.,  4.,  6.],
        [ 4., 12.,  9.]])
>>> conv_transpose2d(x, k, stride=2)[0, 0]
tensor([[0., 0., 0., 1.],
        [0., 0., 2., 3.],
        [0., 2., 0., 3.],
        [4., 6., 6., 9.]])

The DCGAN slides' example (stride 1): each input pixel stamps the kernel, scaled by the pixel, onto
the output at its own offset, and where stamps overlap they add up.

>>> x = torch.tensor([[[[3., 1.], [1., 5.]]]])
>>> k = torch.tensor([[[[2., 4.], [0., 1.]]]])
>>> conv_transpose2d(x, k)[0, 0]
tensor([[ 6., 14.,  4.],
        [ 2., 17., 21.],
        [ 0.,  1.,  5.]])
>>> 4 * 3 + 2 * 1                    # out[0, 1]: k[0, 1] * x[0, 0] + k[0, 0] * x[0, 1] (the slide's 12 + 2)
14
>>> 1 * 3 + 0 * 1 + 4 * 1 + 2 * 5    # out[1, 1], where all four stamps overlap: k[1 - i, 1 - j] * x[i, j]
17

The matrix view. A convolution is a (sparse) matrix C acting on the flattened image: y = C x. The
transposed convolution multiplies by C^T: x' = C^T y, which is why it maps a small image to a big
one and why it is the gradient of the convolution with respect to its input. C^T factors into a
dense product and a scatter: columns = W^T @ x (one kernel-sized column per input pixel), then
col2im (`F.fold`) adds each column into its window.

The fast path (what the models use) is one of two factorizations of C^T, both exact:

Sub-pixel (batch > 1). For stride s, output row y' = y + padding receives only the
taps ky with ky*d = y' (mod s): the output splits into s*s interleaved "phase" images, and each
phase is an ordinary stride-1 convolution of the *un-dilated* input with a sub-kernel made of that
phase's taps (the sub-pixel convolution of Shi et al. 2016). All s*s sub-kernels are stacked along the
output channels of one `F.conv2d` (one big matrix product beats s*s small ones), whose s*s output
images are interleaved into the result. There is no col2im scatter, and far less is spent on zeros
than by the textbook "insert s-1 zeros between pixels, then convolve" (s*s times the work): only
the zero taps that pad each sub-kernel to the common window (k=3, s=2: 16 taps for 9; none when
s divides k) and at most one cropped row and column of the phase grid.

Stamps (batch 1). The definition above, vectorized: one matrix product W^T @ x gives every input
pixel times every kernel tap at once (the "stamps"), and each tap's stamps are added, shifted, into
the phase of the output it lands on (tap ky lands on phase (ky*d - padding) mod s), then the phases
are interleaved. It multiplies no zero taps and uses the weights as they are, where the sub-pixel
form re-lays them into sub-kernels at every call (a cost that grows with the weights, not the image:
a U-Net's 1024 -> 512 layers on 2x2 inputs spent ~50 ms of ~60 there). Its price is the stamps
tensor, k*k/(s*s) times the output, added up tap by tap: at batch 1 it is small, at DCGAN's batch
128 it is ~130 MB and its memory traffic loses to the sub-pixel conv. Measured on CPU, one thread, vs
`F.conv_transpose2d`: CycleGAN's 256 -> 128 layer at 64x64, 24 vs 32 ms; pix2pix's 1024 -> 512 at
8x8, 22 vs 41 ms (sub-pixel: 108).

The same decomposition explains checkerboard artifacts (Odena et al. 2016): with k=3, s=2 one phase
sums 2x2 taps, its neighbour 2x1, another only 1 -- neighbouring output pixels are made by
different sub-kernels with different numbers of taps, so unless training balances them a
periodic pattern of period s appears. k divisible by s (k=4, s=2) gives every phase the same count.

Backward: the transposed convolution is the adjoint of `conv2d(., w, stride, padding, dilation)`,
so its input gradient is exactly that ordinary convolution of the output gradient, and its weight
gradient is that convolution's weight gradient with the roles of input and output gradient swapped.
"""
import functools
import math

import torch
import torch.nn.functional as F
from torch import nn


def _pair(value, name):
    """An int or a pair of ints -> a pair (torch's error when a sequence has the wrong length)."""
    if isinstance(value, int):
        return (value, value)
    value = tuple(value)
    if len(value) != 2:
        raise RuntimeError(f"expected {name} to be a single integer value or a list of 2 values to "
                           f"match the convolution dimensions, but got {name}={list(value)}")
    return value


def conv_transpose_size(size, kernel, stride=1, padding=0, output_padding=0, dilation=1):
    """H_out = (H_in - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1.

    >>> conv_transpose_size(4, kernel=4, stride=2, padding=1)   # DCGAN: doubles the size
    8
    """
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def _output_size(x, weight, s, p, op, d):
    """(H_out, W_out) of a 4-D input x and weight, with paired arguments."""
    return tuple(conv_transpose_size(x.shape[2 + i], weight.shape[2 + i], s[i], p[i], op[i], d[i])
                 for i in range(2))


def _check(input, weight, bias, stride, padding, output_padding, groups, dilation):
    """Validate like torch; return 4-D input, whether it was unbatched, and pairs s, p, op, d."""
    if input.dim() not in (3, 4):
        raise RuntimeError("Expected 3D (unbatched) or 4D (batched) input to conv_transpose2d, but "
                           f"got input of size: {list(input.shape)}")
    if weight.dim() != 4:
        raise RuntimeError(f"weight must be 4-D (in_channels, out_channels/groups, kH, kW), but got "
                           f"weight of size {list(weight.shape)}")
    s, p = _pair(stride, "stride"), _pair(padding, "padding")
    op, d = _pair(output_padding, "output_padding"), _pair(dilation, "dilation")
    if min(s) <= 0:
        raise RuntimeError(f"non-positive stride is not supported (stride={s})")
    if min(p) < 0:
        raise RuntimeError(f"negative padding is not supported (padding={p})")
    if min(d) <= 0:
        raise RuntimeError(f"dilation should be greater than zero, but got dilation={d}")
    if min(op) < 0:
        raise RuntimeError(f"negative output_padding is not supported (output_padding={op})")
    if any(o >= max(st, di) for o, st, di in zip(op, s, d)):
        raise RuntimeError(f"output padding must be smaller than either stride or dilation, but got "
                           f"output_padding={op}, stride={s}, dilation={d}")
    if groups <= 0:
        raise RuntimeError(f"non-positive groups is not supported (groups={groups})")
    if weight.shape[0] % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at "
                           f"dimension 0, but got weight of size {list(weight.shape)}")
    unbatched = input.dim() == 3
    x = input.unsqueeze(0) if unbatched else input
    if x.shape[1] != weight.shape[0]:
        raise RuntimeError(f"weight of size {list(weight.shape)} expects input to have "
                           f"{weight.shape[0]} channels, but got {x.shape[1]} channels")
    out_channels = weight.shape[1] * groups
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise RuntimeError(f"expected bias to be 1-dimensional with {out_channels} elements, but got "
                           f"bias of size {list(bias.shape)}")
    h_out, w_out = _output_size(x, weight, s, p, op, d)
    if h_out <= 0 or w_out <= 0:
        raise RuntimeError(f"input size {tuple(x.shape[2:])} gives output size ({h_out}, {w_out}): "
                           "output size is too small (reduce padding)")
    return x, unbatched, s, p, op, d


def _crop(full, padding, output_padding):
    """Cut `padding` off every side of the full picture and add `output_padding` at bottom/right."""
    (ph, pw), (oh, ow) = padding, output_padding
    return F.pad(full, (-pw, ow - pw, -ph, oh - ph))  # negative padding crops


def _finish(out, bias, unbatched):
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out.squeeze(0) if unbatched else out


# ---------------------------------------------------------------------------------------------------
# 1. The definition: every input pixel times the kernel, added into its output window. The oracle.

def conv_transpose2d_naive(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                           dilation=1):
    """Loops over input pixels (tiny sizes only). Same arguments as `conv_transpose2d`.

    >>> x = torch.tensor([[[[0., 1.], [2., 3.]]]])
    >>> conv_transpose2d_naive(x, x, stride=2)[0, 0, 1]
    tensor([0., 0., 2., 3.])
    """
    x, unbatched, s, p, op, d = _check(input, weight, bias, stride, padding, output_padding, groups,
                                       dilation)
    n, c_in, h, w = x.shape
    c_in_g, c_out_g, kh, kw = weight.shape[0] // groups, *weight.shape[1:]
    # the window of one input pixel spans d*(k-1)+1 output rows; windows start s apart
    span_h, span_w = d[0] * (kh - 1) + 1, d[1] * (kw - 1) + 1
    full = x.new_zeros(n, c_out_g * groups, (h - 1) * s[0] + span_h, (w - 1) * s[1] + span_w)
    for g in range(groups):
        ins, outs = slice(g * c_in_g, (g + 1) * c_in_g), slice(g * c_out_g, (g + 1) * c_out_g)
        for i in range(h):
            for j in range(w):
                patch = torch.einsum("nc,cokl->nokl", x[:, ins, i, j], weight[ins])  # pixel * kernel
                top, left = i * s[0], j * s[1]
                full[:, outs, top:top + span_h:d[0], left:left + span_w:d[1]] += patch
    return _finish(_crop(full, p, op), bias, unbatched)


# ---------------------------------------------------------------------------------------------------
# 2. The matrix view: C^T x = col2im(W^T @ x).

def conv_transpose2d_matrix(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                            groups=1, dilation=1):
    """columns = W^T @ x, then `F.fold` (col2im) sums each column into its window.

    >>> x = torch.tensor([[[[0., 1.], [2., 3.]]]])
    >>> conv_transpose2d_matrix(x, x)[0, 0, 2]
    tensor([ 4., 12.,  9.])
    """
    x, unbatched, s, p, op, d = _check(input, weight, bias, stride, padding, output_padding, groups,
                                       dilation)
    n, c_in, h, w = x.shape
    c_in_g, c_out_g, kh, kw = weight.shape[0] // groups, *weight.shape[1:]
    w_g = weight.reshape(groups, c_in_g, c_out_g * kh * kw)
    x_g = x.reshape(n, groups, c_in_g, h * w)
    columns = w_g.transpose(1, 2) @ x_g                    # (n, groups, c_out_g*kh*kw, h*w)
    full_size = [conv_transpose_size(size, k, st, 0, 0, di)   # before padding is cut off
                 for size, k, st, di in zip((h, w), (kh, kw), s, d)]
    full = F.fold(columns.reshape(n, -1, h * w), full_size, (kh, kw), dilation=d, stride=s)
    return _finish(_crop(full, p, op), bias, unbatched)


# ---------------------------------------------------------------------------------------------------
# 3. The fast path: s*s sub-kernels in one ordinary convolution, phases interleaved into the output;
#    or every pixel's stamps from one matrix product, added into their phases.

def _phase_taps(k, s, d, p, size_in, size_out):
    """One spatial dimension of the sub-pixel decomposition.

    Output row y lies at y' = y + p = q*s + r on the uncropped picture. Phase r receives the taps ky
    with ky*d = r (mod s), each from input row q - m, m = (ky*d - r) / s. All phases share a window
    of input rows m = 0..M, every `step`-th row (step = d/s when s divides d, as for s=1: the
    conv2d dilation; else 1). `taps[r][t]` is the kernel tap at window position t (conv2d
    correlates, so t = (M - m) / step), or k -- an extra zero tap -- where phase r has none.
    Returns taps, step, the conv2d padding, and where output row 0 lies on the phase grid.

    >>> _phase_taps(k=4, s=2, d=1, p=1, size_in=4, size_out=8)   # DCGAN: two 2-tap phases
    ([[2, 0], [3, 1]], 1, 1, 1)
    >>> _phase_taps(k=3, s=2, d=1, p=1, size_in=4, size_out=8)   # 2 taps, then 1 (+ a zero tap)
    ([[2, 0], [3, 1]], 1, 1, 1)
    >>> _phase_taps(k=3, s=1, d=2, p=0, size_in=4, size_out=8)   # s=1: the flipped kernel, dilated
    ([[2, 1, 0]], 2, 4, 0)
    """
    m_max, step = (k - 1) * d // s, (d // s if d % s == 0 else 1)
    taps = [[k] * (m_max // step + 1) for _ in range(s)]
    for ky in range(k):
        taps[ky * d % s][(m_max - ky * d // s) // step] = ky
    q_first, q_last = p // s, (p + size_out - 1) // s  # the rows q that the output needs
    pad = max(m_max - q_first, q_last - (size_in - 1), 0)
    # conv2d row i holds q = i + M - pad, i.e. phase-grid row i*s + r holds y' = (i + M - pad)*s + r
    return taps, step, pad, p - (m_max - pad) * s


def _tap_selection(taps, k, like):
    """select[ky, r, t] = 1 where kernel tap ky sits at window position t of phase r (k: no tap)."""
    select = torch.zeros(k + 1, len(taps), len(taps[0]), dtype=like.dtype, device=like.device)
    for r, row in enumerate(taps):
        select[row, r, range(len(row))] = 1
    return select[:k]


def _selection(taps_h, taps_w, kh, kw, dtype, device):
    """The (kH*kW, s_h*s_w*t_h*t_w) matrix taking a flattened kernel to its stacked sub-kernels."""
    like = torch.empty(0, dtype=dtype, device=device)
    select_h, select_w = (_tap_selection(taps, k, like) for taps, k in ((taps_h, kh), (taps_w, kw)))
    return torch.einsum("yrt,xqu->yxrqtu", select_h, select_w).reshape(kh * kw, -1)


@functools.lru_cache(maxsize=64)
def _cached_selection(taps_h, taps_w, kh, kw, dtype, device):
    # it depends on the layer's shape and arguments only, not on the weights: built once per layer
    # (on CPU at batch 1 its few small ops were a tenth of a 16x16 layer's forward). Never written
    # to, and only read inside the autograd Function's forward, which records no graph.
    return _selection(taps_h, taps_w, kh, kw, dtype, device)


def _frozen(taps):
    return tuple(map(tuple, taps))


def _memory_format(x):
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return torch.channels_last if channels_last else torch.contiguous_format


def _subpixel_forward(x, weight, bias, s, p, op, groups, d):
    """The forward of the fast path on 4-D input (arguments already checked and paired)."""
    n, c_in, h, w = x.shape
    c_in_g, c_out_g, kh, kw = weight.shape[0] // groups, *weight.shape[1:]
    c_out = c_out_g * groups
    h_out, w_out = _output_size(x, weight, s, p, op, d)
    taps_h, step_h, pad_h, top = _phase_taps(kh, s[0], d[0], p[0], h, h_out)
    taps_w, step_w, pad_w, left = _phase_taps(kw, s[1], d[1], p[1], w, w_out)
    # gather the sub-kernels with a 0/1 tap-selection matrix (a matmul: far faster than indexing)
    t_h, t_w = len(taps_h[0]), len(taps_w[0])
    selection = _selection if torch.compiler.is_compiling() else _cached_selection
    select = selection(_frozen(taps_h), _frozen(taps_w), kh, kw, weight.dtype, weight.device)
    sub = weight.reshape(c_in * c_out_g, kh * kw) @ select   # (c_in*c_out_g, s_h*s_w*t_h*t_w)
    # as a conv2d weight: output channels (group, o, r_h, r_w), input channels c_in_g
    sub = (sub.reshape(groups, c_in_g, c_out_g, s[0], s[1], t_h, t_w).permute(0, 2, 3, 4, 1, 5, 6)
              .reshape(c_out * s[0] * s[1], c_in_g, t_h, t_w))
    bias = None if bias is None else bias.repeat_interleave(s[0] * s[1])
    phases = F.conv2d(x, sub, bias, padding=(pad_h, pad_w), dilation=(step_h, step_w),
                      groups=groups)
    phases = phases.unflatten(1, (c_out, s[0], s[1]))        # (n, c_out, s_h, s_w, rows, cols)
    # interleave: phase (r_h, r_w) fills every s-th output pixel, starting where its grid row starts
    out = torch.empty(n, c_out, h_out, w_out, dtype=phases.dtype, device=x.device,
                      memory_format=_memory_format(x))
    for r_h in range(s[0]):
        y0 = (r_h - top) % s[0]
        i0, rows = (y0 + top) // s[0], len(range(y0, h_out, s[0]))
        for r_w in range(s[1]):
            x0 = (r_w - left) % s[1]
            j0, cols = (x0 + left) // s[1], len(range(x0, w_out, s[1]))
            out[:, :, y0::s[0], x0::s[1]] = phases[:, :, r_h, r_w, i0:i0 + rows, j0:j0 + cols]
    return out


def _stamp_plan(k, s, d, p, size_in, size_out):
    """Where each kernel tap's stamps land, along one spatial dimension.

    Tap ky sends input row i to output row y = i*s + ky*d - p, which lies in phase r = y mod s at
    phase row a = (y - r) / s = i - off. For each tap: (ky, r, first a, last a + 1, off), the rows
    of the phase it fills (the input rows it reads are a + off); a tap that misses the output is
    left out. Phases have ceil(size_out / s) rows (the last may be partly cropped).

    >>> _stamp_plan(k=3, s=2, d=1, p=1, size_in=4, size_out=8)   # CycleGAN's up-conv: taps 0, 2 -> phase 1
    [(0, 1, 0, 3, 1), (1, 0, 0, 4, 0), (2, 1, 0, 4, 0)]
    """
    rows = -(-size_out // s)
    plan = []
    for ky in range(k):
        r = (ky * d - p) % s
        off = (r + p - ky * d) // s          # exact: ky*d - p - r is a multiple of s
        first, last = max(0, -off), min(rows, size_in - off)
        if first < last:
            plan.append((ky, r, first, last, off))
    return plan


def _tap_slices(x, weight, s, p, d, h_out, w_out):
    """(phases index, stamps index) for every kernel tap (ky, kx) whose stamps land in the output:
    the forward adds stamps[stamps index] into phases[phases index], the backward reads it back.

    Phases are (N, C_out, s_h, s_w, rows, cols), stamps (N, C_out, kH, kW, H, W), as `_stamp_forward`
    lays them out.
    """
    (h, w), (kh, kw), every = x.shape[2:], weight.shape[2:], slice(None)
    for ky, r_h, a0, a1, off_h in _stamp_plan(kh, s[0], d[0], p[0], h, h_out):
        for kx, r_w, b0, b1, off_w in _stamp_plan(kw, s[1], d[1], p[1], w, w_out):
            yield ((every, every, r_h, r_w, slice(a0, a1), slice(b0, b1)),
                   (every, every, ky, kx, slice(a0 + off_h, a1 + off_h), slice(b0 + off_w, b1 + off_w)))


def _stamp_forward(x, weight, bias, s, p, op, groups, d):
    """The forward of the stamp form on 4-D input (arguments already checked and paired)."""
    n, c_in, h, w = x.shape
    c_in_g, c_out_g, kh, kw = weight.shape[0] // groups, *weight.shape[1:]
    c_out = c_out_g * groups
    h_out, w_out = _output_size(x, weight, s, p, op, d)
    # stamps[n, (g, o), ky, kx, i, j] = sum_c w[(g, c), o, ky, kx] * x[n, (g, c), i, j]: one matrix
    # product per group, with the weights as they are stored (the transpose is a view)
    stamps = (weight.reshape(groups, c_in_g, c_out_g * kh * kw).transpose(1, 2)
              @ x.reshape(n, groups, c_in_g, h * w)).view(n, c_out, kh, kw, h, w)
    rows, cols = -(-h_out // s[0]), -(-w_out // s[1])
    shape = (n, c_out, s[0], s[1], rows, cols)
    phases = (stamps.new_zeros(shape) if bias is None else
              bias.to(stamps.dtype).view(1, c_out, 1, 1, 1, 1).expand(shape).contiguous())
    for phase, stamp in _tap_slices(x, weight, s, p, d, h_out, w_out):
        phases[phase].add_(stamps[stamp])
    # interleave: output pixel (a*s_h + r_h, b*s_w + r_w) is phase (r_h, r_w)'s pixel (a, b)
    out = torch.empty(n, c_out, h_out, w_out, dtype=stamps.dtype, device=x.device,
                      memory_format=_memory_format(x))
    if (rows * s[0], cols * s[1]) == (h_out, w_out):
        out.view(n, c_out, rows, s[0], cols, s[1]).copy_(phases.permute(0, 1, 4, 2, 5, 3))
    else:
        for r_h in range(s[0]):
            for r_w in range(s[1]):
                part = out[:, :, r_h::s[0], r_w::s[1]]
                part.copy_(phases[:, :, r_h, r_w, :part.shape[2], :part.shape[3]])
    return out


def _stamp_backward(grad_out, x, weight, s, p, groups, d, needs_input_grad):
    """(grad x, grad weight) of the stamp form: its adjoint, step by step in reverse.

    The forward added each tap's stamps into a phase; backward reads them back out: the gradient
    of the stamps is grad_out's phases, gathered tap by tap (zero where a stamp fell outside the
    output). Then both gradients of the matrix product stamps = W^T @ x are matrix products too:
    grad x = W @ grad_stamps and grad W = x @ grad_stamps^T (summed over the batch).
    """
    n, c_in, h, w = x.shape
    c_in_g, c_out_g, kh, kw = weight.shape[0] // groups, *weight.shape[1:]
    c_out, (h_out, w_out) = c_out_g * groups, grad_out.shape[2:]
    rows, cols = -(-h_out // s[0]), -(-w_out // s[1])
    # grad_out's phases as a view (n, c_out, s_h, s_w, rows, cols); zero-padded when cropped
    cropped = (rows * s[0], cols * s[1]) != (h_out, w_out)
    padded = F.pad(grad_out, (0, cols * s[1] - w_out, 0, rows * s[0] - h_out)) if cropped else grad_out
    phases = padded.view(n, c_out, rows, s[0], cols, s[1]).permute(0, 1, 3, 5, 2, 4)
    grad_stamps = grad_out.new_zeros(n, c_out, kh, kw, h, w)
    for phase, stamp in _tap_slices(x, weight, s, p, d, h_out, w_out):
        grad_stamps[stamp] = phases[phase]
    grad_stamps = grad_stamps.view(n, groups, c_out_g * kh * kw, h * w)
    weight_g = weight.reshape(groups, c_in_g, c_out_g * kh * kw)
    grad_x = grad_weight = None
    if needs_input_grad[0]:
        grad_x = (weight_g @ grad_stamps).view(n, c_in, h, w)
    if needs_input_grad[1]:
        grad_weight = (x.reshape(n, groups, c_in_g, h * w) @ grad_stamps.transpose(2, 3)).sum(0)
        grad_weight = grad_weight.view(weight.shape)
    return grad_x, grad_weight


class _ConvTranspose2dFunction(torch.autograd.Function):
    """Forward by stamps or sub-pixel convolution; backward through the adjoint convolution, or for
    stamps on layers with few pixels for their channels, by the stamps' adjoint."""

    @staticmethod
    def forward(ctx, x, weight, bias, s, p, op, groups, d, form):
        ctx.save_for_backward(x, weight)
        ctx.conv = (s, p, d, groups)
        ctx.form = form
        forward = _stamp_forward if form == "stamps" else _subpixel_forward
        return forward(x, weight, bias, s, p, op, groups, d)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        s, p, d, groups = ctx.conv
        grad_bias = grad_out.sum((0, 2, 3)) if ctx.needs_input_grad[2] else None
        if ctx.form == "stamps" and 4 * x.shape[1] // groups >= x.shape[2] * x.shape[3]:
            # the stamps' adjoint where the weights outweigh the image (input channels >= pixels / 4:
            # a U-Net's inner layers, 1.5-3x faster there); on big images with few channels its
            # k*k/(s*s)-times-the-output buffer costs more than the two convolutions below
            grad_x, grad_weight = _stamp_backward(grad_out, x, weight, s, p, groups, d, ctx.needs_input_grad)
            return grad_x, grad_weight, grad_bias, None, None, None, None, None, None
        grad_x = grad_weight = None
        # conv2d(grad_out) has one row more than x per unit of output_padding // stride (possible
        # only when dilation > stride): that row is no input pixel, so it is dropped / padded.
        rows, cols = ((grad_out.shape[2 + i] + 2 * p[i] - d[i] * (weight.shape[2 + i] - 1) - 1)
                      // s[i] + 1 for i in range(2))
        if ctx.needs_input_grad[0]:
            # d out / d x is the adjoint of the transposed convolution: the ordinary convolution
            grad_x = F.conv2d(grad_out, weight, None, s, p, d, groups)[:, :, :x.shape[2], :x.shape[3]]
        if ctx.needs_input_grad[1]:
            # out = C^T x with C = conv2d(., weight): d<g, C^T x>/d weight = d<C g, x>/d weight, the
            # weight gradient of the convolution of grad_out whose upstream gradient is x
            x_full = x if (rows, cols) == x.shape[2:] else F.pad(x, (0, cols - x.shape[3],
                                                                  0, rows - x.shape[2]))
            grad_weight = torch.nn.grad.conv2d_weight(grad_out, weight.shape, x_full, s, p, d, groups)
        return grad_x, grad_weight, grad_bias, None, None, None, None, None, None


def fast_form(batch_size):
    """The fast form "auto" picks: stamps at batch 1, where they are faster, else sub-pixel."""
    return "stamps" if batch_size == 1 else "subpixel"


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, form="auto"):
    """Transposed convolution with the signature and semantics of `F.conv_transpose2d`.

    input (N, C_in, H, W) or unbatched (C_in, H, W); weight (C_in, C_out/groups, kH, kW); bias
    (C_out,) or None; stride, padding, output_padding, dilation: int or pair. form: which fast
    factorization runs the forward (module docstring): "stamps", "subpixel", or "auto" (`fast_form`).
    """
    if form not in ("auto", "stamps", "subpixel"):
        raise ValueError(f"conv_transpose2d: form must be 'auto', 'stamps' or 'subpixel', got {form!r}")
    x, unbatched, s, p, op, d = _check(input, weight, bias, stride, padding, output_padding, groups,
                                       dilation)
    if form == "auto":
        form = fast_form(x.shape[0])
    out = _ConvTranspose2dFunction.apply(x, weight, bias, s, p, op, groups, d, form)
    return out.squeeze(0) if unbatched else out


class ConvTranspose2d(nn.Module):
    """`torch.nn.ConvTranspose2d` on minigan's `conv_transpose2d`: same parameters, init, state_dict.

    >>> up = ConvTranspose2d(512, 256, 4, stride=2, padding=1, bias=False)   # a DCGAN block
    >>> up
    ConvTranspose2d(512, 256, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)
    >>> up(torch.zeros(1, 512, 4, 4)).shape
    torch.Size([1, 256, 8, 8])
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 groups=1, bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        if groups <= 0:
            raise ValueError(f"groups must be a positive integer, got {groups}")
        if in_channels % groups:
            raise ValueError(f"in_channels must be divisible by groups ({in_channels} % {groups})")
        if out_channels % groups:
            raise ValueError(f"out_channels must be divisible by groups ({out_channels} % {groups})")
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for ConvTranspose2d, got '
                             f'padding_mode={padding_mode!r}')
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = _pair(kernel_size, "kernel_size"), _pair(stride, "stride")
        self.padding, self.dilation = _pair(padding, "padding"), _pair(dilation, "dilation")
        self.output_padding, self.padding_mode = _pair(output_padding, "output_padding"), padding_mode
        factory = dict(device=device, dtype=dtype)
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels // groups, *self.kernel_size,
                                               **factory))
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        # torch's default init, draw for draw: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)), where
        # torch takes fan_in = weight.size(1) * kH * kW (out_channels/groups for a transposed conv)
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * self.weight.shape[2] * self.weight.shape[3]
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            nn.init.uniform_(self.bias, -bound, bound)

    def _output_padding(self, input, output_size):
        """The output_padding that makes the output `output_size` ((H, W), or with N, C in front)."""
        if output_size is None:
            return self.output_padding
        output_size = tuple(output_size)
        if len(output_size) == input.dim():  # (N, C, H, W) or (C, H, W) given: keep (H, W)
            output_size = output_size[-2:]
        if len(output_size) != 2:
            raise ValueError(f"output_size must have 2 or {input.dim()} elements, got {output_size}")
        smallest = [conv_transpose_size(input.shape[-2 + i], self.kernel_size[i], self.stride[i],
                                        self.padding[i], 0, self.dilation[i]) for i in range(2)]
        largest = [size + st - 1 for size, st in zip(smallest, self.stride)]
        if not all(lo <= size <= hi for lo, size, hi in zip(smallest, output_size, largest)):
            raise ValueError(f"requested an output size of {output_size}, but valid sizes range from "
                             f"{smallest} to {largest} (for an input of {tuple(input.shape[-2:])})")
        return tuple(size - lo for size, lo in zip(output_size, smallest))

    def forward(self, input, output_size=None):
        output_padding = self._output_padding(input, output_size)
        return conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                output_padding, self.groups, self.dilation)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        defaults = dict(padding=(0, 0), dilation=(1, 1), output_padding=(0, 0), groups=1)
        text += "".join(f", {name}={getattr(self, name)}" for name, default in defaults.items()
                        if getattr(self, name) != default)
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text
