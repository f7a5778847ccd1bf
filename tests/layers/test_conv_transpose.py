"""minigan's transposed convolution against torch: the three views, every gradient, the module.

Each hypothesis test draws a random valid configuration (groups, dilation, output_padding <
max(stride, dilation), batch 1, 1x1 images, 1x1 kernels, int or pair arguments, bias on/off) and a
memory layout for the input (contiguous, channels_last, or a strided non-contiguous view).
"""
import functools

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

import minigan
from minigan.layers.conv_transpose import (conv_transpose2d, conv_transpose2d_matrix,
                                    conv_transpose2d_naive, conv_transpose_size)

LAYOUTS = ["contiguous", "channels_last", "strided"]
# the fast path's two factorizations, each forced whatever the batch ("auto" picks by batch size)
FORMS = {form: functools.partial(conv_transpose2d, form=form) for form in ("stamps", "subpixel")}


@pytest.fixture(autouse=True)
def one_thread():
    """Tensors here are tiny: a second OpenMP thread only adds synchronisation, and on a busy CPU its
    spin-waits make float64 convolutions ~50x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@st.composite
def configs(draw, max_size=6, max_channels=3, max_kernel=4, max_step=3, max_batch=3):
    """Arguments for one transposed convolution: shapes, hyperparameters, layout, bias.

    max_step bounds stride and dilation; channels are counted per group (groups up to 3).
    """
    groups = draw(st.integers(1, 3))
    square = draw(st.booleans())  # square: one value for both dims, passed as an int half the time

    def dims(strategy):
        first = draw(strategy)
        return (first, first) if square else (first, draw(strategy))

    kernel = dims(st.integers(1, max_kernel))
    stride, dilation = dims(st.integers(1, max_step)), dims(st.integers(1, max_step))
    size = dims(st.integers(1, max_size))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    if square:
        output_padding = (output_padding[0],) * 2
    # padding keeps the output at least one pixel: 2p <= (H - 1)s + d(k - 1) + op
    limit = [conv_transpose_size(size[i], kernel[i], stride[i], 0, output_padding[i], dilation[i]) - 1
             for i in range(2)]
    padding = tuple(draw(st.integers(0, min(3, lim // 2))) for lim in limit)
    if square:
        padding = (min(padding),) * 2
    as_int = square and draw(st.booleans())
    pick = (lambda pair: pair[0]) if as_int else (lambda pair: pair)
    return dict(batch=draw(st.integers(1, max_batch)), c_in=groups * draw(st.integers(1, max_channels)),
                c_out=groups * draw(st.integers(1, max_channels)), size=size, kernel=kernel,
                stride=pick(stride), padding=pick(padding), output_padding=pick(output_padding),
                groups=groups, dilation=pick(dilation), bias=draw(st.booleans()),
                layout=draw(st.sampled_from(LAYOUTS)))


def make_inputs(cfg, dtype=torch.float32, seed=0):
    """input (in cfg's layout), weight, bias, all leaves requiring grad."""
    gen = torch.Generator().manual_seed(seed)
    shape = (cfg["batch"], cfg["c_in"], *cfg["size"])
    if cfg["layout"] == "strided":  # every other column of a wider tensor: not contiguous
        x = torch.randn(*shape[:3], 2 * shape[3], generator=gen, dtype=torch.float64)[..., ::2]
    else:
        x = torch.randn(shape, generator=gen, dtype=torch.float64)
    x = x.to(dtype)
    if cfg["layout"] == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(cfg["c_in"], cfg["c_out"] // cfg["groups"], *cfg["kernel"], generator=gen,
                         dtype=torch.float64).to(dtype)
    bias = torch.randn(cfg["c_out"], generator=gen, dtype=torch.float64).to(dtype) if cfg["bias"] else None
    leaves = [t.requires_grad_() for t in (x, weight, bias) if t is not None]
    return x, weight, bias, leaves


def args(cfg):
    return dict(stride=cfg["stride"], padding=cfg["padding"], output_padding=cfg["output_padding"],
                groups=cfg["groups"], dilation=cfg["dilation"])


def value_and_grads(fn, x, weight, bias, leaves, cfg, seed=1):
    """fn's output and the gradients of <output, a fixed random tensor> w.r.t. every leaf."""
    out = fn(x, weight, bias, **args(cfg))
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed),
                           dtype=torch.float64).to(out.dtype)
    return out, torch.autograd.grad(out, leaves, upstream)


def assert_matches_torch(fn, cfg, dtype, atol, rtol):
    x, weight, bias, leaves = make_inputs(cfg, dtype)
    out, grads = value_and_grads(fn, x, weight, bias, leaves, cfg)
    ref, ref_grads = value_and_grads(F.conv_transpose2d, x, weight, bias, leaves, cfg)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, atol=atol, rtol=rtol)
    for name, grad, ref_grad in zip(["input", "weight", "bias"], grads, ref_grads):
        torch.testing.assert_close(grad, ref_grad, atol=atol, rtol=rtol, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("form", [*FORMS, "auto"])
@given(cfg=configs())
def test_fast_path_matches_torch_fp32(form, cfg):
    assert_matches_torch(FORMS.get(form, conv_transpose2d), cfg, torch.float32, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("view", [conv_transpose2d_naive, conv_transpose2d_matrix])
@given(cfg=configs(max_size=4, max_channels=2))
def test_naive_and_matrix_views_match_torch(view, cfg):
    assert_matches_torch(view, cfg, torch.float64, atol=1e-10, rtol=1e-10)


# float64 gradcheck and gradgradcheck compare the hand-written backward (and its own derivative)
# with finite differences: full Jacobians, so tiny sizes.
def gradchecks(cfg, form="auto"):
    x, weight, bias, leaves = make_inputs(cfg, torch.float64)

    def fn(*tensors):  # the leaves: input, weight and, when there is one, bias
        return conv_transpose2d(*tensors, **args(cfg), form=form)

    assert torch.autograd.gradcheck(fn, leaves)
    assert torch.autograd.gradgradcheck(fn, leaves)


@pytest.mark.parametrize("kwargs", [
    dict(stride=2, padding=1, output_padding=1, kernel=(3, 3)),                 # the U-Net block
    dict(stride=(2, 1), padding=(1, 0), kernel=(4, 2), groups=2, bias=False),
    dict(stride=2, dilation=3, output_padding=2, kernel=(2, 2)),                # output_padding >= stride
    dict(stride=3, kernel=(2, 2), size=(1, 1), layout="strided"),               # kernel < stride
])
@pytest.mark.parametrize("form", FORMS)
def test_gradcheck_float64_named_cases(kwargs, form):
    cfg = dict(batch=2, c_in=2, c_out=2, size=(2, 3), groups=1, dilation=1, padding=0,
               output_padding=0, bias=True, layout="contiguous") | kwargs
    gradchecks(cfg, form)


@pytest.mark.parametrize("form", FORMS)
@given(cfg=configs(max_size=3, max_channels=2, max_kernel=3, max_batch=2))
def test_gradcheck_float64(form, cfg):
    gradchecks(cfg, form)


# torch CPU runs F.conv_transpose2d in float16 and bfloat16 (checked). Output and gradients are
# compared with float64 truth, the error measured relative to the largest true value + 1: it must be
# below 2e-3 (fp16) / 2e-2 (bf16) -- a few units in the last place -- or at most twice torch's own
# error in that dtype. (The escape exists because torch's bf16 F.conv2d on CPU is itself wrong for
# some strided, dilated shapes, e.g. stride (1, 3), dilation 2, k=4 -- and so then is its
# F.conv_transpose2d backward, which is the same convolution.)
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("dtype,tol", [(torch.float16, 2e-3), (torch.bfloat16, 2e-2)])
@given(cfg=configs())
def test_half_precision_as_accurate_as_torch(dtype, tol, form, cfg):
    truth = value_and_grads(F.conv_transpose2d, *make_inputs(cfg, torch.float64), cfg)
    ours = value_and_grads(FORMS[form], *make_inputs(cfg, dtype), cfg)
    theirs = value_and_grads(F.conv_transpose2d, *make_inputs(cfg, dtype), cfg)
    assert ours[0].dtype == dtype and all(g.dtype == dtype for g in ours[1])
    for name, got, torch_got, want in zip(["output", "input", "weight", "bias"], (ours[0], *ours[1]),
                                          (theirs[0], *theirs[1]), (truth[0], *truth[1])):
        scale = want.abs().max().item() + 1
        error, torch_error = ((t.double() - want).abs().max().item() / scale for t in (got, torch_got))
        assert error <= max(tol, 2 * torch_error), (name, error, torch_error)


def test_course_worked_examples():
    x = torch.tensor([[[[0., 1.], [2., 3.]]]])
    kernel = x.clone()
    expected = {1: [[0, 0, 1], [0, 4, 6], [4, 12, 9]],
                2: [[0, 0, 0, 1], [0, 0, 2, 3], [0, 2, 0, 3], [4, 6, 6, 9]]}
    for stride, want in expected.items():
        for view in (*FORMS.values(), conv_transpose2d_naive, conv_transpose2d_matrix):
            assert view(x, kernel, stride=stride)[0, 0].tolist() == want, (view, stride)


def test_unbatched_input():
    x, weight, bias = torch.randn(4, 5, 3), torch.randn(4, 3, 3, 3), torch.randn(6)
    for view in (conv_transpose2d, conv_transpose2d_naive, conv_transpose2d_matrix):
        out = view(x, weight, bias, stride=2, padding=1, output_padding=1, groups=2)
        ref = F.conv_transpose2d(x, weight, bias, stride=2, padding=1, output_padding=1, groups=2)
        assert out.shape == ref.shape == (6, 10, 6)
        torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("output_padding", [0, 1])   # 1: the phases interleave exactly; 0: cropped
def test_channels_last_in_channels_last_out(form, output_padding):
    x = torch.randn(2, 8, 5, 5).contiguous(memory_format=torch.channels_last)
    conv = FORMS[form]
    out = conv(x, torch.randn(8, 4, 3, 3), stride=2, padding=1, output_padding=output_padding)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert conv(x.contiguous(), torch.randn(8, 4, 4, 4)).is_contiguous()


def test_auto_form_is_stamps_at_batch_1_else_subpixel(monkeypatch):
    from minigan.layers import conv_transpose as module
    called = []
    for name in ("_stamp_forward", "_subpixel_forward"):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, real=real, name=name: called.append(name) or real(*a))
    for batch in (1, 2):
        conv_transpose2d(torch.randn(batch, 2, 3, 3), torch.randn(2, 2, 3, 3), stride=2)
    assert called == ["_stamp_forward", "_subpixel_forward"]
    with pytest.raises(ValueError, match="form must be"):
        conv_transpose2d(torch.randn(1, 2, 3, 3), torch.randn(2, 2, 3, 3), form="fold")


class RecordOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append((func, args))
        return func(*args, **(kwargs or {}))


def test_fast_path_uses_no_transposed_convolution():
    x = torch.randn(2, 4, 5, 5, requires_grad=True)
    weight = torch.randn(4, 3, 4, 4, requires_grad=True)
    with RecordOps() as recorder:
        conv_transpose2d(x, weight, torch.zeros(3), stride=2, padding=1).sum().backward()
    aten = torch.ops.aten
    transposed = [func for func, a in recorder.ops
                  if (func is aten.convolution.default and a[6])
                  or (func is aten.convolution_backward.default and a[7])
                  or "conv_transpose" in str(func)]
    names = {str(func) for func, _ in recorder.ops}
    assert "aten.convolution.default" in names and not transposed, names


# ---- the module ----------------------------------------------------------------------------------

MODULE_CASES = [dict(in_channels=6, out_channels=4, kernel_size=4, stride=2, padding=1, bias=False),
                dict(in_channels=6, out_channels=9, kernel_size=(3, 2), stride=(2, 1), padding=1,
                     output_padding=(1, 0), groups=3, dilation=(1, 2))]


@pytest.mark.parametrize("kwargs", MODULE_CASES)
def test_module_matches_torch_init_state_dict_and_repr(kwargs):
    torch.manual_seed(0)
    ours = minigan.ConvTranspose2d(**kwargs)
    torch.manual_seed(0)
    theirs = torch.nn.ConvTranspose2d(**kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for name, value in theirs.state_dict().items():  # the same draws from the same seed
        assert torch.equal(ours.state_dict()[name], value), name
    x = torch.randn(2, kwargs["in_channels"], 5, 4)
    torch.testing.assert_close(ours(x), theirs(x))


def test_module_state_dict_round_trip_both_ways():
    ours, theirs = minigan.ConvTranspose2d(8, 6, 3, stride=2), torch.nn.ConvTranspose2d(8, 6, 3, stride=2)
    x = torch.randn(1, 8, 4, 4)
    ours.load_state_dict(theirs.state_dict())
    torch.testing.assert_close(ours(x), theirs(x))
    ours.reset_parameters()
    theirs.load_state_dict(ours.state_dict())
    torch.testing.assert_close(ours(x), theirs(x))


def test_module_factory_kwargs_and_output_size():
    ours = minigan.ConvTranspose2d(4, 2, 3, stride=2, dtype=torch.float64)
    theirs = torch.nn.ConvTranspose2d(4, 2, 3, stride=2, dtype=torch.float64)
    theirs.load_state_dict(ours.state_dict())
    assert ours.weight.dtype == ours.bias.dtype == torch.float64
    x = torch.randn(1, 4, 5, 5, dtype=torch.float64)
    for size in [(11, 12), [1, 2, 12, 11], torch.Size([12, 12])]:
        out = ours(x, output_size=size)
        assert out.shape[-2:] == tuple(size)[-2:]
        torch.testing.assert_close(out, theirs(x, output_size=size))
    with pytest.raises(ValueError, match="output size"):
        ours(x, output_size=(20, 20))


# ---- errors: the exception type torch raises, a message naming the argument ----------------------

BAD_CALLS = [
    (dict(stride=0), "stride"), (dict(stride=(1, -1)), "stride"), (dict(padding=-1), "padding"),
    (dict(dilation=0), "dilation"), (dict(output_padding=-1), "output_padding"),
    (dict(stride=2, output_padding=2), "output padding must be smaller"),
    (dict(stride=(1, 1, 1)), "stride"), (dict(groups=0), "groups"), (dict(groups=3), "groups"),
    (dict(bias=torch.zeros(3)), "bias"), (dict(input=torch.randn(1, 3, 5, 5)), "channels"),
    (dict(input=torch.randn(5, 5)), "input"), (dict(weight=torch.randn(4, 2, 3)), "weight"),
    (dict(input=torch.randn(1, 4, 1, 1), weight=torch.randn(4, 2, 1, 1), padding=1), "output size"),
]


@pytest.mark.parametrize("bad,words", BAD_CALLS)
def test_invalid_arguments_raise_like_torch(bad, words):
    call = dict(input=torch.randn(1, 4, 5, 5), weight=torch.randn(4, 2, 3, 3)) | bad
    with pytest.raises(Exception) as theirs:
        F.conv_transpose2d(**call)
    for view in (conv_transpose2d, conv_transpose2d_naive, conv_transpose2d_matrix):
        with pytest.raises(theirs.type, match=words):
            view(**call)


@pytest.mark.parametrize("bad,words", [
    (dict(in_channels=3, groups=2), "in_channels"), (dict(out_channels=3, groups=2), "out_channels"),
    (dict(groups=0), "groups"), (dict(padding_mode="reflect"), "padding_mode"),
])
def test_invalid_module_arguments_raise_like_torch(bad, words):
    kwargs = dict(in_channels=4, out_channels=4, kernel_size=3) | bad
    with pytest.raises(Exception) as theirs:
        torch.nn.ConvTranspose2d(**kwargs)
    with pytest.raises(theirs.type, match=words):
        minigan.ConvTranspose2d(**kwargs)


def test_cached_sub_kernel_selection_survives_inference_mode():
    # the tap-selection matrix is built once per layer shape; built first under inference mode it
    # must still be usable (saved for backward) by a later training call
    from minigan.layers.conv_transpose import _cached_selection
    _cached_selection.cache_clear()
    x, weight = torch.randn(1, 3, 5, 5), torch.randn(3, 2, 3, 3, requires_grad=True)
    with torch.inference_mode():
        FORMS["subpixel"](x, weight.detach(), stride=2, padding=1, output_padding=1)
    FORMS["subpixel"](x, weight, stride=2, padding=1, output_padding=1).sum().backward()
    assert _cached_selection.cache_info().hits == 1
    torch.testing.assert_close(weight.grad, torch.autograd.grad(
        F.conv_transpose2d(x, weight, stride=2, padding=1, output_padding=1).sum(), weight)[0])


@pytest.mark.parametrize("c_in,size,stamp_adjoint", [(8, 2, True), (2, 6, False)])
def test_stamp_backward_where_weights_outweigh_the_image(monkeypatch, c_in, size, stamp_adjoint):
    # batch 1: stamps forward; backward by the stamps' adjoint when 4 * channels >= pixels, else
    # by the adjoint convolution -- both must give torch's gradients
    from minigan.layers import conv_transpose as module
    called = []
    real = module._stamp_backward
    monkeypatch.setattr(module, "_stamp_backward", lambda *a: called.append(1) or real(*a))
    x = torch.randn(1, c_in, size, size + 1, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(c_in, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    ours = torch.autograd.grad(conv_transpose2d(x, weight, stride=2, padding=1).square().sum(), (x, weight))
    theirs = torch.autograd.grad(F.conv_transpose2d(x, weight, stride=2, padding=1).square().sum(), (x, weight))
    assert bool(called) == stamp_adjoint
    for got, want in zip(ours, theirs):
        torch.testing.assert_close(got, want)
