"""The CycleGAN generator: downsample twice, transform with residual blocks, upsample twice.

Johnson et al.'s style-transfer network as CycleGAN uses it (c7s1-64, d128, d256, R256 x 9, u128,
u64, c7s1-3). IN is instance norm without affine parameters (the convs keep their biases instead):

    stem    reflect-pad 3, conv 7x7          -> IN -> ReLU     (N, ngf,   H,   W)
    down1   conv 3x3 stride 2, pad 1         -> IN -> ReLU     (N, 2ngf,  H/2, W/2)
    down2   conv 3x3 stride 2, pad 1         -> IN -> ReLU     (N, 4ngf,  H/4, W/4)
    blocks  n_blocks x  y = x + IN(conv(ReLU(IN(conv(x)))))    (N, 4ngf,  H/4, W/4)
            (both 3x3 convs reflect-pad 1)
    up1     transposed conv 3x3 s2 p1 op1    -> IN -> ReLU     (N, 2ngf,  H/2, W/2)
    up2     transposed conv 3x3 s2 p1 op1    -> IN -> ReLU     (N, ngf,   H,   W)
    head    reflect-pad 3, conv 7x7          -> tanh           (N, out,   H,   W)

Every "IN -> ReLU" is one fused call, `minigan.instance_norm_leaky_relu(h, negative_slope=0.0)`; the
norms have no parameters, so the network holds only convs and its forward reads as the table above.
Reflection padding (instead of zeros) avoids dark borders in the translated images.

Sizes: the two stride-2 convs and the two transposed convs (output_padding 1) only round-trip
sizes that are multiples of 4 (250 -> 125 -> 63 -> 126 -> 252 != 250), so other sizes raise a
ValueError that names the nearest sizes that work, instead of silently returning a bigger image.

>>> import torch
>>> net = ResnetGenerator(ngf=4, n_blocks=2)
>>> net(torch.randn(1, 3, 32, 32)).shape
torch.Size([1, 3, 32, 32])
>>> net(torch.randn(1, 3, 30, 30))
Traceback (most recent call last):
...
ValueError: ResnetGenerator needs height and width that are multiples of 4 and at least 8, got 30x30: resize or crop to e.g. 28x28 or 32x32
"""
import torch
from torch import nn

from ..layers.conv_transpose import ConvTranspose2d
from ..layers.instance_norm import instance_norm, instance_norm_leaky_relu


def in_relu(h):
    """Instance norm (no affine) then ReLU, fused into one pass over h."""
    return instance_norm_leaky_relu(h, negative_slope=0.0)


class ResidualBlock(nn.Module):
    """y = x + IN(conv(ReLU(IN(conv(x))))): the block learns a correction to x, same shape as x."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")

    def forward(self, x):
        return x + instance_norm(self.conv2(in_relu(self.conv1(x))))


class ResnetGenerator(nn.Module):
    """CycleGAN's generator; see the module docstring for the layers and the sizes it accepts.

    ngf=64 and n_blocks=9 are the CycleGAN paper's for 256x256 images (it uses 6 blocks for 128x128).
    """

    def __init__(self, in_channels=3, out_channels=3, ngf=64, n_blocks=9):
        super().__init__()
        self.n_blocks = n_blocks
        self.stem = nn.Conv2d(in_channels, ngf, 7, padding=3, padding_mode="reflect")
        self.down1 = nn.Conv2d(ngf, 2 * ngf, 3, stride=2, padding=1)
        self.down2 = nn.Conv2d(2 * ngf, 4 * ngf, 3, stride=2, padding=1)
        self.blocks = nn.Sequential(*[ResidualBlock(4 * ngf) for _ in range(n_blocks)])
        # output_padding=1 makes each transposed conv exactly double the size (2h - 1 + 1 = 2h).
        self.up1 = ConvTranspose2d(4 * ngf, 2 * ngf, 3, stride=2, padding=1, output_padding=1)
        self.up2 = ConvTranspose2d(2 * ngf, ngf, 3, stride=2, padding=1, output_padding=1)
        self.head = nn.Conv2d(ngf, out_channels, 7, padding=3, padding_mode="reflect")

    def forward(self, x):
        check_multiple_of_4(x)
        h = in_relu(self.stem(x))     # (N, ngf,  H,   W)
        h = in_relu(self.down1(h))    # (N, 2ngf, H/2, W/2)
        h = in_relu(self.down2(h))    # (N, 4ngf, H/4, W/4)
        h = self.blocks(h)            # (N, 4ngf, H/4, W/4)
        h = in_relu(self.up1(h))      # (N, 2ngf, H/2, W/2)
        h = in_relu(self.up2(h))      # (N, ngf,  H,   W)
        return torch.tanh(self.head(h))  # (N, out, H, W), in [-1, 1] like the training images


def check_multiple_of_4(x):
    """Raise a ValueError naming the size unless H and W are multiples of 4 and at least 8.

    At least 8: the residual blocks reflect-pad a H/4 x W/4 map by 1, which needs 2 pixels.
    """
    h, w = x.shape[-2:]
    if h % 4 or w % 4 or h < 8 or w < 8:
        below = [max(8, n // 4 * 4) for n in (h, w)]         # round down to a multiple of 4
        above = [max(8, (n + 3) // 4 * 4) for n in (h, w)]   # round up
        raise ValueError(f"ResnetGenerator needs height and width that are multiples of 4 and at "
                         f"least 8, got {h}x{w}: resize or crop to e.g. {below[0]}x{below[1]} or "
                         f"{above[0]}x{above[1]}")
