"""minigan: a minimal, from-scratch, educational GAN codebase.

The layers that courses usually hide behind torch are written out here and proven equal to torch:

- `conv_transpose2d`, `ConvTranspose2d`            transposed convolution (three views)
- `instance_norm`, `InstanceNorm2d`                instance norm with a hand-derived backward
- `instance_norm_leaky_relu`, `InstanceNormLeakyReLU`  the fused IN + (Leaky)ReLU hot path
- `receptive_field`, `receptive_field_table`       the receptive-field formula
- `losses` (`d_loss`, `g_loss`, `gradient_penalty`)  the GAN games

Networks: `minigan.nets` (MLP GAN, DCGAN), `minigan.resnet_generator` (CycleGAN), `minigan.unet`
(pix2pix and the course's small U-Nets), `minigan.patchgan` (PatchGAN and the course's avg-pool
discriminator); `load_reference` maps the reference implementation's published weights onto them.
Data: `minigan.data`, `minigan.download`, `minigan.images`. Training kit: `minigan.kit`.
"""
import warnings

# `python -m minigan.receptive_field` runs a module this package has already imported (for the
# public names below); runpy warns about that, harmlessly here: the module has no import-time effects.
warnings.filterwarnings("ignore", category=RuntimeWarning,
                        message=r"'minigan\.receptive_field' found in sys\.modules")

from .errors import MiniganError  # noqa: E402
from .conv_transpose import conv_transpose2d, ConvTranspose2d
from .instance_norm import (instance_norm, InstanceNorm2d,
                            instance_norm_leaky_relu, InstanceNormLeakyReLU)
from .receptive_field import receptive_field, receptive_field_table
from . import losses
from .losses import d_loss, g_loss, gradient_penalty
from .reference import load_reference

__all__ = ["MiniganError", "conv_transpose2d", "ConvTranspose2d", "instance_norm", "InstanceNorm2d",
           "instance_norm_leaky_relu", "InstanceNormLeakyReLU", "receptive_field", "receptive_field_table",
           "losses", "d_loss", "g_loss", "gradient_penalty", "load_reference"]
__version__ = "0.1.0"
