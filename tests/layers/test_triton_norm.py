"""The Triton instance norm + (Leaky)ReLU kernels against torch, the definition and minigan's torch path.

Without CUDA the kernels run under Triton's interpreter on CPU (conftest sets TRITON_INTERPRET=1), which
executes every program in Python: shapes stay small (N*C <= 6 planes) and the split path is reached by
forcing a small `chunk` (pixels per program) and `block` (pixels per load). With CUDA the same tests
run compiled (the `cuda` marker), and one more runs the real split rule on a CycleGAN-sized layer.

Oracles: the definition in float64 (`reference`, the formulas of minigan/instance_norm.py), which is
also what `F.instance_norm` + `F.leaky_relu` compute (checked against them where torch accepts the
shape: torch refuses 1-pixel planes), and `minigan.instance_norm_leaky_relu(impl="torch")`.
Tolerances (atol relative to the largest reference value, and rtol): float32 and float64 1e-5,
float16 4e-3, bfloat16 3e-2 -- a few roundings of each format's epsilon (2**-11, 2**-8).
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings, strategies as st

import minigan
from minigan.layers import kernels

ROOT = Path(__file__).resolve().parents[2]
TOL = {torch.float32: 1e-5, torch.float64: 1e-5, torch.float16: 4e-3, torch.bfloat16: 3e-2}

DEVICES = [
    pytest.param("cpu", marks=pytest.mark.skipif(
        kernels.unavailable_reason(torch.zeros(1)) is not None,
        reason="Triton cannot run on CPU tensors here (needs TRITON_INTERPRET=1 before import)")),
    pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs a CUDA device")]),
]


def reference(x, weight, bias, slope, eps):
    """The definition in float64: leaky_relu((x - mean) / sqrt(var + eps) * gamma + beta)."""
    x = x.double()
    dims = tuple(range(2, x.dim()))
    mean = x.mean(dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dims, keepdim=True)                    # biased, two-pass
    z = (x - mean) / torch.sqrt(var + eps)
    shape = (1, -1) + (1,) * len(dims)
    if weight is not None:
        z = z * weight.double().reshape(shape)
    if bias is not None:
        z = z + bias.double().reshape(shape)
    return torch.where(z > 0, z, slope * z)


def torch_reference(x, weight, bias, slope, eps):
    """The same with torch's own ops, float64."""
    return F.leaky_relu(F.instance_norm(x.double(), weight=None if weight is None else weight.double(),
                                        bias=None if bias is None else bias.double(), eps=eps), slope)


def run(fn, x, weight, bias, grad_out):
    """fn(x, weight, bias) forward and backward on fresh leaves: the output and every gradient."""
    leaves = [t.detach().clone().requires_grad_() if t is not None else None for t in (x, weight, bias)]
    out = fn(*leaves)
    out.backward(grad_out.to(out.dtype))
    return [out] + [t.grad for t in leaves if t is not None]


def assert_close(actual, expected, dtype):
    tol = TOL[dtype]
    for a, e in zip(actual, expected, strict=True):
        e = e.double()
        torch.testing.assert_close(a.double(), e, rtol=tol, atol=tol * max(1.0, e.abs().max().item()))


def make_input(n, c, h, w, layout, dtype, device, seed, offset=0.0, scale=1.0):
    """A random (N, C, H, W) tensor in the asked layout: contiguous, channels_last or strided."""
    gen = torch.Generator().manual_seed(seed)
    if layout == "strided":     # every other column of a wider tensor: no dense layout at all
        x = torch.randn(n, c, h, 2 * w, generator=gen)[..., ::2]
    elif layout == "transposed":    # (N, C, W, H) storage seen as (N, C, H, W)
        x = torch.randn(n, c, w, h, generator=gen).transpose(2, 3)
    else:
        x = torch.randn(n, c, h, w, generator=gen)
    x = (x * scale + offset).to(device=device, dtype=dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


cases = st.fixed_dictionaries({
    "n": st.integers(1, 2), "c": st.integers(1, 3), "h": st.integers(1, 12), "w": st.integers(1, 12),
    "layout": st.sampled_from(["contiguous", "channels_last", "strided", "transposed"]),
    "affine": st.sampled_from(["both", "none", "weight", "bias"]),
    "slope": st.sampled_from([0.0, 0.01, 0.2, 1.0, -0.3]),
    "eps": st.sampled_from([1e-5, 1e-3, 0.5]),
    # |offset| / scale <= 10: float32's own rounding of x - mean then stays well inside 1e-5
    # (far larger offsets: test_variance_is_two_pass)
    "offset": st.sampled_from([0.0, 2.0, -5.0]), "scale": st.sampled_from([1.0, 0.5, 7.0]),
    "seed": st.integers(0, 2 ** 16),
})


def check_case(case, dtype, device, chunk=None, block=None):
    """Triton path vs the float64 definition, torch's ops and minigan's torch path; returns outputs."""
    n, c, h, w = case["n"], case["c"], case["h"], case["w"]
    x = make_input(n, c, h, w, case["layout"], dtype, device, case["seed"], case["offset"], case["scale"])
    gen = torch.Generator().manual_seed(case["seed"] + 1)
    weight = (torch.randn(c, generator=gen) + 1).to(device, dtype)
    bias = torch.randn(c, generator=gen).to(device, dtype)
    weight = weight if case["affine"] in ("both", "weight") else None
    bias = bias if case["affine"] in ("both", "bias") else None
    grad_out = torch.randn(n, c, h, w, generator=gen).to(device, dtype)
    slope, eps = case["slope"], case["eps"]

    def triton_path(x, weight, bias):
        return kernels.instance_norm_leaky_relu(x, weight, bias, slope, eps, chunk=chunk, block=block)
    got = run(triton_path, x, weight, bias, grad_out)
    assert got[0].dtype == dtype and got[0].shape == x.shape
    if case["layout"] == "channels_last":
        assert got[0].is_contiguous(memory_format=torch.channels_last)
        assert got[1].is_contiguous(memory_format=torch.channels_last)

    assert_close(got, run(lambda *a: reference(*a, slope, eps), x, weight, bias, grad_out), dtype)
    if h * w > 1:       # torch and minigan's torch path refuse 1-pixel planes
        assert_close(got, run(lambda *a: torch_reference(*a, slope, eps), x, weight, bias, grad_out),
                     dtype)
        if slope >= 0:  # minigan's torch path reads the branch off the output, so needs slope >= 0
            def minigan_torch(x, weight, bias):
                return minigan.instance_norm_leaky_relu(x, weight, bias, slope, eps, impl="torch")
            assert_close(got, run(minigan_torch, x, weight, bias, grad_out), dtype)
    return got


def edge(**changes):
    """A hand-picked case: 3 planes, both parameters, default slope and eps, plus `changes`."""
    return dict(dict(n=1, c=3, h=4, w=4, layout="contiguous", affine="both", slope=0.2, eps=1e-5,
                     offset=0.0, scale=1.0, seed=0), **changes)


@pytest.mark.parametrize("device", DEVICES)
@given(case=cases)
@example(case=edge(h=1, w=1))                                           # 1x1 planes
@example(case=edge(h=1, w=12, layout="channels_last", slope=0.0))       # 1xW planes, ReLU
@example(case=edge(n=2, h=12, w=1, layout="strided", affine="none"))
def test_float32_matches_torch(device, case):
    check_case(case, torch.float32, device)


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=30)
@given(case=cases, dtype=st.sampled_from([torch.float16, torch.bfloat16]))
def test_half_precision_matches_torch(device, case, dtype):
    check_case(dict(case, offset=0.0), dtype, device)     # an offset would eat half's few bits


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=30)
@given(case=cases, chunks=st.integers(2, 5), block=st.sampled_from([4, 8, None]))
def test_split_planes_match_whole_planes(device, case, chunks, block):
    # few planes and chunks (interpreter time grows with their product); planes of 2..156 pixels
    case = dict(case, n=1, c=min(case["c"], 2), w=case["w"] + 1)
    chunk = -(-case["h"] * case["w"] // chunks)       # pixels per program: ceil(M / chunks)
    split = check_case(case, torch.float32, device, chunk=chunk, block=block)
    whole = check_case(case, torch.float32, device)
    assert_close(split, whole, torch.float32)


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=20)
@given(case=cases)
def test_float64_matches_torch(device, case):
    check_case(case, torch.float64, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("chunk", [None, 4])
def test_float64_gradcheck(device, chunk):
    gen = torch.Generator().manual_seed(0)
    args = [torch.randn(shape, generator=gen, dtype=torch.float64).to(device).requires_grad_()
            for shape in [(1, 2, 3, 3), (2,), (2,)]]

    def fn(x, weight, bias):
        return kernels.instance_norm_leaky_relu(x, weight, bias, 0.2, 1e-5, chunk=chunk, block=2)
    assert torch.autograd.gradcheck(fn, args, fast_mode=True)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("chunk", [None, 1])
def test_variance_is_two_pass(device, chunk):
    # 2-pixel planes far from 0: E[x^2] - E[x]^2 cancels to garbage in float32 here, two-pass is exact
    x = torch.tensor([[[[1e4, 1e4 + 1]], [[-3e4, -3e4 + 2]], [[5e3 + 1, 5e3]]]]).to(device)
    out = kernels.instance_norm_leaky_relu(x, None, None, 0.2, 1e-5, chunk=chunk)
    assert_close([out], [reference(x, None, None, 0.2, 1e-5)], torch.float32)


@pytest.mark.parametrize("device", DEVICES)
def test_empty_and_one_pixel_planes(device):
    weight = torch.randn(3, device=device, requires_grad=True)
    bias = torch.randn(3, device=device, requires_grad=True)
    for shape in [(0, 3, 4, 4), (2, 3, 0, 4)]:
        x = torch.randn(shape, device=device, requires_grad=True)
        out = kernels.instance_norm_leaky_relu(x, weight, bias, 0.2, 1e-5)
        out.sum().backward()
        assert out.shape == shape and x.grad.shape == shape
        assert weight.grad.eq(0).all() and bias.grad.eq(0).all()
    # 1x1 planes: x_hat = 0, so y = leaky_relu(beta) and no gradient reaches x
    x = torch.randn(2, 3, 1, 1, device=device, requires_grad=True)
    out = kernels.instance_norm_leaky_relu(x, None, bias, 0.2, 1e-5)
    out.sum().backward()
    assert_close([out[0, :, 0, 0], x.grad], [F.leaky_relu(bias, 0.2), torch.zeros_like(x)],
                 torch.float32)
    # the public function refuses them, as torch does
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        minigan.instance_norm_leaky_relu(x, impl="triton")


@pytest.mark.parametrize("device", DEVICES)
def test_public_function_dispatches_here(device):
    x = torch.randn(2, 3, 5, 6, device=device)
    torch.testing.assert_close(minigan.instance_norm_leaky_relu(x, impl="triton"),
                               minigan.instance_norm_leaky_relu(x, impl="torch"))


@pytest.mark.parametrize("device", DEVICES)
def test_strided_parameters(device):
    x = torch.randn(2, 3, 4, 5, device=device)
    weight, bias = torch.randn(2, 6, device=device).unbind(0)
    weight, bias = weight[::2], bias[1::2]          # every other element: not contiguous
    grad_out = torch.randn_like(x)

    def triton_path(x, weight, bias):
        return kernels.instance_norm_leaky_relu(x, weight, bias, 0.2, 1e-5)
    assert_close(run(triton_path, x, weight, bias, grad_out),
                 run(lambda *a: reference(*a, 0.2, 1e-5), x, weight, bias, grad_out), torch.float32)


@pytest.mark.parametrize("device", DEVICES)
def test_bad_arguments(device):
    x = torch.randn(2, 3, 4, 4, device=device)
    with pytest.raises(RuntimeError, match="weight must hold 3 elements"):
        kernels.instance_norm_leaky_relu(x, torch.ones(4, device=device), None, 0.2, 1e-5)
    with pytest.raises(ValueError, match=r"\(N, C, \*spatial\)"):
        kernels.instance_norm_leaky_relu(x[0, 0], None, None, 0.2, 1e-5)
    with pytest.raises(RuntimeError, match="float16/bfloat16/float32/float64"):
        kernels.instance_norm_leaky_relu(x.int(), None, None, 0.2, 1e-5)
    with pytest.raises(RuntimeError, match="once_differentiable|double backward|twice"):
        xg = x.clone().requires_grad_()
        out = kernels.instance_norm_leaky_relu(xg, None, None, 0.2, 1e-5)
        (grad,) = torch.autograd.grad(out.square().sum(), xg, create_graph=True)
        grad.sum().backward()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("shape", [(1, 64, 256, 256), (1, 128, 128, 128), (16, 256, 8, 8)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_cyclegan_layers_on_cuda(shape, channels_last):
    """The real split rule (no forced chunk) on CycleGAN-sized layers, compiled."""
    from minigan.layers.kernels.instance_norm_act import plane_chunk, _programs_wanted
    x = torch.randn(shape, device="cuda") * 2 + 1
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(shape[1], device="cuda") + 1
    bias = torch.randn(shape[1], device="cuda")
    grad_out = torch.randn(shape, device="cuda")
    chunk = plane_chunk(shape[0] * shape[1], shape[2] * shape[3], _programs_wanted(x))
    print(f"{shape}: {chunk} pixels a program")

    def triton_path(x, weight, bias):
        return kernels.instance_norm_leaky_relu(x, weight, bias, 0.2, 1e-5)
    assert_close(run(triton_path, x, weight, bias, grad_out),
                 run(lambda *a: reference(*a, 0.2, 1e-5), x, weight, bias, grad_out), torch.float32)


@given(planes=st.integers(1, 5000), pixels=st.integers(1, 2 ** 20), sms=st.integers(1, 200))
def test_split_rule(planes, pixels, sms):
    from minigan.layers.kernels.instance_norm_act import MIN_CHUNK, MAX_BLOCK, plane_chunk
    wanted = 4 * sms
    chunk = plane_chunk(planes, pixels, wanted)
    chunks = -(-pixels // chunk)
    if chunk == pixels:     # whole planes: enough of them, or too small to cut
        assert planes >= wanted or pixels < 2 * MIN_CHUNK or pixels // MIN_CHUNK <= 1
    else:                   # split: full blocks, chunks not too small, not far more programs than wanted
        assert chunk % MAX_BLOCK == 0 and chunk >= MIN_CHUNK and chunks >= 2
        assert planes * chunks <= max(wanted, planes) + planes


def python(code, interpret):
    """Run `code` in a fresh interpreter (TRITON_INTERPRET set or not, no GPU); return its stdout."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(ROOT))
    if interpret:
        env["TRITON_INTERPRET"] = "1"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_unavailable_reason_in_this_process():
    if torch.cuda.is_available():
        assert kernels.unavailable_reason(torch.zeros(2, device="cuda")) is None
    else:   # conftest switched the interpreter on
        assert kernels.unavailable_reason(torch.zeros(2, dtype=torch.float64)) is None
    assert "int64" in kernels.unavailable_reason(torch.zeros(2, dtype=torch.int64))
    assert "CUDA" in kernels.unavailable_reason(torch.zeros(2, device="meta"))


def test_unavailable_reason_without_interpreter():
    out = python("""
import torch, minigan
from minigan.layers import kernels
x = torch.randn(1, 2, 4, 4)
print(kernels.unavailable_reason(x))
try:
    minigan.instance_norm_leaky_relu(x, impl="triton")
except RuntimeError as error:
    print(error)
import minigan.layers.kernels.instance_norm_act     # imported now, without the interpreter: still refused
print(kernels.unavailable_reason(x))
print(minigan.instance_norm_leaky_relu(x, impl="auto").shape)  # auto falls back to torch on CPU
""", interpret=False).splitlines()
    assert "set TRITON_INTERPRET=1 before importing minigan kernels" in out[0]
    assert "impl='triton'" in out[1] and "TRITON_INTERPRET=1" in out[1]
    assert "imported without" in out[2] and "TRITON_INTERPRET=1" in out[2]
    assert out[3] == "torch.Size([1, 2, 4, 4])"


def test_unavailable_reason_without_triton(tmp_path):
    # a "triton" that is installed but breaks on import, as on a platform it does not support
    (tmp_path / "triton").mkdir()
    (tmp_path / "triton" / "__init__.py").write_text("raise ImportError('no such platform')\n")
    out = python(f"""
import sys
sys.modules["triton"] = None       # makes `import triton` fail and find_spec miss: not installed
import torch, minigan               # minigan itself must not need triton
from minigan.layers import kernels
x = torch.randn(1, 2, 4, 4)
print(kernels.unavailable_reason(x))
try:
    minigan.instance_norm_leaky_relu(x, impl="triton")
except RuntimeError as error:
    print(error)
del sys.modules["triton"]
sys.path.insert(0, {str(tmp_path)!r})
print(kernels.unavailable_reason(x))
""", interpret=True).splitlines()
    assert "triton is not installed" in out[0] and "impl='torch'" in out[0]
    assert "impl='triton'" in out[1] and "triton is not installed" in out[1]
    assert "not importable on this platform (ImportError: no such platform)" in out[2]


def test_kernels_compile_for_a_gpu():
    """Every kernel compiles for an H100 (sm_90) -- no GPU needed, only Triton's bundled ptxas."""
    out = python("""
import triton, triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from minigan.layers.kernels import instance_norm_act as K
stats = {"Mean", "Rstd", "PartMean", "PartM2", "SumDz", "SumDzx", "PartDz", "PartDzx"}
for fn in [K._forward_kernel, K._forward_partials_kernel, K._forward_split_kernel,
           K._backward_kernel, K._backward_partials_kernel, K._backward_split_kernel]:
    for data, acc, affine in [("fp32", "fp32", True), ("bf16", "fp32", False), ("fp64", "fp64", True)]:
        constexprs = {"ACC": getattr(tl, "float64" if acc == "fp64" else "float32"), "BLOCK": 1024,
                      "AFFINE": affine, "CHUNKS": 16}
        if not affine:
            constexprs.update(W=None, B=None)
        constexprs = {k: v for k, v in constexprs.items() if k in fn.arg_names}
        signature = {name: "constexpr" if name in constexprs else
                     "*" + (acc if name in stats else data) if name[0].isupper() and name != "C" else
                     "fp32" if name in ("slope", "eps") else "i32" for name in fn.arg_names}
        kernel = triton.compile(ASTSource(fn, signature, constexprs),
                                target=GPUTarget("cuda", 90, 32), options={"num_warps": 4})
        assert "ld.global" in kernel.asm["ptx"] and kernel.asm["cubin"]
        print(fn.__name__, data, "ok")
""", interpret=False)
    assert out.count("ok") == 18


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("affine", [False, True])
def test_registered_ops_pass_opcheck(device, affine):
    # torch's checker of the two registered ops (forward, backward). On CUDA every check; under the
    # interpreter the schema and autograd-registration checks only: the fake-tensor and AOT checks
    # trace the kernels to Triton IR, which needs a GPU backend
    from minigan.layers.kernels import instance_norm_act as ops
    checks = (("test_schema", "test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic")
              if device == "cuda" else ("test_schema", "test_autograd_registration"))
    x = torch.randn(2, 3, 4, 5, device=device, requires_grad=True)
    params = [torch.randn(3, device=device, requires_grad=True) for _ in "wb"] if affine else [None, None]
    for chunk, block in [(None, None), (8, 4)]:          # whole planes, then the split path
        result = torch.library.opcheck(ops.forward_op, (x, *params, 0.2, 1e-5, chunk, block),
                                       test_utils=checks)
        assert set(result.values()) == {"SUCCESS"}, result
        # its registered backward gives the eager path's gradients
        grad = torch.randn_like(x)
        assert_close(run(lambda *t: ops.forward_op(*t, 0.2, 1e-5, chunk, block)[0], x, *params, grad),
                     run(lambda *t: kernels.instance_norm_leaky_relu(*t, 0.2, 1e-5, chunk=chunk, block=block),
                         x, *params, grad), torch.float32)
        y, mean, rstd = ops.forward_op(x.detach(), *params, 0.2, 1e-5, chunk, block)
        result = torch.library.opcheck(
            ops.backward_op, (x.detach(), torch.randn_like(y), *params, mean, rstd, 0.2, chunk, block),
            test_utils=checks)
        assert set(result.values()) == {"SUCCESS"}, result


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_compiles_with_the_kernels_in_the_graph():
    # fullgraph=True: the Triton op is traced (wrap_triton) instead of breaking the graph
    torch._dynamo.reset()
    x = torch.randn(1, 8, 32, 32, device="cuda", requires_grad=True)
    weight = torch.randn(8, device="cuda", requires_grad=True)
    bias = torch.randn(8, device="cuda", requires_grad=True)

    def fn(x, weight, bias):
        return minigan.instance_norm_leaky_relu(x, weight, bias, 0.2, impl="triton")
    grad = torch.randn_like(x)
    got = run(torch.compile(fn, fullgraph=True), x, weight, bias, grad)
    assert_close(got, run(fn, x, weight, bias, grad), torch.float32)
