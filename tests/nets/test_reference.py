"""minigan computes what the reference implementation computes, from the reference's own weights.

Golden files (MINIGAN_REFERENCE): the reference network's state_dict, an input and its eval-mode
output; minigan must load the weights and reproduce the output. The *.keys.txt files list the keys
and shapes of the published full-size files; a state_dict of those shapes must load strictly.
"""
import re

import pytest
import torch

from minigan import MiniganError, load_reference
from minigan.nets.patchgan import PatchGAN
from minigan.nets.reference import reference_keys, to_reference
from minigan.nets.resnet_generator import ResnetGenerator
from minigan.nets.unet import UNet256

GOLDEN = {
    "cyclegan_resnet9_ngf8": lambda: ResnetGenerator(ngf=8, n_blocks=9),
    "cyclegan_patchgan70_ndf8": lambda: PatchGAN(in_channels=3, ndf=8, norm="instance"),
    "pix2pix_unet256_ngf8": lambda: UNet256(ngf=8, norm="batch"),
    "pix2pix_patchgan70_ndf8": lambda: PatchGAN(in_channels=6, ndf=8, norm="batch"),
}

FULL_SIZE = {
    "cyclegan_resnet9_ngf64": lambda: ResnetGenerator(ngf=64, n_blocks=9),
    "cyclegan_patchgan70_ndf64": lambda: PatchGAN(in_channels=3, ndf=64, norm="instance"),
    "pix2pix_unet256_ngf64": lambda: UNet256(ngf=64, norm="batch"),
    "pix2pix_patchgan70_ndf64": lambda: PatchGAN(in_channels=6, ndf=64, norm="batch"),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_reproduces_reference_output(reference_dir, name):
    golden = torch.load(reference_dir / f"{name}.pt", weights_only=True)
    net = load_reference(GOLDEN[name](), golden["state_dict"]).eval()
    with torch.no_grad():
        out = net(golden["input"])
    assert out.shape == golden["output"].shape
    assert (out - golden["output"]).abs().max().item() <= 1e-4


def fake_published(reference_dir, name):
    """A state_dict with the keys and shapes of a published file, filled with distinct values."""
    state = {}
    for line in (reference_dir / f"{name}.keys.txt").read_text().splitlines():
        key, shape = line.split("\t")
        shape = [int(n) for n in re.findall(r"\d+", shape)]
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        else:
            state[key] = torch.randn(shape)
    return state


@pytest.mark.parametrize("name", sorted(FULL_SIZE))
def test_loads_published_full_size_layout(reference_dir, name):
    torch.manual_seed(0)
    state = fake_published(reference_dir, name)
    net = load_reference(FULL_SIZE[name](), state)
    own = net.state_dict()
    mapping = reference_keys(net)
    assert sorted(mapping.values()) == sorted(state)  # every tensor of the file used ...
    for mine, theirs in mapping.items():              # ... and landed where it belongs
        assert torch.equal(own[mine], state[theirs]), mine


def test_drops_instance_norm_running_stats_of_older_files(reference_dir):
    state = fake_published(reference_dir, "cyclegan_resnet9_ngf64")
    for index in (2, 5, 8, 20, 23):  # the InstanceNorm layers of the reference's Sequential
        state[f"model.{index}.running_mean"] = torch.zeros(64)
        state[f"model.{index}.running_var"] = torch.ones(64)
        state[f"model.{index}.num_batches_tracked"] = torch.tensor(0)
    state["model.10.conv_block.2.running_mean"] = torch.zeros(256)
    load_reference(ResnetGenerator(), state)


def test_wrong_width_names_the_key(reference_dir):
    golden = torch.load(reference_dir / "cyclegan_resnet9_ngf8.pt", weights_only=True)
    with pytest.raises(MiniganError, match=r"model\.1\.weight has shape \[8, 3, 7, 7\].*"
                                           r"\[16, 3, 7, 7\].*ngf"):
        load_reference(ResnetGenerator(ngf=16), golden["state_dict"])


def test_wrong_architecture_names_the_key(reference_dir):
    golden = torch.load(reference_dir / "cyclegan_resnet9_ngf8.pt", weights_only=True)
    with pytest.raises(MiniganError, match=r"model\.19\.conv_block\.1\.weight missing"):
        load_reference(ResnetGenerator(ngf=8, n_blocks=12), golden["state_dict"])
    with pytest.raises(MiniganError, match=r"model\.16\.weight missing"):
        load_reference(ResnetGenerator(ngf=8, n_blocks=6), golden["state_dict"])
    with pytest.raises(MiniganError, match="model.model.0.weight missing"):
        load_reference(UNet256(ngf=8), golden["state_dict"])
    extra = dict(golden["state_dict"], **{"model.28.weight": torch.zeros(3)})
    with pytest.raises(MiniganError, match=r"model\.28\.weight in the file has no place"):
        load_reference(ResnetGenerator(ngf=8), extra)
    pix2pix_d = torch.load(reference_dir / "pix2pix_patchgan70_ndf8.pt", weights_only=True)
    with pytest.raises(MiniganError, match=r"model\.2\.bias missing"):  # BN file, IN net
        load_reference(PatchGAN(6, ndf=8, norm="instance"), pix2pix_d["state_dict"])


def test_loads_from_a_file(reference_dir, tmp_path):
    golden = torch.load(reference_dir / "pix2pix_patchgan70_ndf8.pt", weights_only=True)
    path = tmp_path / "latest_net_D.pth"
    torch.save({"module." + key: value for key, value in golden["state_dict"].items()}, path)
    net = load_reference(PatchGAN(6, ndf=8), str(path)).eval()
    with torch.no_grad():
        assert torch.allclose(net(golden["input"]), golden["output"], atol=1e-4)


def test_bad_files_are_user_errors(tmp_path):
    with pytest.raises(MiniganError, match="not found"):
        load_reference(PatchGAN(ndf=8), tmp_path / "missing.pth")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(MiniganError, match="cannot read weights file .*corrupt.pth"):
        load_reference(PatchGAN(ndf=8), corrupt)


@pytest.mark.parametrize("make, size", [(lambda: ResnetGenerator(ngf=4, n_blocks=2), 32),
                                        (lambda: UNet256(ngf=2, norm="instance"), 256),
                                        (lambda: PatchGAN(ndf=4, n_layers=2), 32)])
def test_to_reference_round_trip(make, size):
    torch.manual_seed(0)
    a, b = make().eval(), make().eval()
    load_reference(b, to_reference(a))
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def test_refuses_unknown_networks():
    with pytest.raises(TypeError, match="no reference layout for Linear"):
        load_reference(torch.nn.Linear(2, 2), {})
