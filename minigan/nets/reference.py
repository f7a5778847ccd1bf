"""Loading the reference implementation's weights (pytorch-CycleGAN-and-pix2pix) into minigan nets.

The best-known CycleGAN / pix2pix code publishes its pretrained generators (horse2zebra,
monet2photo, facades_label2photo, ...) as plain `state_dict` files. Its networks are the same
functions as minigan's, with other parameter names:

- the ResNet generator is one nn.Sequential: `model.1` is the stem conv, `model.4` / `model.7` the
  downsamplings, `model.<10 + i>.conv_block.1` / `.5` the convs of residual block i, then the two
  transposed convs and the head (the indices in between are pads, norms and ReLUs, which have no
  parameters);
- the PatchGAN is one nn.Sequential of conv, norm, LeakyReLU triples (`model.0`, `model.2`,
  `model.3`, ...);
- the U-Net nests one block per level: level k's parameters sit under
  `model.model.1.model.3.model.3...` (`model.` + `model.1.` + `model.3.` x (k - 2) + `model.`), and
  inside a level at index 1 (down conv), 2 (its norm), 5 (up conv), 6 (its norm); the outermost
  level has only 0 (down conv) and 3 (up conv), the innermost 1, 3 and 4 (up norm).

`reference_names(net)` writes that correspondence out as (reference prefix, minigan prefix) pairs;
`load_reference` renames every tensor, checks every shape and loads strictly. Files saved by older
torch versions also carry running statistics for the InstanceNorm layers, which instance norm
without `track_running_stats` never used: those are dropped.

>>> from minigan.nets.resnet_generator import ResnetGenerator
>>> reference_names(ResnetGenerator(ngf=4, n_blocks=2))
... # doctest: +NORMALIZE_WHITESPACE
[('model.1', 'stem'), ('model.4', 'down1'), ('model.7', 'down2'),
 ('model.10.conv_block.1', 'blocks.0.conv1'), ('model.10.conv_block.5', 'blocks.0.conv2'),
 ('model.11.conv_block.1', 'blocks.1.conv1'), ('model.11.conv_block.5', 'blocks.1.conv2'),
 ('model.12', 'up1'), ('model.15', 'up2'), ('model.19', 'head')]
"""
from pathlib import Path

import torch

from ..errors import MiniganError
from .patchgan import PatchGAN
from .resnet_generator import ResnetGenerator
from .unet import UNet256

# What a norm layer may hold beside its weight and bias (InstanceNorm in older files: dropped).
RUNNING_STATS = ("running_mean", "running_var", "num_batches_tracked")


def reference_names(net):
    """[(reference prefix, minigan prefix)] for every layer of `net` that has parameters."""
    if isinstance(net, ResnetGenerator):
        n = net.n_blocks
        names = [("model.1", "stem"), ("model.4", "down1"), ("model.7", "down2")]
        for i in range(n):  # each residual block: pad, conv, norm, ReLU, pad, conv, norm
            names += [(f"model.{10 + i}.conv_block.1", f"blocks.{i}.conv1"),
                      (f"model.{10 + i}.conv_block.5", f"blocks.{i}.conv2")]
        # after the blocks: convT, norm, ReLU, convT, norm, ReLU, pad, conv, tanh
        return names + [(f"model.{10 + n}", "up1"), (f"model.{13 + n}", "up2"),
                        (f"model.{17 + n}", "head")]
    if isinstance(net, PatchGAN):
        # minigan: conv, LReLU, then (conv, norm_act) pairs, then conv.
        # reference: conv, LReLU, then (conv, norm, LReLU) triples, then conv.
        n_convs = (len(net.layers) - 1) // 2 + 1
        names = [("model.0", "layers.0")]
        for j in range(1, n_convs):
            names.append((f"model.{3 * j - 1}", f"layers.{2 * j}"))
            if j < n_convs - 1:  # the last conv has no norm
                names.append((f"model.{3 * j}", f"layers.{2 * j + 1}.norm"))
        return names
    if isinstance(net, UNet256):
        def level(k):  # the reference's prefix of U-Net level k = 1 (outermost) .. 8 (innermost)
            return "model." + ("model.1." if k >= 2 else "") + "model.3." * (k - 2) + "model."
        names = [(level(1) + "0", "down.0.conv"), (level(1) + "3", "out")]
        for k in range(2, 8):  # down.{k - 1} and its mirror up.{k - 2}
            names += [(level(k) + "1", f"down.{k - 1}.conv"),
                      (level(k) + "2", f"down.{k - 1}.norm_act.norm"),
                      (level(k) + "5", f"up.{k - 2}.conv"),
                      (level(k) + "6", f"up.{k - 2}.norm_act.norm")]
        return names + [(level(8) + "1", "down.7.conv"), (level(8) + "3", "up.6.conv"),
                        (level(8) + "4", "up.6.norm_act.norm")]
    raise TypeError(f"load_reference: no reference layout for {type(net).__name__}; "
                    f"expected ResnetGenerator, PatchGAN or UNet256")


def read_state_dict(path):
    """torch.load a weights file (tensors only), as a MiniganError when it is missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise MiniganError(f"weights file {path} not found: check the path")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated download, an HTML error page, a pickle of other objects
        raise MiniganError(f"cannot read weights file {path} ({type(err).__name__}): "
                           f"download it again") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a checkpoint that wraps the state_dict
    if not isinstance(state, dict):
        raise MiniganError(f"weights file {path} holds a {type(state).__name__}, not a state_dict")
    return state


def reference_keys(net):
    """{minigan state_dict key: reference key} for every parameter and buffer of `net`."""
    own = net.state_dict()
    keys = {}
    for ref_prefix, prefix in reference_names(net):
        for name in own:
            if name.startswith(prefix + "."):
                keys[name] = ref_prefix + name[len(prefix):]
    unmapped = [name for name in own if name not in keys]
    if unmapped:  # a layer reference_names forgot: a bug here, not the user's mistake
        raise RuntimeError(f"reference_keys: no reference name for {unmapped}")
    return keys


def to_reference(net):
    """`net`'s state_dict under the reference's names, loadable by the reference code.

    >>> from minigan.nets.patchgan import PatchGAN
    >>> list(to_reference(PatchGAN(ndf=8, n_layers=1)))  # doctest: +NORMALIZE_WHITESPACE
    ['model.0.weight', 'model.0.bias', 'model.2.weight', 'model.3.weight', 'model.3.bias',
     'model.3.running_mean', 'model.3.running_var', 'model.3.num_batches_tracked',
     'model.5.weight', 'model.5.bias']
    """
    own = net.state_dict()
    return {ref_key: own[name] for name, ref_key in reference_keys(net).items()}


def load_reference(net, state_dict_or_path):
    """Load a reference-implementation state_dict (or a file of one) into `net`, strictly.

    Every parameter and buffer of `net` must be filled from a tensor of the same shape and every
    tensor of the file used (except InstanceNorm running statistics); otherwise a MiniganError
    names the key, which usually means another architecture, ngf/ndf, n_blocks or norm.
    Returns `net`.

    >>> from minigan.nets.resnet_generator import ResnetGenerator
    >>> weights = to_reference(ResnetGenerator(ngf=8, n_blocks=2))
    >>> net = load_reference(ResnetGenerator(ngf=8, n_blocks=2), weights)
    >>> load_reference(ResnetGenerator(ngf=16, n_blocks=2), weights)
    Traceback (most recent call last):
    ...
    minigan.errors.MiniganError: model.1.weight has shape [8, 3, 7, 7] in the file but ResnetGenerator expects [16, 3, 7, 7] (for stem.weight): was it saved with another ngf/ndf or architecture?
    >>> load_reference(ResnetGenerator(ngf=8, n_blocks=3), weights)
    Traceback (most recent call last):
    ...
    minigan.errors.MiniganError: model.12.conv_block.1.weight missing from the file but ResnetGenerator needs it (for blocks.2.conv1.weight): was it saved for another architecture or n_blocks?
    """
    state = (read_state_dict(state_dict_or_path) if isinstance(state_dict_or_path, (str, Path))
             else dict(state_dict_or_path))
    if state and all(key.startswith("module.") for key in state):  # saved from nn.DataParallel
        state = {key[len("module."):]: value for key, value in state.items()}
    kind = type(net).__name__
    own = net.state_dict()
    keys = reference_keys(net)
    renamed = {}
    for name, ref_key in keys.items():
        if ref_key not in state:
            if name.endswith("num_batches_tracked"):
                continue  # files from before torch 0.4.1 lack it; the default is fine
            raise MiniganError(f"{ref_key} missing from the file but {kind} needs it (for "
                               f"{name}): was it saved for another architecture or n_blocks?")
        value = state[ref_key]
        if tuple(value.shape) != tuple(own[name].shape):
            raise MiniganError(f"{ref_key} has shape {list(value.shape)} in the file but {kind} "
                               f"expects {list(own[name].shape)} (for {name}): was it saved with "
                               f"another ngf/ndf or architecture?")
        renamed[name] = value
    used = set(keys.values())
    extra = [key for key in state if key not in used and not key.endswith(RUNNING_STATS)]
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise MiniganError(f"{extra[0]} in the file has no place in {kind}{more}: was it saved "
                           f"for another architecture, n_blocks or norm?")
    # Strictness is checked above with the reference's names; strict=False only lets a missing
    # num_batches_tracked keep its default.
    net.load_state_dict(renamed, strict=False)
    return net
