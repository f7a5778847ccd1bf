"""Receptive field: how many input pixels one output pixel of a conv/pool stack can see.

Stack layers i = 1..n, each with kernel k_i and stride s_i. One step of layer i moves the window by
s_i of its *input* pixels, which are themselves prod_{j<i} s_j input-image pixels apart (the "jump").
So widening the window by k_i - 1 steps of layer i's input widens the field by (k_i - 1) * jump:

    r_0 = 1,  j_0 = 1
    r_i = r_{i-1} + (k_i - 1) * j_{i-1}         j_{i-1} = prod_{j<i} s_j
    j_i = j_{i-1} * s_i

A dilated kernel (dilation d) spans d * (k - 1) + 1 pixels, so it counts as that kernel size. Padding
only adds border pixels; it does not change how far one output pixel reaches. Height and width are
computed independently (kernels and strides may be (h, w) pairs).

Worked example, the 70x70 PatchGAN of pix2pix / CycleGAN (five 4x4 convs, strides 2, 2, 2, 1, 1):

    layer   k  s  jump before  r
    conv1   4  2      1        1 + 3*1 =  4
    conv2   4  2      2        4 + 3*2 = 10
    conv3   4  2      4       10 + 3*4 = 22
    conv4   4  1      8       22 + 3*8 = 46
    conv5   4  1      8       46 + 3*8 = 70

>>> receptive_field([(4, 2), (4, 2), (4, 2), (4, 1), (4, 1)])
70
>>> receptive_field([(3, 1, 2), (3, 1, 2)])      # two dilated 3x3 convs: each spans 5 pixels
9
>>> receptive_field([((3, 1), 1), (2, 2)])       # a 3x1 kernel: the field is not square
(4, 2)

`python -m minigan.layers.receptive_field` prints the table for the 1-, 3- and 5-layer PatchGANs (16, 70, 286).
"""
import argparse
from typing import NamedTuple

from torch import nn

# Layers that act on each pixel position alone (or only add a border): they leave the field as it is.
POINTWISE = (
    nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid,
    nn.Hardtanh, nn.Softplus, nn.Identity,
    nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm,
    nn.Dropout, nn.Dropout2d,
    nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d,
)


class Row(NamedTuple):
    """One layer of the table. Each number is an int, or an (h, w) pair when height and width differ."""
    layer: str    # the layer's name
    kernel: object  # effective kernel size d * (k - 1) + 1
    stride: object
    jump: object  # distance, in input pixels, between neighbouring outputs of this layer
    size: object  # receptive field of one output pixel of this layer, in input pixels


def _pair(value, name, layer):
    """An int or an (h, w) pair -> (h, w); anything else is the caller's mistake."""
    pair = (value, value) if isinstance(value, int) else value
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2
            or not all(isinstance(v, int) and v >= 1 for v in pair)):
        raise ValueError(f"receptive_field: layer {layer!r} has {name}={value!r}; "
                         f"expected a positive int or an (h, w) pair of them")
    return tuple(pair)


def _square(pair):
    """(h, w) -> h when h == w, so square stacks give plain ints."""
    return pair[0] if pair[0] == pair[1] else tuple(pair)


def _walk_module(module, prefix=""):
    """Yield (name, kernel, stride, dilation) for each conv/pool leaf, in registration order.

    Registration order is forward order only for a chain (nn.Sequential, or a module whose forward
    calls its layers one after another); a U-Net's skips or a ResNet's shortcuts are not a chain.
    """
    for child_name, child in module.named_children():
        name = f"{prefix}.{child_name}" if prefix else child_name
        kind = type(child).__name__
        if isinstance(child, nn.ConvTranspose2d) or "ConvTranspose" in kind:
            raise ValueError(f"receptive_field: layer {name!r} ({kind}) upsamples; the formula "
                             f"covers only convolutions and pools")
        if isinstance(child, nn.Conv2d):  # also covers parametrized convs (spectral norm)
            yield name, child.kernel_size, child.stride, child.dilation
        elif isinstance(child, nn.MaxPool2d):
            yield name, child.kernel_size, child.stride or child.kernel_size, child.dilation
        elif isinstance(child, nn.AvgPool2d):
            yield name, child.kernel_size, child.stride or child.kernel_size, 1
        elif isinstance(child, POINTWISE) or "InstanceNorm" in kind:  # minigan's norms too
            continue
        elif next(child.children(), None) is not None or isinstance(child, (nn.Sequential, nn.ModuleList)):
            # a container: look inside
            yield from _walk_module(child, name)
        else:
            raise ValueError(f"receptive_field: cannot reason about layer {name!r} ({kind}); "
                             f"only Conv2d, MaxPool2d, AvgPool2d and pointwise layers are understood")


def _layers(spec):
    """spec (a list of tuples or an nn.Module) -> list of (name, (kh, kw), (sh, sw), (dh, dw))."""
    if isinstance(spec, nn.Module):
        items = list(_walk_module(spec))
    else:
        items = []
        for i, layer in enumerate(spec, start=1):
            if not isinstance(layer, (tuple, list)) or len(layer) not in (2, 3):
                raise ValueError(f"receptive_field: layer {i} is {layer!r}; expected "
                                 f"(kernel, stride) or (kernel, stride, dilation)")
            items.append((f"layer{i}", *layer) if len(layer) == 3 else (f"layer{i}", *layer, 1))
    return [(name, _pair(k, "kernel", name), _pair(s, "stride", name), _pair(d, "dilation", name))
            for name, k, s, d in items]


def receptive_field_table(spec):
    """Per-layer rows (layer, kernel, stride, jump, size) of the formula above.

    >>> for row in receptive_field_table([(4, 2), (4, 2), (4, 1)]):
    ...     print(row)
    Row(layer='layer1', kernel=4, stride=2, jump=2, size=4)
    Row(layer='layer2', kernel=4, stride=2, jump=4, size=10)
    Row(layer='layer3', kernel=4, stride=1, jump=4, size=22)
    """
    rows = []
    size, jump = [1, 1], [1, 1]  # r_0 = 1, j_0 = 1, for height and width
    for name, kernel, stride, dilation in _layers(spec):
        kernel = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
        size = [r + (k - 1) * j for r, k, j in zip(size, kernel, jump)]  # uses the jump *before*
        jump = [j * s for j, s in zip(jump, stride)]
        rows.append(Row(name, _square(kernel), _square(stride), _square(jump), _square(size)))
    return rows


def receptive_field(spec):
    """Receptive field of the last layer's output pixels, in input pixels: an int, or (h, w).

    `spec` is a list of (kernel, stride) or (kernel, stride, dilation) tuples (ints or (h, w) pairs),
    or an nn.Module whose Conv2d / MaxPool2d / AvgPool2d layers form a chain in registration order.
    Pointwise layers (activations, norms, dropout, padding) are skipped; anything else raises.

    >>> from torch import nn
    >>> receptive_field(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.LeakyReLU(0.2),
    ...                               nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1)))
    8
    >>> receptive_field([])
    1
    """
    rows = receptive_field_table(spec)
    return rows[-1].size if rows else 1


def patchgan_spec(n_layers=3):
    """The PatchGAN discriminator's convs: n_layers 4x4 stride-2 convs, then two 4x4 stride-1 convs.

    >>> [receptive_field(patchgan_spec(n)) for n in (1, 3, 5)]
    [16, 70, 286]
    """
    return [(4, 2)] * n_layers + [(4, 1), (4, 1)]


def format_table(rows):
    """The rows as aligned text, starting from the input image (r_0 = 1, j_0 = 1)."""
    lines = [f"{'layer':<8} {'kernel':>7} {'stride':>7} {'jump':>7} {'size':>9}",
             f"{'input':<8} {'':>7} {'':>7} {1:>7} {1:>9}"]
    for row in rows:
        lines.append(f"{row.layer:<8} {row.kernel!s:>7} {row.stride!s:>7} {row.jump!s:>7} "
                     f"{row.size!s:>9}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Receptive field of the PatchGAN discriminator.")
    parser.add_argument("--layers", type=int, help="stride-2 layers, n_layers (default: 1, 3 and 5)")
    args = parser.parse_args(argv)
    if args.layers is not None and args.layers < 0:
        parser.error(f"--layers must be >= 0, got {args.layers}")
    for n in [args.layers] if args.layers is not None else [1, 3, 5]:
        rows = [row._replace(layer=f"conv{i}")
                for i, row in enumerate(receptive_field_table(patchgan_spec(n)), start=1)]
        size = rows[-1].size
        print(f"PatchGAN with n_layers={n}: each output pixel sees {size}x{size} input pixels")
        print(format_table(rows))
        print()


if __name__ == "__main__":
    main()
