"""minigan: a minimal, from-scratch, educational GAN codebase.

The layers that courses usually hide behind torch are written out here and proven equal to torch:

- `conv_transpose2d`, `ConvTranspose2d`            transposed convolution (three views)
- `instance_norm`, `InstanceNorm2d`                instance norm with a hand-derived backward
- `instance_norm_leaky_relu`, `InstanceNormLeakyReLU`  the fused IN + (Leaky)ReLU hot path
- `receptive_field`, `receptive_field_table`       the receptive-field formula
- `losses` (`d_loss`, `g_loss`, `gradient_penalty`)  the GAN games

Networks live in `minigan.nets`, data in `minigan.data`, the training kit in `minigan.kit`.
"""
from .errors import MiniganError
from .conv_transpose import conv_transpose2d, ConvTranspose2d
from .instance_norm import (instance_norm, InstanceNorm2d,
                            instance_norm_leaky_relu, InstanceNormLeakyReLU)
from .receptive_field import receptive_field, receptive_field_table
from . import losses
from .losses import d_loss, g_loss, gradient_penalty
from .reference import load_reference

__version__ = "0.1.0"
