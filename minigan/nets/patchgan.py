"""Discriminators that judge image patches: the PatchGAN, and the course's avg-pool discriminator.

PatchGAN (pix2pix, also CycleGAN's D). Instead of one real/fake score per image it outputs a grid
of scores, each looking at one patch of the input: the L1 loss already gets the low frequencies
right, so D only needs to judge local texture, and a small patch D is cheaper and works on any size.
With ndf=64 and n_layers=3 (the papers' 70x70 PatchGAN), for a 256x256 input:

    conv 4x4 s2 p1                  -> LReLU(0.2)    (N, 64,  128, 128)   no norm on the first layer
    conv 4x4 s2 p1  -> norm         -> LReLU(0.2)    (N, 128, 64,  64)
    conv 4x4 s2 p1  -> norm         -> LReLU(0.2)    (N, 256, 32,  32)
    conv 4x4 s1 p1  -> norm         -> LReLU(0.2)    (N, 512, 31,  31)
    conv 4x4 s1 p1                                   (N, 1,   30,  30)    one logit per patch

Each of the n_layers stride-2 convs doubles the channels (capped at 8 * ndf), then one stride-1
conv, then the 1-channel conv. Every logit sees a 70x70 patch (`minigan.layers.receptive_field`):

>>> from minigan.layers.receptive_field import receptive_field
>>> [receptive_field(PatchGAN(ndf=8, n_layers=n)) for n in (1, 3, 5)]
[16, 70, 286]

norm="batch" (pix2pix) drops the conv biases before a batch norm (its mean subtraction cancels
them); norm="instance" (CycleGAN) keeps them and runs norm + LeakyReLU as one fused op. Those are
the reference implementation's choices, so its published weights load (`minigan.load_reference`).

>>> import torch
>>> PatchGAN(in_channels=6, ndf=8)(torch.randn(2, 6, 256, 256)).shape
torch.Size([2, 1, 30, 30])
"""
from torch import nn

from .norm_act import activation, norm_act


class PatchGAN(nn.Module):
    """The PatchGAN above. in_channels is 3 (CycleGAN: an image) or 6 (pix2pix: condition + image).

    ndf=64, n_layers=3, LeakyReLU 0.2 are the pix2pix paper's (C64-C128-C256-C512, 70x70 patches).
    """

    def __init__(self, in_channels=3, ndf=64, n_layers=3, norm="batch"):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        bias = norm != "batch"
        layers = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), activation(0.2)]
        channels = ndf
        for n in range(1, n_layers + 1):
            out = ndf * min(2 ** n, 8)
            stride = 2 if n < n_layers else 1  # the last of these keeps the size (minus 1)
            layers += [nn.Conv2d(channels, out, 4, stride=stride, padding=1, bias=bias),
                       norm_act(norm, out, 0.2)]
            channels = out
        layers += [nn.Conv2d(channels, 1, 4, stride=1, padding=1)]  # a logit: no norm, no act
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)  # (N, 1, h, w) logits, one per patch


class PoolDiscriminator64(nn.Module):
    """The course notes' discriminator for 64x64 pix2pix: 3x3 conv pairs between average pools.

    Condition and image are concatenated to 6 channels. Shapes for a batch of 16 (as the notes):

        layer1  conv 5x5 p2 (6 -> 16)               -> BN -> LReLU    (16, 16,  64, 64)
        layer2  avgpool 4, [conv 3x3 p1 -> BN -> LReLU] x 2 (-> 32)    (16, 32,  16, 16)
        layer3  avgpool 2, same pair (-> 64)                          (16, 64,   8,  8)
        layer4  avgpool 2, same pair (-> 128)                         (16, 128,  4,  4)
        layer5  avgpool 2, same pair (-> 256)                         (16, 256,  2,  2)
        layer6  conv 1x1 (256 -> 1)                                   (16, 1,    2,  2)

    A 2x2 grid of logits: a PatchGAN with four big patches. Sizes must be multiples of 32 (the
    pools divide by 4 * 2 * 2 * 2).

    >>> import torch
    >>> PoolDiscriminator64()(torch.randn(16, 6, 64, 64)).shape
    torch.Size([16, 1, 2, 2])
    """

    def __init__(self, in_channels=6):
        super().__init__()

        def conv_bn_lrelu(c_in, c_out, k=3):
            return [nn.Conv2d(c_in, c_out, k, padding=k // 2), nn.BatchNorm2d(c_out),
                    nn.LeakyReLU(0.2)]

        def pooled_pair(pool, c_in, c_out):
            return [nn.AvgPool2d(pool), *conv_bn_lrelu(c_in, c_out), *conv_bn_lrelu(c_out, c_out)]

        self.layers = nn.Sequential(
            *conv_bn_lrelu(in_channels, 16, k=5),  # (N, 16,  64, 64)
            *pooled_pair(4, 16, 32),               # (N, 32,  16, 16)
            *pooled_pair(2, 32, 64),               # (N, 64,   8,  8)
            *pooled_pair(2, 64, 128),              # (N, 128,  4,  4)
            *pooled_pair(2, 128, 256),             # (N, 256,  2,  2)
            nn.Conv2d(256, 1, 1),                  # (N, 1,    2,  2) logits
        )

    def forward(self, x):
        h, w = x.shape[-2:]
        if h % 32 or w % 32:
            raise ValueError(f"PoolDiscriminator64 needs height and width that are multiples of "
                             f"32 (its pools divide by 32), got {h}x{w}: resize to e.g. 64x64")
        return self.layers(x)
