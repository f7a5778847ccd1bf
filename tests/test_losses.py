"""The GAN losses against torch's own losses and the value function written out with sigmoid and log.

Each check compares values and every gradient (w.r.t. real and fake logits) for random shapes,
scales and memory layouts; then float64 gradcheck, half precision, extreme logits, the saturation
fact, and the gradient penalty.
"""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, strategies as st

from minigan.losses import KINDS, d_loss, d_terms, g_loss, gradient_penalty


def reference_d(real, fake, kind):
    """The D losses from torch's losses (bce, lsgan) or as sums over the elements (wgan, hinge)."""
    on_real, on_fake = reference_d_terms(real, fake, kind)
    return on_real + on_fake


def reference_d_terms(real, fake, kind):
    """D's two terms, on the real logits and on the fake ones; their sum is not halved."""
    if kind in ("bce", "minimax"):
        return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real)),
                F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    if kind == "lsgan":
        return F.mse_loss(real, torch.ones_like(real)), F.mse_loss(fake, torch.zeros_like(fake))
    if kind == "wgan":
        return -real.sum() / real.numel(), fake.sum() / fake.numel()
    if kind == "hinge":
        return (1 - real).clamp(min=0).sum() / real.numel(), (1 + fake).clamp(min=0).sum() / fake.numel()


def reference_g(fake, kind):
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if kind == "minimax":  # E log(1 - D(G(z))) = -BCE(fake, label 0)
        return -F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    if kind == "lsgan":
        return F.mse_loss(fake, torch.ones_like(fake))
    if kind in ("wgan", "hinge"):
        return -fake.sum() / fake.numel()


shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4)
layouts = st.sampled_from(["contiguous", "transposed", "channels_last"])


def logits(shape, scale, seed, layout, dtype=torch.float64):
    """Random logits in a given memory layout (the values do not depend on the layout)."""
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale
    if layout == "transposed" and x.dim() >= 2:
        x = x.transpose(0, -1).contiguous().transpose(0, -1)  # same values, non-contiguous strides
    elif layout == "channels_last" and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x.to(dtype).requires_grad_(True)


def values_and_grads(loss, *inputs):
    value = loss(*inputs)
    return (value, *torch.autograd.grad(value, inputs))


@given(st.sampled_from(KINDS), shapes, shapes, st.floats(0.01, 30), st.integers(0, 2**16), layouts)
def test_d_loss_matches_reference(kind, real_shape, fake_shape, scale, seed, layout):
    real = logits(real_shape, scale, seed, layout)
    fake = logits(fake_shape, scale, seed + 1, layout)
    ours = values_and_grads(lambda r, f: d_loss(r, f, kind), real, fake)
    theirs = values_and_grads(lambda r, f: reference_d(r, f, kind), real, fake)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)
    for ours_term, their_term in zip(d_terms(real, fake, kind), reference_d_terms(real, fake, kind)):
        torch.testing.assert_close(ours_term, their_term)


@given(st.sampled_from(KINDS), shapes, st.floats(0.01, 30), st.integers(0, 2**16), layouts)
def test_g_loss_matches_reference(kind, shape, scale, seed, layout):
    fake = logits(shape, scale, seed, layout)
    ours = values_and_grads(lambda f: g_loss(f, kind), fake)
    theirs = values_and_grads(lambda f: reference_g(f, kind), fake)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)


@given(shapes, st.floats(0.01, 4), st.integers(0, 2**16))
def test_bce_games_equal_the_value_function(shape, scale, seed):
    """V(D, G) = E log D(x) + E log(1 - D(G(z))) with D = sigmoid(logit), written out in float64.

    Moderate logits only: this naive form is what loses precision (1 - sigmoid(30) is ~1e-13, then
    log of it) and overflows in float32, which is why the losses use softplus."""
    real, fake = logits(shape, scale, seed, "contiguous"), logits(shape, scale, seed + 1, "contiguous")
    value = torch.log(torch.sigmoid(real)).mean() + torch.log(1 - torch.sigmoid(fake)).mean()
    torch.testing.assert_close(d_loss(real, fake, "bce"), -value)   # D maximizes V: not halved
    torch.testing.assert_close(d_loss(real, fake, "minimax"), -value)
    torch.testing.assert_close(g_loss(fake, "minimax"), torch.log(1 - torch.sigmoid(fake)).mean())
    torch.testing.assert_close(g_loss(fake, "bce"), -torch.log(torch.sigmoid(fake)).mean())


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck(kind):
    # hinge has kinks at real = 1 and fake = -1: keep the points away from them
    real = torch.tensor([[0.3, 2.5, -1.7], [0.0, 1.4, -3.0]], dtype=torch.float64, requires_grad=True)
    fake = torch.tensor([-0.4, 0.8, -2.2, 1.9], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda r, f: d_loss(r, f, kind), (real, fake))
    assert torch.autograd.gradcheck(lambda f: g_loss(f, kind), (fake,))
    assert torch.autograd.gradgradcheck(lambda r, f: d_loss(r, f, kind), (real, fake))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_half_precision(kind, dtype):
    real64, fake64 = logits([4, 1, 3, 3], 3.0, 1, "contiguous"), logits([4, 1, 3, 3], 3.0, 2, "contiguous")
    real, fake = (x.detach().to(dtype).requires_grad_(True) for x in (real64, fake64))
    ours = values_and_grads(lambda r, f: d_loss(r, f, kind) + g_loss(f, kind), real, fake)
    # the reference in float64 on the same (rounded) inputs
    theirs = values_and_grads(lambda r, f: reference_d(r, f, kind) + reference_g(f, kind),
                              real.detach().double().requires_grad_(True),
                              fake.detach().double().requires_grad_(True))
    for a, b in zip(ours, theirs):
        assert a.dtype == dtype
        torch.testing.assert_close(a.double(), b, rtol=2e-2, atol=2e-2)


extreme = st.floats(-1e4, 1e4, allow_nan=False, width=32)


@given(st.sampled_from(KINDS), st.lists(extreme, min_size=1, max_size=6),
       st.lists(extreme, min_size=1, max_size=6))
def test_extreme_logits_stay_finite(kind, real, fake):
    real = torch.tensor(real, requires_grad=True)
    fake = torch.tensor(fake + [1e4, -1e4], requires_grad=True)  # always include both extremes
    for value in (d_loss(real, fake, kind), g_loss(fake, kind)):
        grads = torch.autograd.grad(value, (real, fake), allow_unused=True)
        assert torch.isfinite(value)
        assert all(g is None or torch.isfinite(g).all() for g in grads)
    # log D never overflows to inf: a confidently wrong D costs about |logit|, as it should
    torch.testing.assert_close(d_loss(torch.tensor([-1e4]), torch.tensor([1e4])), torch.tensor(2e4))


def test_minimax_saturates_non_saturating_does_not():
    """When D confidently rejects the fakes (D(G(z)) = sigmoid(-20) ~ 2e-9), minimizing
    log(1 - D(G(z))) gives G almost no gradient; maximizing log D(G(z)) gives it ~1 (Goodfellow 2014)."""
    fake = torch.full((8,), -20.0, requires_grad=True)
    (minimax,) = torch.autograd.grad(g_loss(fake, "minimax") * fake.numel(), fake)
    (non_saturating,) = torch.autograd.grad(g_loss(fake, "bce") * fake.numel(), fake)
    assert minimax.abs().max() < 1e-8
    torch.testing.assert_close(non_saturating, torch.full((8,), -1.0))
    # both push the logit the same way (up: a negative gradient, descending raises the logit)
    assert (minimax < 0).all() and (non_saturating < 0).all()


def test_default_kind_and_unknown_kind():
    real, fake = torch.randn(5), torch.randn(5)
    assert torch.equal(d_loss(real, fake), d_loss(real, fake, "bce"))
    assert torch.equal(g_loss(fake), g_loss(fake, "bce"))
    assert KINDS == ("bce", "minimax", "lsgan", "wgan", "hinge")
    with pytest.raises(ValueError, match="'vanilla'.*bce, minimax, lsgan, wgan, hinge"):
        d_loss(real, fake, "vanilla")
    with pytest.raises(ValueError, match="'LSGAN'"):
        g_loss(fake, "LSGAN")


# ---- gradient penalty ------------------------------------------------------------------------------

def linear_critic(weight):
    """D(x) = <w, x> per sample: its gradient is w everywhere, norm ||w||."""
    return lambda x: x.flatten(1) @ weight


@given(st.integers(1, 6), st.integers(1, 3), st.integers(1, 4), st.integers(0, 2**16))
def test_penalty_is_zero_for_unit_gradient_norm(batch, channels, size, seed):
    torch.manual_seed(seed)
    weight = torch.randn(channels * size * size, dtype=torch.float64)
    D = linear_critic(weight / weight.norm())
    real = torch.randn(batch, channels, size, size, dtype=torch.float64)
    fake = torch.randn(batch, channels, size, size, dtype=torch.float64)
    torch.testing.assert_close(gradient_penalty(D, real, fake), torch.tensor(0.0, dtype=torch.float64))


def test_penalty_by_hand():
    # linear D with ||w|| = 5: 10 * (5 - 1)^2, whatever eps is
    D = linear_critic(torch.tensor([3.0, 0.0, 4.0, 0.0], dtype=torch.float64))
    real, fake = torch.randn(6, 1, 2, 2, dtype=torch.float64), torch.randn(6, 1, 2, 2, dtype=torch.float64)
    torch.testing.assert_close(gradient_penalty(D, real, fake), torch.tensor(160.0, dtype=torch.float64))
    torch.testing.assert_close(gradient_penalty(D, real, fake, weight=1.0),
                               torch.tensor(16.0, dtype=torch.float64))
    # D(x) = 1/2 ||x||^2 has gradient x; with real = fake, x_hat = x whatever eps is
    x = torch.tensor([[3.0, 4.0], [0.0, 0.5], [1.0, 0.0]], dtype=torch.float64)
    expected = 10 * ((5 - 1) ** 2 + (0.5 - 1) ** 2 + 0) / 3
    torch.testing.assert_close(gradient_penalty(lambda v: 0.5 * v.square().sum(1), x, x),
                               torch.tensor(expected, dtype=torch.float64))


def test_penalty_interpolates_per_sample():
    seen = []

    def D(x):
        seen.append(x.detach())
        return x.flatten(1).sum(1)

    real, fake = torch.randn(16, 2, 3, 3), torch.randn(16, 2, 3, 3)
    gradient_penalty(D, real, fake)
    eps = (seen[0] - fake) / (real - fake)  # (N, C, H, W): one eps per sample, in [0, 1]
    torch.testing.assert_close(eps, eps[:, :1, :1, :1].expand_as(eps), rtol=1e-4, atol=1e-4)
    assert (eps >= -1e-4).all() and (eps <= 1 + 1e-4).all()
    assert eps[:, 0, 0, 0].std() > 0.1  # different samples get different eps


def test_penalty_trains_the_critic_only():
    weight = torch.tensor([[1.0, 2.0, 2.0]], dtype=torch.float64, requires_grad=True)  # ||w|| = 3
    D = torch.nn.Linear(3, 1, bias=False).double()
    with torch.no_grad():
        D.weight.copy_(weight)
    real = torch.randn(4, 3, dtype=torch.float64)
    fake = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)  # as if straight from G
    gradient_penalty(D, real, fake).backward()
    # d/dw 10 (||w|| - 1)^2 = 20 (||w|| - 1) w / ||w||
    torch.testing.assert_close(D.weight.grad, 20 * (3 - 1) * weight.detach() / 3)
    assert fake.grad is None  # the penalty is D's term: no gradient leaks into G


def test_penalty_gradcheck_through_a_nonlinear_critic():
    """The penalty's gradient w.r.t. D's weights needs the second derivative of D (create_graph)."""
    w1 = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn(5, dtype=torch.float64, requires_grad=True)
    real, fake = torch.randn(3, 6, dtype=torch.float64), torch.randn(3, 6, dtype=torch.float64)

    def penalty(w1, w2):
        torch.manual_seed(0)  # the same eps at every call
        return gradient_penalty(lambda x: torch.tanh(x @ w1) @ w2, real, fake)

    assert torch.autograd.gradcheck(penalty, (w1, w2))
