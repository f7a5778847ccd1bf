"""minigan: a minimal, from-scratch, educational GAN codebase.

The layers that courses usually hide behind torch are written out here and proven equal to torch:

- `conv_transpose2d`, `ConvTranspose2d`            transposed convolution (three views)
- `instance_norm`, `InstanceNorm2d`                instance norm with a hand-derived backward
- `instance_norm_leaky_relu`, `InstanceNormLeakyReLU`  the fused IN + (Leaky)ReLU hot path
- `receptive_field`, `receptive_field_table`       the receptive-field formula
- `losses` (`d_loss`, `d_terms`, `g_loss`, `gradient_penalty`)  the GAN games

The package, by role, in the order data flows through a training step:

    minigan/
      errors.py     the one exception for a user's mistake (every layer below may raise it)
      files.py      writing a file atomically (checkpoints, grids, plots, the report)
      layers/       the from-scratch ops above (and their Triton kernels, layers/kernels/)
      nets/         the networks, built from layers/: MLP GAN, DCGAN, ResNet generator, U-Nets, PatchGAN;
                    `load_reference` maps the reference implementation's published weights onto them
      data/         datasets, transforms, downloads, image I/O and grids
      losses.py     the GAN games that score the nets' outputs
      kit/          the training loop the scripts share: run, checkpoints, plots, image pool, sampling
      bench/        `python -m minigan.bench ...`: speed against torch

A module imports only from the rows above it in this data flow (layers from nothing but errors; the kit
from everything, but from no script or test).
"""
import warnings

# `python -m minigan.layers.receptive_field` runs a module this package has already imported (for the
# public names below); runpy warns about that, harmlessly here: the module has no import-time effects.
warnings.filterwarnings("ignore", category=RuntimeWarning,
                        message=r"'minigan\.layers\.receptive_field' found in sys\.modules")

from .errors import MiniganError  # noqa: E402
from .layers import (conv_transpose2d, ConvTranspose2d, instance_norm, InstanceNorm2d,  # noqa: E402
                     instance_norm_leaky_relu, InstanceNormLeakyReLU, receptive_field, receptive_field_table)
from . import losses  # noqa: E402
from .losses import d_loss, d_terms, g_loss, gradient_penalty  # noqa: E402
from .nets.reference import load_reference  # noqa: E402

__all__ = ["MiniganError", "conv_transpose2d", "ConvTranspose2d", "instance_norm", "InstanceNorm2d",
           "instance_norm_leaky_relu", "InstanceNormLeakyReLU", "receptive_field", "receptive_field_table",
           "losses", "d_loss", "d_terms", "g_loss", "gradient_penalty", "load_reference"]
__version__ = "0.1.0"
