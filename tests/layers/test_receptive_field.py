"""The receptive-field formula against the definition: which input pixels one output pixel depends on.

With all-positive weights (all-ones convs, average pools, no nonlinearity) no two paths can cancel,
so the input pixels with a nonzero gradient of one output pixel are exactly the pixels it sees.
"""
import pytest
import torch
from hypothesis import given, strategies as st
from torch import nn

import minigan
from minigan.layers.receptive_field import main, patchgan_spec, receptive_field, receptive_field_table

sizes = st.one_of(st.integers(1, 5), st.tuples(st.integers(1, 5), st.integers(1, 5)))
strides = st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)))
dilations = st.one_of(st.integers(1, 2), st.tuples(st.integers(1, 2), st.integers(1, 2)))
# ("conv", kernel, stride, dilation) or ("pool", kernel, stride)
convs = st.tuples(st.just("conv"), sizes, strides, dilations)
pools = st.tuples(st.just("pool"), sizes, strides)
stacks = st.lists(st.one_of(convs, pools), min_size=1, max_size=4)


def as_pair(v):
    return (v, v) if isinstance(v, int) else v


def as_spec(stack):
    return [layer[1:] for layer in stack]


def ones_net(stack):
    """The stack as positive-weight layers without padding: all-ones convs, average pools."""
    layers = []
    for kind, kernel, stride, *dilation in stack:
        if kind == "conv":
            conv = nn.Conv2d(1, 1, kernel, stride, dilation=dilation[0], bias=False).double()
            nn.init.ones_(conv.weight)
            layers.append(conv)
        else:
            layers.append(nn.AvgPool2d(kernel, stride))
    return nn.Sequential(*layers)


def measured_field(net, height, width):
    """Extent (rows, cols) of the input pixels the central output pixel depends on."""
    x = torch.zeros(1, 1, height, width, dtype=torch.float64, requires_grad=True)
    out = net(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows, cols = torch.nonzero(x.grad[0, 0], as_tuple=True)
    # the field must lie inside the image, else the image was too small to measure it
    assert rows.min() > 0 and cols.min() > 0 and rows.max() < height - 1 and cols.max() < width - 1
    return (rows.max() - rows.min() + 1).item(), (cols.max() - cols.min() + 1).item()


@given(stacks)
def test_formula_equals_measured_field(stack):
    size = as_pair(receptive_field(as_spec(stack)))
    jump = as_pair(receptive_field_table(as_spec(stack))[-1].jump)
    # room for the field on both sides of the central output pixel, plus a border
    height, width = (2 * r + 2 * j + 4 for r, j in zip(size, jump))
    assert measured_field(ones_net(stack), height, width) == size


def test_measured_patchgan_is_70():
    net = ones_net([("conv", k, s, 1) for k, s in patchgan_spec(3)])
    assert measured_field(net, 160, 160) == (70, 70)


def module_net(stack, padding, pointwise):
    """The stack as a real-looking network: channels, padding, pointwise layers, nested containers."""
    layers, channels = [], 3
    for i, (kind, kernel, stride, *dilation) in enumerate(stack):
        if kind == "conv":
            layers.append(nn.Conv2d(channels, 4, kernel, stride, padding=padding, dilation=dilation[0]))
            channels = 4
        elif i % 2:
            layers.append(nn.MaxPool2d(kernel, stride))
        else:
            layers.append(nn.AvgPool2d(kernel, stride))
        if pointwise:
            layers.append(nn.Sequential(nn.InstanceNorm2d(channels), nn.LeakyReLU(0.2),
                                        nn.Dropout(0.5), nn.ReflectionPad2d(1)))
    return nn.Sequential(nn.Sequential(*layers[: len(layers) // 2]),
                         nn.Sequential(*layers[len(layers) // 2:]))


@given(stacks, st.integers(0, 2), st.booleans())
def test_module_walk_equals_list(stack, padding, pointwise):
    net = module_net(stack, padding, pointwise)
    assert receptive_field(net) == receptive_field(as_spec(stack))
    assert ([row[1:] for row in receptive_field_table(net)]
            == [row[1:] for row in receptive_field_table(as_spec(stack))])


def test_max_pool_dilation_and_default_stride():
    # nn.MaxPool2d(3) strides by its kernel (jump 3); dilation 2 makes it span 5 pixels
    net = nn.Sequential(nn.MaxPool2d(3, dilation=2), nn.Conv2d(1, 1, 3), nn.AvgPool2d(2))
    assert receptive_field(net) == receptive_field([(3, 3, 2), (3, 1), (2, 2)]) == 5 + 2 * 3 + 1 * 3


def test_containers_are_walked():
    class Block(nn.Module):  # a custom container whose first child is an empty Sequential
        def __init__(self):
            super().__init__()
            self.empty = nn.Sequential()
            self.conv = nn.Conv2d(1, 1, 5)

    assert receptive_field(nn.Sequential(Block(), nn.ModuleList([nn.Conv2d(1, 1, 3)]))) == 7


def test_table_rows():
    rows = receptive_field_table([(4, 2), ((3, 1), 1, (1, 2))])
    assert rows[0] == ("layer1", 4, 2, 2, 4)
    assert rows[1] == ("layer2", (3, 1), 1, 2, (8, 4))   # dilation 2 on a width-1 kernel changes nothing
    net = nn.Sequential(nn.Conv2d(1, 1, 4, 2), nn.Sequential(nn.ReLU(), nn.Conv2d(1, 1, 3, 1)))
    assert [row.layer for row in receptive_field_table(net)] == ["0", "1.1"]


@pytest.mark.parametrize("n_layers, size", [(1, 16), (3, 70), (5, 286)])
def test_patchgan_sizes(n_layers, size):
    assert receptive_field(patchgan_spec(n_layers)) == size


def test_patchgan_as_module():
    # the reference PatchGAN as pix2pix builds it: conv-LeakyReLU, (conv-norm-LeakyReLU) x3, conv
    net = nn.Sequential(
        nn.Conv2d(3, 64, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1), nn.InstanceNorm2d(128), nn.LeakyReLU(0.2),
        nn.Conv2d(128, 256, 4, 2, 1), nn.InstanceNorm2d(256), nn.LeakyReLU(0.2),
        nn.Conv2d(256, 512, 4, 1, 1), nn.InstanceNorm2d(512), nn.LeakyReLU(0.2),
        nn.Conv2d(512, 1, 4, 1, 1))
    assert receptive_field(net) == 70


def test_main_prints_tables(capsys):
    main([])
    out = capsys.readouterr().out
    for size in (16, 70, 286):
        assert f"{size}x{size}" in out
    main(["--layers", "3"])
    out = capsys.readouterr().out
    assert "70x70" in out and "286" not in out and "conv5" in out


class ConvTranspose2d(nn.Module):
    """Stands for minigan's own transposed conv: recognized by its class name."""

    def forward(self, x):
        return x


@pytest.mark.parametrize("layer, name", [
    (nn.ConvTranspose2d(1, 1, 4, 2, 1), "ConvTranspose2d"),
    (ConvTranspose2d(), "ConvTranspose2d"),
    (nn.Upsample(scale_factor=2), "Upsample"),
    (nn.Linear(4, 4), "Linear"),
    (nn.AdaptiveAvgPool2d(1), "AdaptiveAvgPool2d"),
])
def test_unknown_layers_raise(layer, name):
    net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.Sequential(nn.ReLU(), layer))
    with pytest.raises(ValueError, match=rf"'1\.1' \({name}\)"):
        receptive_field(net)


def test_minigan_conv_transpose_raises():
    layer = minigan.ConvTranspose2d(1, 1, 4, 2, 1)
    with pytest.raises(ValueError, match="ConvTranspose2d"):
        receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3), layer))


@pytest.mark.parametrize("spec", [[(4,)], [(4, 2, 1, 1)], [4], [(0, 1)], [(3, -1)], [(3, 1, 0)],
                                  [((3, 3, 3), 1)], [(3.0, 1)]])
def test_bad_list_specs_raise(spec):
    with pytest.raises(ValueError, match="receptive_field: layer"):
        receptive_field(spec)
