"""The from-scratch layers: the ops courses usually hide behind torch, each written out and proven equal
to torch forward and backward by the property tests.

Transposed convolution (three views), instance norm and the fused instance norm + (Leaky)ReLU with a
hand-derived backward (`kernels/` holds its Triton kernels), and the receptive-field calculator. These
import nothing else from minigan but `errors`: the nets in `minigan.nets` are built from them.
"""
from .conv_transpose import conv_transpose2d, ConvTranspose2d
from .instance_norm import instance_norm, InstanceNorm2d, instance_norm_leaky_relu, InstanceNormLeakyReLU
from .receptive_field import receptive_field, receptive_field_table

__all__ = ["conv_transpose2d", "ConvTranspose2d", "instance_norm", "InstanceNorm2d", "instance_norm_leaky_relu",
           "InstanceNormLeakyReLU", "receptive_field", "receptive_field_table"]
