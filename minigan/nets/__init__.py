"""The networks, built from `minigan.layers` and torch's own layers: the MLP GAN and DCGAN
(`mlp_dcgan`), CycleGAN's ResNet generator, pix2pix's U-Net-256 and the course's small U-Nets (`unet`),
PatchGAN and the course's avg-pool discriminator (`patchgan`), and the norm + activation pair they
repeat (`norm_act`).

`reference` maps the reference implementation's published state_dicts onto these nets. Data from
`minigan.data` goes in, `minigan.losses` scores what comes out, and `minigan.kit` trains them.
"""
from .mlp_dcgan import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from .patchgan import PatchGAN, PoolDiscriminator64
from .reference import load_reference
from .resnet_generator import ResnetGenerator
from .unet import PoolUNet64, ToyUNet, UNet256

__all__ = ["DCGANDiscriminator", "DCGANGenerator", "MLPDiscriminator", "MLPGenerator", "PatchGAN",
           "PoolDiscriminator64", "load_reference", "ResnetGenerator", "PoolUNet64", "ToyUNet", "UNet256"]
