"""instance_norm / instance_norm_leaky_relu against torch, the naive definition, and gradcheck."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from minigan.layers.instance_norm import (InstanceNorm2d, InstanceNormLeakyReLU, instance_norm,
                                   instance_norm_leaky_relu, instance_norm_naive)

SLOPES = [None, 0.0, 0.01, 0.2, 1.0]      # None: plain instance norm; 0: ReLU; 1: identity


@st.composite
def cases(draw, max_side=9, dtype=torch.float32):
    """Random (N, C, H, W) input (planes of 1xW, Hx1 included, 1x1 excluded), params and settings."""
    n = draw(st.integers(1, 3))
    c = draw(st.integers(1, 8))
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1 if h > 1 else 2, max_side))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    spread = draw(st.sampled_from([0.1, 1.0, 10.0]))
    offset = draw(st.sampled_from([0.0, 3.0, -50.0]))
    x = torch.randn(n, c, h, w, generator=gen, dtype=dtype) * spread + offset
    affine = draw(st.sampled_from(["none", "weight", "bias", "both"]))
    weight = torch.randn(c, generator=gen, dtype=dtype) if affine in ("weight", "both") else None
    bias = torch.randn(c, generator=gen, dtype=dtype) if affine in ("bias", "both") else None
    eps = draw(st.sampled_from([1e-5, 1e-3, 0.1]))
    slope = draw(st.sampled_from(SLOPES))
    grad = torch.randn(n, c, h, w, generator=gen, dtype=dtype)
    return x, weight, bias, eps, slope, grad


def ours(x, weight, bias, eps, slope):
    if slope is None:
        return instance_norm(x, weight, bias, eps)
    return instance_norm_leaky_relu(x, weight, bias, slope, eps, impl="torch")


def torchs(x, weight, bias, eps, slope):
    y = F.instance_norm(x, weight=weight, bias=bias, eps=eps)
    return y if slope is None else F.leaky_relu(y, slope)


def run(fn, x, weight, bias, eps, slope, grad, prepare=lambda t: t):
    """fn's output and the gradients of <output, grad> w.r.t. every given tensor."""
    leaves = [t.detach().clone().requires_grad_() if t is not None else None for t in (x, weight, bias)]
    out = fn(prepare(leaves[0]), leaves[1], leaves[2], eps, slope)
    out.backward(grad)
    return [out.detach()] + [t.grad for t in leaves if t is not None]


def assert_all_close(got, want, atol, rtol):
    assert len(got) == len(want)
    for name, g, w in zip(["output", "grad input", "grad param", "grad param"], got, want):
        torch.testing.assert_close(g, w, atol=atol, rtol=rtol, msg=lambda m: f"{name}: {m}")


def condition(x):
    """How many digits float32 loses on x_hat: 1 + |mean| / std, worst plane (large for a big offset)."""
    x = x.double().flatten(2)
    return float((1 + x.mean(2).abs() / x.std(2, correction=0).clamp_min(1e-30)).max())


def assert_float32_accurate(case, prepare=lambda t: t):
    """Ours in float32 is as close to the exact (float64) answer as float32 allows, and so is torch.

    The bound is 1e-5 * condition(x) relative to each tensor's largest entry: float32 rounding of
    x - mean costs about 6e-8 * |mean| / std in x_hat, and backward sums a plane's worth of such terms.
    """
    x, weight, bias, eps, slope, grad = case
    exact = run(torchs, *[t.double() if isinstance(t, torch.Tensor) else t for t in case])
    tol = 1e-5 * condition(x)
    for who, got in (("ours", run(ours, *case, prepare=prepare)), ("torch", run(torchs, *case))):
        for name, g, w in zip(["output", "grad input", "grad param", "grad param"], got, exact):
            assert g.dtype == torch.float32
            error = (g.double() - w).abs().max().item() if w.numel() else 0.0
            assert error <= tol * max(1.0, w.abs().max().item()), f"{who} {name}: error {error:.3g}"


@given(cases())
def test_matches_torch_forward_and_every_gradient(case):
    assert_float32_accurate(case)


@given(cases(max_side=5, dtype=torch.float64))
def test_naive_definition_equals_ours_and_torch(case):
    x, weight, bias, eps, slope, grad = case
    naive = run(lambda x, w, b, e, s: instance_norm_naive(x, w, b, e, s), *case)
    assert_all_close(run(ours, *case), naive, atol=1e-10, rtol=1e-10)
    assert_all_close(run(torchs, *case), naive, atol=1e-10, rtol=1e-10)


@settings(max_examples=15)
@given(cases(max_side=4, dtype=torch.float64))
def test_gradcheck_float64(case):
    x, weight, bias, eps, slope, _ = case
    eps = max(eps, 1e-3)   # finite differences need a well-conditioned 1/sqrt(var + eps)
    inputs = [t.requires_grad_() for t in (x, weight, bias) if t is not None]

    def fn(*tensors):
        tensors = list(tensors)
        x = tensors.pop(0)
        w = tensors.pop(0) if weight is not None else None
        b = tensors.pop(0) if bias is not None else None
        return ours(x, w, b, eps, slope)
    assert torch.autograd.gradcheck(fn, inputs)


@pytest.mark.parametrize("dtype, tol", [(torch.float16, 1e-2), (torch.bfloat16, 6e-2)])
@pytest.mark.parametrize("slope", SLOPES)
def test_half_precision_computed_in_float32(dtype, tol, slope):
    # loose tolerance: the inputs, outputs and gradients are rounded to 11 (fp16) or 8 (bf16) bits
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 6, 5, generator=gen).to(dtype)
    weight = torch.randn(4, generator=gen).to(dtype)
    bias = torch.randn(4, generator=gen).to(dtype)
    grad = torch.randn(2, 4, 6, 5, generator=gen).to(dtype)
    got = run(ours, x, weight, bias, 1e-5, slope, grad)
    assert all(t.dtype == dtype for t in got)
    # the exact answer for these rounded inputs: float64 torch
    want = run(torchs, x.double(), weight.double(), bias.double(), 1e-5, slope, grad.double())
    assert_all_close([t.double() for t in got], want, atol=tol, rtol=tol)


@pytest.mark.parametrize("layout", ["channels_last", "transposed", "strided"])
@given(case=cases())
@settings(max_examples=10)
def test_non_contiguous_and_channels_last(layout, case):
    prepare = {"channels_last": lambda t: t.contiguous(memory_format=torch.channels_last),
               "transposed": lambda t: t.transpose(2, 3).contiguous().transpose(2, 3),
               "strided": lambda t: torch.stack([t, t], dim=-1).flatten(-2)[..., ::2]}[layout]
    assert_float32_accurate(case, prepare)


def test_one_pass_variance_fails_in_float32_two_pass_does_not():
    # a small plane with a large mean: E[x^2] - E[x]^2 loses every significant digit in float32
    x = (100 + 0.01 * torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(0)))
    exact = F.instance_norm(x.double(), eps=1e-5)
    mean = x.mean((2, 3), keepdim=True)
    one_pass_var = (x * x).mean((2, 3), keepdim=True) - mean * mean
    one_pass = (x - mean) / torch.sqrt(one_pass_var + 1e-5)
    assert not torch.allclose(one_pass.double(), exact, atol=0.1), "one-pass variance got lucky"
    torch.testing.assert_close(instance_norm(x).double(), exact, atol=1e-3, rtol=1e-3)
    # with a mean larger still the one-pass variance even goes negative: NaN
    x = 1000 + 0.1 * torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    mean = x.mean((2, 3), keepdim=True)
    assert ((x * x).mean((2, 3)) - mean * mean < 0).all()
    torch.testing.assert_close(instance_norm(x).double(), F.instance_norm(x.double()), atol=1e-3, rtol=0)


@pytest.mark.parametrize("cls, extra", [(InstanceNorm2d, {}), (InstanceNormLeakyReLU, {})])
@pytest.mark.parametrize("affine", [False, True])
def test_module_state_dict_round_trip_with_torch(cls, extra, affine):
    ref = torch.nn.InstanceNorm2d(5, eps=1e-3, affine=affine)
    if affine:
        with torch.no_grad():
            ref.weight.normal_()
            ref.bias.normal_()
    mine = cls(5, eps=1e-3, affine=affine, **extra)
    assert mine.load_state_dict(ref.state_dict()) is not None   # strict: same keys, same shapes
    back = torch.nn.InstanceNorm2d(5, eps=1e-3, affine=affine)
    back.load_state_dict(mine.state_dict())
    assert list(mine.state_dict()) == list(ref.state_dict())
    x = torch.randn(2, 5, 6, 6)
    want = ref(x) if cls is InstanceNorm2d else F.leaky_relu(ref(x), 0.2)
    torch.testing.assert_close(mine(x), want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mine(x[0]), want[0], atol=1e-5, rtol=1e-5)   # unbatched (C, H, W)


def test_one_element_planes_and_bad_arguments_raise_like_torch():
    def same_error(fn_torch, fn_ours, match):
        with pytest.raises(Exception) as theirs:
            fn_torch()
        with pytest.raises(theirs.type, match=match):
            fn_ours()
    same_error(lambda: F.instance_norm(torch.randn(2, 3, 1, 1)),
               lambda: instance_norm(torch.randn(2, 3, 1, 1)), "spatial element")
    same_error(lambda: F.instance_norm(torch.randn(2, 3, 4, 4), weight=torch.ones(4)),
               lambda: instance_norm(torch.randn(2, 3, 4, 4), weight=torch.ones(4)), "weight")
    same_error(lambda: F.instance_norm(torch.randn(2, 3, 4, 4), bias=torch.ones(4)),
               lambda: instance_norm_leaky_relu(torch.randn(2, 3, 4, 4), bias=torch.ones(4)), "bias")
    same_error(lambda: F.instance_norm(torch.ones(2, 3, 4, 4, dtype=torch.long)),
               lambda: instance_norm(torch.ones(2, 3, 4, 4, dtype=torch.long)), "floating-point")
    same_error(lambda: F.instance_norm(torch.randn(2, 3)),
               lambda: instance_norm(torch.randn(2, 3)), "input")
    same_error(lambda: torch.nn.InstanceNorm2d(3)(torch.randn(3, 4)),
               lambda: InstanceNorm2d(3)(torch.randn(3, 4)), "2D input")
    same_error(lambda: torch.nn.InstanceNorm2d(3, affine=True)(torch.randn(1, 4, 3, 3)),
               lambda: InstanceNormLeakyReLU(3, affine=True)(torch.randn(1, 4, 3, 3)), "num_features")
    with pytest.raises(ValueError, match="negative_slope"):
        instance_norm_leaky_relu(torch.randn(1, 2, 3, 3), negative_slope=-0.1)
    with pytest.raises(ValueError, match="impl"):
        instance_norm_leaky_relu(torch.randn(1, 2, 3, 3), impl="cuda")


def test_empty_batch():
    x = torch.randn(0, 3, 4, 4, requires_grad=True)
    y = instance_norm_leaky_relu(x, torch.ones(3), torch.zeros(3))
    y.sum().backward()
    assert y.shape == x.shape and x.grad.shape == x.shape


def test_triton_dispatch_rules(monkeypatch):
    kernels = pytest.importorskip("minigan.layers.kernels")
    calls = []
    monkeypatch.setattr(kernels, "instance_norm_leaky_relu",
                        lambda *args: calls.append(args) or args[0], raising=False)
    x = torch.randn(1, 2, 3, 3)
    # an explicit request never falls back silently: it says why Triton cannot run
    monkeypatch.setattr(kernels, "unavailable_reason", lambda x: "no GPU here", raising=False)
    with pytest.raises(RuntimeError, match="no GPU here"):
        instance_norm_leaky_relu(x, impl="triton")
    assert calls == []
    # "auto" on a CPU tensor is the torch path even when Triton could run (the interpreter is slow)
    monkeypatch.setattr(kernels, "unavailable_reason", lambda x: None, raising=False)
    torch.testing.assert_close(instance_norm_leaky_relu(x, impl="auto"),
                               instance_norm_leaky_relu(x, impl="torch"))
    assert calls == []
    instance_norm_leaky_relu(x, None, None, 0.1, 1e-3, impl="triton")
    assert len(calls) == 1 and calls[0][3:] == (0.1, 1e-3)


def test_explicit_triton_on_cpu_without_interpreter_raises():
    # a fresh interpreter without TRITON_INTERPRET: the kernels cannot run on a CPU tensor
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    code = ("import torch, minigan\n"
            "try:\n"
            "    minigan.instance_norm_leaky_relu(torch.randn(1, 2, 3, 3), impl='triton')\n"
            "except RuntimeError as error:\n"
            "    print('RuntimeError:', error)\n")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("RuntimeError: instance_norm_leaky_relu(impl='triton'): "), done.stdout


def test_triton_path_agrees_with_reference_when_it_can_run():
    kernels = pytest.importorskip("minigan.layers.kernels")
    x = torch.randn(2, 3, 5, 6, device="cuda" if torch.cuda.is_available() else "cpu")
    if kernels.unavailable_reason(x) is not None:
        pytest.skip(f"Triton cannot run here: {kernels.unavailable_reason(x)}")
    weight, bias = torch.randn(3, device=x.device), torch.randn(3, device=x.device)
    grad = torch.randn_like(x)
    for slope in (0.0, 0.2):
        triton = run(lambda x, w, b, e, s: instance_norm_leaky_relu(x, w, b, s, e, impl="triton"),
                     x, weight, bias, 1e-5, slope, grad)
        assert_all_close(triton, run(ours, x, weight, bias, 1e-5, slope, grad), atol=1e-4, rtol=1e-4)


def test_double_backward_is_refused_not_silently_wrong():
    # e.g. a gradient penalty: the input grad would be differentiated again; refuse loudly
    x = torch.randn(1, 2, 3, 3, requires_grad=True)
    for fn in (instance_norm, instance_norm_leaky_relu):
        with pytest.raises(RuntimeError, match="double backward"):
            torch.autograd.grad(fn(x).sum(), x, create_graph=True)


@pytest.mark.parametrize("slope", [None, 0.2])
@pytest.mark.parametrize("hw", [(64, 64), (61, 68)])    # M = 4096, 4148: both sides of _SMALL_PLANE
@pytest.mark.parametrize("affine", ["none", "both"])
def test_backward_on_both_sides_of_the_small_plane_threshold(slope, hw, affine):
    from minigan.layers.instance_norm import _SMALL_PLANE
    assert (hw[0] * hw[1] <= _SMALL_PLANE) == (hw == (64, 64))   # the shapes still straddle it
    gen = torch.Generator().manual_seed(sum(hw))
    x = torch.randn(2, 3, *hw, generator=gen) * 2 + 1
    weight, bias = (torch.randn(3, generator=gen), torch.randn(3, generator=gen)) if affine == "both" \
        else (None, None)
    grad = torch.randn(x.shape, generator=gen)
    assert_float32_accurate((x, weight, bias, 1e-5, slope, grad))


@pytest.mark.parametrize("slope", [None, 0.2])
@pytest.mark.parametrize("hw", [(4, 4), (23, 23)])
def test_parameter_gradients_when_input_needs_none(slope, hw):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, *hw, generator=gen)
    grad = torch.randn(x.shape, generator=gen)
    grads = []
    for fn in (ours, torchs):
        weight, bias = torch.randn(3).requires_grad_(), torch.randn(3).requires_grad_()
        with torch.no_grad():
            weight.copy_(torch.arange(3.0) - 1), bias.copy_(torch.arange(3.0))
        fn(x, weight, bias, 1e-5, slope).backward(grad)
        grads.append((weight.grad, bias.grad))
    assert_all_close(list(grads[0]), list(grads[1]), atol=1e-5, rtol=1e-5)


OPCHECK_CASES = [  # (shape, affine, slope, dtype, layout): each branch of _forward and _setup_context
    ((2, 3, 5, 4), False, 0.2, torch.float32, "contiguous"),
    ((2, 3, 5, 4), False, None, torch.float32, "contiguous"),         # the output is x_hat
    ((2, 3, 5, 4), True, 0.0, torch.float32, "contiguous"),           # the mask read off y
    ((2, 3, 5, 4), True, None, torch.float64, "contiguous"),
    ((2, 3, 5, 4), False, None, torch.float16, "contiguous"),         # x_hat kept in float32
    ((1, 3, 5, 4), False, 0.2, torch.float32, "channels_last"),       # rows as a strided view
    ((2, 3, 5, 4), False, 0.2, torch.float32, "transposed"),
]


@pytest.mark.parametrize("shape, affine, slope, dtype, layout", OPCHECK_CASES)
def test_custom_op_passes_opcheck(shape, affine, slope, dtype, layout):
    # torch's checker of a custom op: schema (no undeclared mutation or aliasing), the fake
    # implementation's shapes, dtypes and strides against the real ones, the autograd registration
    # and the op traced by AOT autograd with dynamic shapes
    from minigan.layers.instance_norm import instance_norm_act_op
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen).to(dtype)
    x = {"contiguous": x, "channels_last": x.contiguous(memory_format=torch.channels_last),
         "transposed": x.transpose(2, 3).contiguous().transpose(2, 3)}[layout].requires_grad_()
    params = [torch.randn(shape[1], generator=gen, dtype=dtype, requires_grad=True) for _ in "wb"] \
        if affine else [None, None]
    result = torch.library.opcheck(instance_norm_act_op, (x, *params, slope, 1e-5))
    assert set(result.values()) == {"SUCCESS"}, result


def test_custom_op_is_the_eager_path():
    # the registered op and the eager autograd.Function compute the same output and gradients
    from minigan.layers.instance_norm import instance_norm_act_op
    gen = torch.Generator().manual_seed(1)
    x, grad = torch.randn(2, 3, 6, 5, generator=gen), torch.randn(2, 3, 6, 5, generator=gen)
    weight, bias = torch.randn(3, generator=gen), torch.randn(3, generator=gen)
    for slope in (None, 0.0, 0.2):
        eager = run(ours, x, weight, bias, 1e-5, slope, grad)
        op = run(lambda x, w, b, e, s: instance_norm_act_op(x, w, b, s, e)[0], x, weight, bias, 1e-5,
                 slope, grad)
        assert_all_close(op, eager, atol=0, rtol=0)


def test_compiles_without_graph_breaks():
    # fullgraph=True raises on any graph break: the layers' autograd.Function must trace, forward and
    # backward, and so must the registered op. One graph holds every branch (plain norm, ReLU,
    # LeakyReLU; with and without affine, and the op): one compile.
    from minigan.layers.instance_norm import instance_norm_act_op
    torch._dynamo.reset()
    gen = torch.Generator().manual_seed(2)
    x, grad = torch.randn(1, 4, 6, 6, generator=gen), torch.randn(1, 4, 6, 6, generator=gen)
    weight, bias = torch.randn(4, generator=gen), torch.randn(4, generator=gen)

    def every_branch(x, weight, bias, eps, slope):
        return (ours(x, weight, bias, eps, slope) + ours(x, None, None, eps, None)
                + ours(x, None, None, eps, 0.0) * ours(x, weight, None, eps, 0.2)
                + instance_norm_act_op(x, None, bias, 0.2, eps)[0])
    compiled = torch.compile(every_branch, fullgraph=True, dynamic=False)
    assert_all_close(run(compiled, x, weight, bias, 1e-5, 0.2, grad),
                     run(every_branch, x, weight, bias, 1e-5, 0.2, grad), atol=1e-5, rtol=1e-5)
