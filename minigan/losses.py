"""The GAN games: what the discriminator D and the generator G each minimize.

Goodfellow et al. (2014) set up a two-player minimax game over the value function

    min_G max_D V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]

D(x) = sigmoid(l) is a probability; our discriminators output the raw logit l (no sigmoid), and every
loss here takes those logits. In logits, with softplus(l) = log(1 + e^l):

    log D(x)      = log sigmoid(l)     = -softplus(-l)
    log(1 - D(x)) = log sigmoid(-l)    = -softplus(l)

Written this way there is no log(0) to overflow: softplus(-1e4) is 0, not log(1 + inf) via 1 - 1.

Each game below is two small functions, D's loss and G's loss, next to each other. D's loss is a
sum of two terms, one on the real images and one on the fakes (`d_terms` returns them apart):

    kind      D minimizes: term on real  +  term on fake          G minimizes
    bce       mean softplus(-real)       +  mean softplus(fake)   mean softplus(-fake)
    minimax   as bce                                              -mean softplus(fake)
    lsgan     mean (real - 1)^2          +  mean fake^2           mean (fake - 1)^2
    wgan      -mean real                 +  mean fake             -mean fake
    hinge     mean relu(1 - real)        +  mean relu(1 + fake)   -mean fake

`real` = D(x) and `fake` = D(G(z)) are logits of any shape (a PatchGAN gives one per patch); each loss
is the mean over all of them. D's loss is the game's, not halved: Goodfellow et al.'s -V(D, G), the
DCGAN tutorial's errD = errD_real + errD_fake. pix2pix and CycleGAN halve it ("we divide the
objective by 2 while optimizing D", Isola et al. 2017, sec. 3.3); their scripts do that visibly.
Halving is meant to slow D down relative to G, but with Adam it hardly does: it halves D's
gradients, and Adam divides each gradient by the root of its running mean square, so the step stays
the same except where gradients are as small as Adam's eps (1e-8), which then weighs twice as much
(plain SGD would take half the step). What halving does change is the loss D reports, and its weight
against any term added to it (a gradient penalty).

>>> import torch
>>> real, fake = torch.tensor([3.0]), torch.tensor([-3.0])     # D is right on both
>>> [round(t.item(), 4) for t in d_terms(real, fake)], round(g_loss(fake).item(), 4)
([0.0486, 0.0486], 3.0486)
>>> d_loss(real, fake, kind="wgan")
tensor(-6.)
"""
import torch
import torch.nn.functional as F


# bce: the minimax D, and the "non-saturating" G of Goodfellow et al. (2014): rather than minimize
# log(1 - D(G(z))), G maximizes log D(G(z)). Same fixed point, but strong gradients early on, when D
# rejects every fake with confidence.

def bce_d_loss(real, fake):
    """-E log D(x), -E log(1 - D(G(z))): binary cross-entropy with labels real=1, fake=0."""
    return F.softplus(-real).mean(), F.softplus(fake).mean()


def bce_g_loss(fake):
    """-E log D(G(z)): cross-entropy with the fakes labelled real. d/dl = -sigmoid(-l) -> -1 as l -> -inf."""
    return F.softplus(-fake).mean()


# minimax: the game exactly as written, G minimizes E log(1 - D(G(z))). Its gradient -sigmoid(l)
# vanishes when D confidently rejects the fakes (l -> -inf): G "saturates" and stops learning.

minimax_d_loss = bce_d_loss


def minimax_g_loss(fake):
    """E log(1 - D(G(z))) = -E softplus(l). d/dl = -sigmoid(l) -> 0 as l -> -inf."""
    return -F.softplus(fake).mean()


# lsgan: least squares GAN (Mao et al., 2017), the CycleGAN default. D regresses real -> 1, fake -> 0
# on the raw output, so the gradient grows with distance instead of saturating.

def lsgan_d_loss(real, fake):
    """E (D(x) - 1)^2, E D(G(z))^2."""
    return (real - 1).square().mean(), fake.square().mean()


def lsgan_g_loss(fake):
    """E (D(G(z)) - 1)^2."""
    return (fake - 1).square().mean()


# wgan: Wasserstein GAN (Arjovsky et al., 2017). D is a critic f whose output is a score, not a
# probability; E f(x) - E f(G(z)) estimates the Wasserstein-1 distance when f is 1-Lipschitz
# (enforce that with `gradient_penalty`, or weight clipping).

def wgan_d_loss(real, fake):
    """-E f(x), E f(G(z)): together -(E f(x) - E f(G(z)))."""
    return -real.mean(), fake.mean()


def wgan_g_loss(fake):
    """-E f(G(z))."""
    return -fake.mean()


# hinge: the geometric GAN / SAGAN loss (Lim & Ye, 2017). D stops pushing once real > 1 and fake < -1.

def hinge_d_loss(real, fake):
    """E max(0, 1 - D(x)), E max(0, 1 + D(G(z)))."""
    return F.relu(1 - real).mean(), F.relu(1 + fake).mean()


def hinge_g_loss(fake):
    """-E D(G(z)), as in the WGAN."""
    return -fake.mean()


GAMES = {
    "bce": (bce_d_loss, bce_g_loss),
    "minimax": (minimax_d_loss, minimax_g_loss),
    "lsgan": (lsgan_d_loss, lsgan_g_loss),
    "wgan": (wgan_d_loss, wgan_g_loss),
    "hinge": (hinge_d_loss, hinge_g_loss),
}
KINDS = tuple(GAMES)  # for argparse choices


def _game(kind):
    if kind not in GAMES:
        raise ValueError(f"unknown GAN loss kind {kind!r}; choose one of {', '.join(KINDS)}")
    return GAMES[kind]


def d_terms(real, fake, kind="bce"):
    """D's loss as its two terms (on the real images, on the fakes), from its logits on each.

    >>> import torch
    >>> d_terms(torch.tensor([1.0, 3.0]), torch.tensor([0.0]), kind="lsgan")  # mean (r - 1)^2, mean f^2
    (tensor(2.), tensor(0.))
    """
    return _game(kind)[0](real, fake)


def d_loss(real, fake, kind="bce"):
    """The discriminator's loss from its logits on real images and on fakes (detach the fakes): the
    sum of the two `d_terms`, not halved.

    The default "bce" is Goodfellow's game with the non-saturating G, as in DCGAN and pix2pix.

    >>> import torch
    >>> d_loss(torch.zeros(4), torch.zeros(4))    # D(x) = 1/2 everywhere: log 2 + log 2
    tensor(1.3863)
    """
    on_real, on_fake = d_terms(real, fake, kind)
    return on_real + on_fake


def g_loss(fake, kind="bce"):
    """The generator's loss from the discriminator's logits on its fakes (not detached).

    >>> import torch
    >>> g_loss(torch.tensor([0.0, 2.0]), kind="lsgan")    # mean of (0 - 1)^2 and (2 - 1)^2
    tensor(1.)
    """
    return _game(kind)[1](fake)


def gradient_penalty(D, real, fake, weight=10.0):
    """WGAN-GP (Gulrajani et al., 2017): weight * E[(||grad_x D(x_hat)||_2 - 1)^2].

    x_hat = eps * real + (1 - eps) * fake, with one eps ~ U[0, 1] per sample: a 1-Lipschitz critic
    has gradient norm 1 along such lines, so the penalty pushes D towards it softly (weight 10 is the
    paper's lambda). The gradient is taken with create_graph=True, so the penalty itself can be
    backpropagated into D's parameters; add it to the D loss. For a PatchGAN, the per-sample
    gradient is that of the sum of its patch outputs.

    >>> import torch
    >>> D = torch.nn.Linear(2, 1, bias=False)
    >>> with torch.no_grad():
    ...     _ = D.weight.copy_(torch.tensor([[3.0, 4.0]]))    # ||grad D|| = 5 everywhere
    >>> gradient_penalty(D, torch.randn(8, 2), torch.randn(8, 2))    # 10 * (5 - 1)^2
    tensor(160., grad_fn=<MulBackward0>)
    """
    real, fake = real.detach(), fake.detach()
    eps = torch.rand(real.shape[0], *[1] * (real.dim() - 1), dtype=real.dtype, device=real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)  # (N,)
    return weight * (norm - 1).square().mean()
