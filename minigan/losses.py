"""GAN losses (placeholder: being written)."""


def d_loss(real, fake, kind="bce"):
    raise NotImplementedError


def g_loss(fake, kind="bce"):
    raise NotImplementedError


def gradient_penalty(D, real, fake, weight=10.0):
    raise NotImplementedError
