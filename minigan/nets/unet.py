"""U-Nets: an encoder-decoder whose decoder also sees the encoder's maps at each scale (skips).

In image-to-image translation input and output share their structure (edges of a shoe sketch are
the edges of the photo). The encoder downsamples to a small code and loses detail; concatenating
each encoder map onto the decoder map of the same size hands that detail straight across.

Three of them, all ending in tanh (images are scaled to [-1, 1]):

- `UNet256`: pix2pix's generator, 8 stride-2 downsamplings (a 256x256 input reaches 1x1);
- `ToyUNet`: the course slides' 3-level C64-C128-C256 example;
- `PoolUNet64`: the course notes' 64x64 U-Net with average pools and nearest upsampling.

>>> import torch
>>> UNet256(ngf=8)(torch.randn(1, 3, 256, 256)).shape
torch.Size([1, 3, 256, 256])
>>> ToyUNet()(torch.randn(2, 3, 64, 64)).shape
torch.Size([2, 3, 64, 64])
>>> PoolUNet64()(torch.randn(16, 3, 64, 64)).shape
torch.Size([16, 3, 64, 64])
"""
import torch
import torch.nn.functional as F
from torch import nn

from ..layers.conv_transpose import ConvTranspose2d
from .norm_act import norm_act


def check_multiple(x, multiple, net):
    """Raise a ValueError naming the size unless H and W are multiples of `multiple`."""
    h, w = x.shape[-2:]
    if h % multiple or w % multiple or h == 0 or w == 0:
        raise ValueError(f"{net} needs height and width that are multiples of {multiple}, got "
                         f"{h}x{w}: resize or crop to e.g. {multiple}x{multiple}")


class Down(nn.Module):
    """conv 4x4 stride 2 pad 1 -> norm -> (Leaky)ReLU: (N, C_in, H, W) -> (N, C_out, H/2, W/2)."""

    def __init__(self, c_in, c_out, norm, negative_slope, bias):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=bias)
        self.norm_act = norm_act(norm, c_out, negative_slope)

    def forward(self, x):
        return self.norm_act(self.conv(x))


class Up(nn.Module):
    """transposed conv 4x4 s2 p1 -> norm -> ReLU [-> dropout]: (N, C_in, H, W) -> (N, C_out, 2H, 2W)."""

    def __init__(self, c_in, c_out, norm, bias, dropout):
        super().__init__()
        self.conv = ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=bias)
        self.norm_act = norm_act(norm, c_out, 0.0)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()  # dropout: a probability

    def forward(self, x):
        return self.dropout(self.norm_act(self.conv(x)))


class UNet256(nn.Module):
    """pix2pix's U-Net generator for 256x256 images (sizes must be multiples of 256).

    Encoder C64-C128-C256-C512-C512-C512-C512-C512 (Ck: 4x4 stride-2 conv with k filters, norm,
    LeakyReLU 0.2; no norm on the first and on the 1x1 bottleneck). Decoder: mirrored transposed
    convs, each followed by norm and ReLU, input = [encoder map of that size, decoder map]. With
    ngf=64 and a (N, 3, 256, 256) input:

        down.0  (N, 64, 128, 128)      up.6  (N, 512, 2, 2)      bottleneck alone
        down.1  (N, 128, 64, 64)       up.5  (N, 512, 4, 4)      [down.6, up.6]  1024 in, dropout
        down.2  (N, 256, 32, 32)       up.4  (N, 512, 8, 8)      [down.5, up.5]  1024 in, dropout
        down.3  (N, 512, 16, 16)       up.3  (N, 512, 16, 16)    [down.4, up.4]  1024 in, dropout
        down.4  (N, 512, 8, 8)         up.2  (N, 256, 32, 32)    [down.3, up.3]  1024 in
        down.5  (N, 512, 4, 4)         up.1  (N, 128, 64, 64)    [down.2, up.2]  512 in
        down.6  (N, 512, 2, 2)         up.0  (N, 64, 128, 128)   [down.1, up.1]  256 in
        down.7  (N, 512, 1, 1)         out   (N, 3, 256, 256)    [down.0, up.0]  128 in, tanh

    Dropout (probability `dropout`, 0.5 in the paper) sits in the three up blocks after the
    innermost one, as in the reference implementation (whose weights this loads); it is on in
    train() and off in eval(), like torch's. dropout=0 leaves it out (the reference's --no_dropout).

    Where the fused instance norm + activation applies (norm="instance"). The reference writes each
    level as LReLU -> conv -> norm, activating a map when the next level reads it; read across the
    levels that is conv -> norm -> LReLU, the order the fused op needs, so `Down` computes
    a = LReLU(IN(conv(x))) in one pass. The skip then carries a instead of IN(conv(x)); that changes
    nothing, because the decoder's first step on a concatenation is a ReLU and
    ReLU(LReLU(v)) = ReLU(v). Likewise the decoder's "ReLU -> conv -> norm" is read as
    conv -> norm -> ReLU with the ReLU fused. Dropout after ReLU equals dropout before it (it only
    zeroes or scales by 2 > 0). So every norm in the network runs fused with its activation.

    norm="batch" (pix2pix, the default) drops the biases of all convs but the last, as the reference
    does (before BN they are cancelled by its mean; the reference drops them even on the two convs
    without a norm after them, and the loader needs the same parameters); "instance" keeps them.
    """

    def __init__(self, in_channels=3, out_channels=3, ngf=64, norm="batch", dropout=0.5):
        super().__init__()
        bias = norm != "batch"
        enc = [ngf, 2 * ngf, 4 * ngf] + [8 * ngf] * 5  # channels after each of the 8 downsamplings
        self.down = nn.ModuleList(
            [Down(in_channels, enc[0], "none", 0.2, bias)]
            + [Down(enc[i - 1], enc[i], norm, 0.2, bias) for i in range(1, 7)]
            # The 1x1 bottleneck: no norm, and its ReLU is the decoder's first step.
            + [Down(enc[6], enc[7], "none", 0.0, bias)])
        # up[i] mirrors down[i + 1]: back to the size down[i] produced; its input is the previous
        # decoder map concatenated with the encoder map of that size, except for the innermost.
        self.up = nn.ModuleList(
            [Up(2 * enc[i + 1], enc[i], norm, bias, dropout if i in (3, 4, 5) else 0.0) for i in range(6)]
            + [Up(enc[7], enc[6], norm, bias, dropout=0.0)])
        self.out = ConvTranspose2d(2 * enc[0], out_channels, 4, stride=2, padding=1)

    def forward(self, x):
        check_multiple(x, 256, "UNet256")
        skips = []
        h = x
        for down in self.down:  # (N, C, H, W) -> ... -> (N, 8ngf, H/256, W/256)
            h = down(h)
            skips.append(h)
        h = self.up[-1](skips.pop())  # the bottleneck is not concatenated anywhere
        for up in reversed(self.up[:-1]):
            # ReLU on the skip: the decoder's activation (see the class docstring).
            h = up(torch.cat([F.relu(skips.pop()), h], dim=1))
        return torch.tanh(self.out(torch.cat([F.relu(skips.pop()), h], dim=1)))  # (N, out, H, W)


class ToyUNet(nn.Module):
    """The course slides' toy U-Net: encoder C64-C128-C256, decoder C128-C64-C3, no norms.

    4x4 stride-2 convs, LeakyReLU 0.2 in the encoder, ReLU in the decoder, tanh at the end (the
    slides return the raw last map; tanh matches images in [-1, 1]). Sizes: multiples of 8.
    For a (N, 3, 64, 64) input:

        e1 = conv1(x)                             (N, 64, 32, 32)
        e2 = conv2(LReLU(e1))                     (N, 128, 16, 16)
        e3 = conv3(LReLU(e2))                     (N, 256, 8, 8)
        d1 = [deconv1(ReLU(e3)), e2]              (N, 128 + 128, 16, 16)
        d2 = [deconv2(ReLU(d1)), e1]              (N, 64 + 64, 32, 32)
        y  = tanh(deconv3(ReLU(d2)))              (N, 3, 64, 64)
    """

    def __init__(self, in_channels=3, out_channels=3, ngf=64):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, ngf, 4, 2, 1)
        self.conv2 = nn.Conv2d(ngf, ngf * 2, 4, 2, 1)
        self.conv3 = nn.Conv2d(ngf * 2, ngf * 4, 4, 2, 1)
        self.deconv1 = ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1)
        self.deconv2 = ConvTranspose2d(ngf * 2 * 2, ngf, 4, 2, 1)
        self.deconv3 = ConvTranspose2d(ngf * 2, out_channels, 4, 2, 1)

    def forward(self, x):
        check_multiple(x, 8, "ToyUNet")
        e1 = self.conv1(x)
        e2 = self.conv2(F.leaky_relu(e1, 0.2))
        e3 = self.conv3(F.leaky_relu(e2, 0.2))
        d1 = torch.cat([self.deconv1(F.relu(e3)), e2], dim=1)
        d2 = torch.cat([self.deconv2(F.relu(d1)), e1], dim=1)
        return torch.tanh(self.deconv3(F.relu(d2)))


def encoder_block(c_in, c_out, kernel=3, pool=None):
    """The notes' `gblock`: [avgpool] -> conv -> LeakyReLU(0.2) -> BN -> ReLU.

    The order (LeakyReLU, then BN, then ReLU) is the notes' own; the usual order is conv-BN-ReLU.
    """
    layers = [nn.AvgPool2d(pool)] if pool else []
    return nn.Sequential(*layers, nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2),
                         nn.LeakyReLU(0.2), nn.BatchNorm2d(c_out), nn.ReLU())


def decoder_block(c_in, c_out, scale):
    """Nearest-neighbour upsampling by `scale`, conv 3x3 -> BN -> ReLU."""
    return nn.Sequential(nn.Upsample(scale_factor=scale, mode="nearest"),
                         nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU())


class PoolUNet64(nn.Module):
    """The course notes' 64x64 U-Net: average pools down, nearest upsampling up, 3x3 convs.

    Shapes for the notes' batch of 16 (decoder maps are concatenated with the encoder's, [d, e]):

        enc1  conv 5x5 p2 (3 -> 32)                      (16, 32, 64, 64)
        enc2  avgpool 4, conv 3x3 p1 (32 -> 64)          (16, 64, 16, 16)
        enc3  avgpool 2, conv 3x3 p1 (64 -> 128)         (16, 128, 8, 8)
        enc4  avgpool 2, conv 3x3 p1 (128 -> 256)        (16, 256, 4, 4)
        dec1  up x2, conv (256 -> 128)                   (16, 128, 8, 8)
        dec2  [dec1, enc3], up x2, conv (256 -> 64)      (16, 64, 16, 16)
        dec3  [dec2, enc2], up x4, conv (128 -> 32)      (16, 32, 64, 64)
        out   [dec3, enc1], conv 5x5 p2 (64 -> 3), tanh  (16, 3, 64, 64)

    Fixes to the notes' OCR: enc2's conv has padding 1 (its worked size uses 2 x 1), dec2's conv
    outputs 64 channels (its worked shape says so), and dec3 upsamples by 4, not 2: it must get
    from 16x16 back to enc1's 64x64, mirroring enc2's pool of 4. Sizes: multiples of 16.
    """

    def __init__(self, in_channels=3, out_channels=3):
        super().__init__()
        self.enc1 = encoder_block(in_channels, 32, kernel=5)
        self.enc2 = encoder_block(32, 64, pool=4)
        self.enc3 = encoder_block(64, 128, pool=2)
        self.enc4 = encoder_block(128, 256, pool=2)
        self.dec1 = decoder_block(256, 128, scale=2)
        self.dec2 = decoder_block(128 + 128, 64, scale=2)
        self.dec3 = decoder_block(64 + 64, 32, scale=4)
        self.out = nn.Conv2d(32 + 32, out_channels, 5, padding=2)

    def forward(self, x):
        check_multiple(x, 16, "PoolUNet64")
        e1 = self.enc1(x)                          # (N, 32, H, W)
        e2 = self.enc2(e1)                         # (N, 64, H/4, W/4)
        e3 = self.enc3(e2)                         # (N, 128, H/8, W/8)
        e4 = self.enc4(e3)                         # (N, 256, H/16, W/16)
        d1 = self.dec1(e4)                         # (N, 128, H/8, W/8)
        d2 = self.dec2(torch.cat([d1, e3], 1))     # (N, 64, H/4, W/4)
        d3 = self.dec3(torch.cat([d2, e2], 1))     # (N, 32, H, W)
        return torch.tanh(self.out(torch.cat([d3, e1], 1)))  # (N, out, H, W)
