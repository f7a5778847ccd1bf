"""The noise-to-image networks: the course's MLP GAN for MNIST and the DCGAN of Radford et al.

Both generators map z ~ N(0, I) in R^nz (nz = 100) to an image in [-1, 1] (tanh); both
discriminators return one logit per image, D(x) = sigmoid(logit) being the probability "real": the
losses in `minigan.losses` take logits, which is numerically safer than a sigmoid layer + log.

MLP GAN (the course's Generator_0 / Discriminator_0), for 28x28 MNIST:

    G: z 100 -> 256 -> 512 -> 1024 -> 784 -> 1x28x28     LeakyReLU(0.2) between, tanh at the end
    D: 1x28x28 -> 784 -> 2048 -> 1024 -> 512 -> 256 -> 1  LeakyReLU(0.2) + Dropout(0.3) between

DCGAN (the PyTorch tutorial's 64x64 net; ngf = ndf = 64, k4 = 4x4 kernels):

    G: z 100x1x1 -ConvT k4 s1 p0-> 512x4x4 -> 256x8x8 -> 128x16x16 -> 64x32x32 -> Cx64x64
       each ConvT k4 s2 p1 doubles the size: out = (in - 1) * 2 - 2 * 1 + 4 = 2 * in
       BN + ReLU after every layer but the last, which has tanh (Radford et al., sec. 3)
    D: Cx64x64 -conv k4 s2 p1-> 64x32x32 -> 128x16x16 -> 256x8x8 -> 512x4x4 -conv k4 s1 p0-> 1x1x1
       LeakyReLU(0.2) after every layer but the last, BN on all but the first (the paper: no BN on
       D's input layer) and the last

>>> G, D = DCGANGenerator(channels=3), DCGANDiscriminator(channels=3)
>>> fake = G(torch.randn(2, 100))
>>> fake.shape, D(fake).shape
(torch.Size([2, 3, 64, 64]), torch.Size([2]))
>>> MLPGenerator()(torch.randn(2, 100)).shape
torch.Size([2, 1, 28, 28])
"""
import torch
from torch import nn

from ..layers.conv_transpose import ConvTranspose2d


class MLPGenerator(nn.Module):
    def __init__(self, nz=100, image_size=28, channels=1, hidden=(256, 512, 1024)):
        super().__init__()
        self.shape = (channels, image_size, image_size)
        sizes = (nz, *hidden)
        layers = []
        for n_in, n_out in zip(sizes, sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], channels * image_size**2), nn.Tanh())

    def forward(self, z):                          # N x nz
        return self.net(z).view(-1, *self.shape)   # N x C x S x S


class MLPDiscriminator(nn.Module):
    def __init__(self, image_size=28, channels=1, hidden=(2048, 1024, 512, 256), dropout=0.3):
        super().__init__()
        sizes = (channels * image_size**2, *hidden)
        layers = [nn.Flatten()]                    # N x C x S x S -> N x C*S*S
        for n_in, n_out in zip(sizes, sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], 1))

    def forward(self, x):
        return self.net(x).view(-1)                # N logits


class DCGANGenerator(nn.Module):
    def __init__(self, nz=100, ngf=64, channels=3):
        super().__init__()

        def up(n_in, n_out, stride=2, padding=1):  # ConvT k4 + BN + ReLU; no bias: BN's shift replaces it
            return [ConvTranspose2d(n_in, n_out, 4, stride, padding, bias=False), nn.BatchNorm2d(n_out), nn.ReLU()]

        self.net = nn.Sequential(
            *up(nz, ngf * 8, stride=1, padding=0),  # 512 x 4 x 4
            *up(ngf * 8, ngf * 4),                  # 256 x 8 x 8
            *up(ngf * 4, ngf * 2),                  # 128 x 16 x 16
            *up(ngf * 2, ngf),                      # 64 x 32 x 32
            ConvTranspose2d(ngf, channels, 4, 2, 1, bias=False), nn.Tanh())  # C x 64 x 64

    def forward(self, z):                           # N x nz, or N x nz x 1 x 1
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    def __init__(self, ndf=64, channels=3):
        super().__init__()

        def down(n_in, n_out, norm=True):           # conv k4 s2 p1 halves the size
            return [nn.Conv2d(n_in, n_out, 4, 2, 1, bias=False),
                    *([nn.BatchNorm2d(n_out)] if norm else []), nn.LeakyReLU(0.2)]

        self.net = nn.Sequential(
            *down(channels, ndf, norm=False),       # 64 x 32 x 32
            *down(ndf, ndf * 2),                    # 128 x 16 x 16
            *down(ndf * 2, ndf * 4),                # 256 x 8 x 8
            *down(ndf * 4, ndf * 8),                # 512 x 4 x 4
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False))  # 1 x 1 x 1

    def forward(self, x):                           # N x C x 64 x 64
        return self.net(x).view(-1)                 # N logits
