"""Each script's own `train_step` is the reference implementation's training step.

The golden files (MINIGAN_REFERENCE, `*_train_steps.pt`) hold what the reference code did in a few
real steps: its initial weights, the images (and noise) it trained on, every loss term it computed
and every weight after the last step. Here minigan's nets start from those weights, the script's
`train_step` runs on the same inputs with the same Adam, and every loss term must agree to 1e-9
(relative) and every parameter and buffer (batch-norm running statistics included) after the last
step to 1e-7.

Why float64: a GAN step is chaotic in float32. Two correct implementations round differently, and in
front of a norm layer a conv bias's gradient is zero up to rounding noise, ~1e-8 in float32, as large
as Adam's eps: Adam turns that noise into full-size steps, and the runs drift apart after one or two
steps. In float64 the noise is ~1e-17, far below eps, so the same algorithm gives the same weights to
~1e-9, and a wrong detach, a missing term or a D that sees the wrong pair shows as a difference of
1e-4 or more.

The MNIST GAN has no reference training code: its step is checked against a plain-torch
transcription of the course lecture's training phase instead.

Naming: the reference's CycleGAN calls the generators G_A (A -> B) and G_B, and D_A is the
discriminator of G_A's outputs, i.e. of domain B: minigan's D_B. Its cycle and identity terms are
recorded with their lambdas, and its idt_A is G_A's identity term, on B images (minigan's g_idt_b).
"""
import sys
from argparse import Namespace
from pathlib import Path

import pytest
import torch
from torch import nn

from minigan import kit
from minigan.kit.image_pool import ImagePool
from minigan.nets import (DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator, PatchGAN,
                          ResnetGenerator, UNet256, load_reference)
from minigan.nets.reference import to_reference

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the scripts live at the top of the repository
import train_cyclegan  # noqa: E402
import train_dcgan  # noqa: E402
import train_mnist  # noqa: E402
import train_pix2pix  # noqa: E402

LOSS_RTOL, WEIGHT_ATOL = 1e-9, 1e-7


@pytest.fixture(autouse=True)
def float64():
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(default)


def golden(reference_dir, name):
    return torch.load(reference_dir / f"{name}_train_steps.pt", weights_only=True)


def images(uint8):
    """The golden files' images as the reference fed them: uint8 -> [-1, 1], float64."""
    return uint8.double() / 127.5 - 1


def adam(config, *nets):
    # the scripts' own Adam (kit.adam: fused), against the reference's torch.optim.Adam defaults
    params = [p for net in nets for p in net.parameters()]
    return kit.adam(params, config["lr"], *config["betas"])


def loss_errors(ours, theirs, names):
    """{reference name: relative difference} for each recorded term; names maps a reference name to
    (our logged name, the factor the reference recorded it with)."""
    assert set(names) == set(theirs), "a recorded loss term has no counterpart"
    errors = {}
    for ref_name, (name, factor) in names.items():
        value = factor * ours[name].item()
        errors[ref_name] = abs(value - theirs[ref_name]) / abs(theirs[ref_name])
    return errors


def assert_losses(ours, theirs, names, step):
    errors = loss_errors(ours, theirs, names)
    worst = max(errors, key=errors.get)
    assert errors[worst] <= LOSS_RTOL, f"step {step}: {worst} differs by {errors[worst]:.2e} (relative)"
    return errors[worst]


def assert_weights(ours, theirs, what):
    """Every tensor of the state_dict `ours` (in the reference's names) equals `theirs` to 1e-7."""
    assert set(ours) == set(theirs), what
    diffs = {key: (ours[key].double() - theirs[key].double()).abs().max().item() for key in theirs}
    worst = max(diffs, key=diffs.get)
    assert diffs[worst] <= WEIGHT_ATOL, f"{what}.{worst} differs by {diffs[worst]:.2e} after the last step"
    return diffs[worst]


# --- DCGAN: the PyTorch DCGAN tutorial's loop ---

def dcgan_keys(state):
    """The tutorial's nets hold one nn.Sequential `main`, minigan's `net`, layer by layer the same
    (the tutorial's D ends in a Sigmoid, which has no parameters)."""
    return {key.replace("main.", "net.", 1): value for key, value in state.items()}


def test_dcgan_step_is_the_tutorials(reference_dir):
    g = golden(reference_dir, "dcgan")
    cfg = g["config"]
    G = DCGANGenerator(cfg["nz"], cfg["ngf"], cfg["channels"]).double()
    D = DCGANDiscriminator(cfg["ndf"], cfg["channels"]).double()
    G.load_state_dict(dcgan_keys(g["init"]["G"]))
    D.load_state_dict(dcgan_keys(g["init"]["D"]))
    opt_g, opt_d = adam(cfg, G), adam(cfg, D)
    names = {"D": ("d_loss", 1), "D_real": ("d_real", 1), "D_fake": ("d_fake", 1), "G": ("g_loss", 1)}
    for step, (real, z, recorded) in enumerate(zip(g["inputs"]["real"], g["inputs"]["noise"], g["losses"])):
        logged = train_dcgan.train_step(G, D, opt_g, opt_d, images(real), z)
        assert_losses(logged, recorded, names, step)
    assert_weights(dcgan_keys(G.state_dict()), dcgan_keys(g["final"]["G"]), "G")
    assert_weights(dcgan_keys(D.state_dict()), dcgan_keys(g["final"]["D"]), "D")


# --- pix2pix: Pix2PixModel.optimize_parameters ---

def test_pix2pix_step_is_the_references(reference_dir):
    g = golden(reference_dir, "pix2pix")
    cfg = g["config"]
    assert cfg["use_dropout"] is False and cfg["direction"] == "BtoA"  # A: the label maps, G's input
    G = load_reference(UNet256(ngf=cfg["ngf"], norm=cfg["norm"], dropout=0.0), g["init"]["G"]).double()
    D = load_reference(PatchGAN(6, cfg["ndf"], cfg["n_layers_d"], cfg["norm"]), g["init"]["D"]).double()
    opt_g, opt_d = adam(cfg, G), adam(cfg, D)
    args = Namespace(loss="gan+l1", lambda_l1=cfg["lambda_L1"])
    names = {"D": ("d_loss", 1), "D_fake": ("d_fake", 1), "D_real": ("d_real", 1), "G": ("g_loss", 1),
             "G_GAN": ("g_gan", 1), "G_L1": ("g_l1", cfg["lambda_L1"])}
    for step, recorded in enumerate(g["losses"]):
        real_a, real_b = (images(g["inputs"][k][step:step + 1]) for k in "AB")
        logged = train_pix2pix.train_step(G, D, opt_g, opt_d, real_a, real_b, args)
        assert_losses(logged, recorded, names, step)
    assert_weights(to_reference(G), g["final"]["G"], "G")
    assert_weights(to_reference(D), g["final"]["D"], "D")


def test_pix2pix_unet_with_batch_statistics_is_the_references(reference_dir):
    """The paper's test-time protocol minus the dropout noise: batch norm on the input's own statistics."""
    g = torch.load(reference_dir / "pix2pix_unet256_ngf8.pt", weights_only=True)
    G = load_reference(UNet256(ngf=8, dropout=0.0), g["state_dict"]).float()
    running = [b.clone() for b in G.buffers()]
    out = kit.generate(G, g["input"].float(), training=True)
    assert (out - g["output_batch_stats"]).abs().max().item() <= 1e-4
    assert (kit.generate(G, g["input"].float()) - g["output"]).abs().max().item() <= 1e-4  # eval mode
    assert all(torch.equal(a, b) for a, b in zip(G.buffers(), running))  # no running statistic moved


# --- CycleGAN: CycleGANModel.optimize_parameters ---

def test_cyclegan_step_is_the_references(reference_dir):
    g = golden(reference_dir, "cyclegan")
    cfg = g["config"]
    init = g["init"]
    assert cfg["lambda_A"] == cfg["lambda_B"] and cfg["gan_loss"] == "lsgan"
    G_AB, G_BA = (load_reference(ResnetGenerator(ngf=cfg["ngf"], n_blocks=cfg["n_blocks"]), init[k]).double()
                  for k in ("G_A", "G_B"))
    # the reference's D_A judges domain B
    D_A, D_B = (load_reference(PatchGAN(3, cfg["ndf"], cfg["n_layers_d"], cfg["norm"]), init[k]).double()
                for k in ("D_B", "D_A"))
    opt_g, opt_d = adam(cfg, G_AB, G_BA), adam(cfg, D_A, D_B)
    pool_a, pool_b = ImagePool(cfg["pool_size"]), ImagePool(cfg["pool_size"])
    lam, idt = cfg["lambda_A"], cfg["lambda_identity"]
    args = Namespace(gan_loss="lsgan", lambda_cycle=lam, lambda_identity=idt)
    names = {"G": ("g_loss", 1), "G_A": ("g_gan_ab", 1), "G_B": ("g_gan_ba", 1),
             "cycle_A": ("g_cycle_a", lam), "cycle_B": ("g_cycle_b", lam),
             "idt_A": ("g_idt_b", idt * lam), "idt_B": ("g_idt_a", idt * lam),  # idt_A: G_A on B images
             "D_A": ("d_b", 1), "D_B": ("d_a", 1)}
    for step, recorded in enumerate(g["losses"]):
        real_a, real_b = (images(g["inputs"][k][step:step + 1]) for k in "AB")
        logged = train_cyclegan.train_step(G_AB, G_BA, D_A, D_B, opt_g, opt_d, pool_a, pool_b,
                                           real_a, real_b, args)
        assert_losses(logged, recorded, names, step)
    for net, ref_name in ((G_AB, "G_A"), (G_BA, "G_B"), (D_A, "D_B"), (D_B, "D_A")):
        assert_weights(to_reference(net), g["final"][ref_name], ref_name)


# --- the MLP GAN: the course lecture's training phase ---

IMG_SIZE = 28


class Discriminator_0(nn.Module):  # the lecture's, as written there
    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(
            nn.Flatten(),
            nn.Linear(IMG_SIZE*IMG_SIZE, 2048), nn.LeakyReLU(0.2), nn.Dropout(0.3),
            nn.Linear(2048, 1024), nn.LeakyReLU(0.2), nn.Dropout(0.3),
            nn.Linear(1024, 512), nn.LeakyReLU(0.2), nn.Dropout(0.3),
            nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Dropout(0.3),
            nn.Linear(256, 1),
            nn.Sigmoid())

    def forward(self, x):
        return self.model(x)


class Generator_0(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(
            nn.Linear(100, 256), nn.LeakyReLU(0.2),
            nn.Linear(256, 512), nn.LeakyReLU(0.2),
            nn.Linear(512, 1024), nn.LeakyReLU(0.2),
            nn.Linear(1024, IMG_SIZE*IMG_SIZE), nn.Tanh())

    def forward(self, x):
        return self.model(x)


def course_training_phase(g_net, d_net, g_optimizer, d_optimizer, real_img, noise):
    """The lecture's two "Training phase" slides (../shared/course/002_*.txt) as written there. Its D
    ends in a Sigmoid and takes 0/1 labels, so `lossfun` is BCELoss. It does not detach the fakes for
    D: D's backward also leaves gradients in G, which g_optimizer.zero_grad() clears before G's step.
    The lecture draws new noise for G's phase (`torch.randn(BATCH_SIZE, 100)` twice); the script's
    step, like the DCGAN tutorial's, shows G's phase the same fakes, so both draws are `noise` here."""
    lossfun = nn.BCELoss()
    BATCH_SIZE = real_img.shape[0]
    fake_img = g_net(noise)
    real_labels = torch.ones(BATCH_SIZE, 1)
    fake_labels = torch.zeros(BATCH_SIZE, 1)

    # REAL IMG - all labels are 1
    pred_real = d_net(real_img)
    d_loss_real = lossfun(pred_real, real_labels)
    # FAKE IMG - all labels are 0
    pred_fake = d_net(fake_img)
    d_loss_fake = lossfun(pred_fake, fake_labels)
    # combined losses
    d_loss = d_loss_real + d_loss_fake
    # backprop
    d_optimizer.zero_grad()
    d_loss.backward()
    d_optimizer.step()

    # create fake images
    fake_images = g_net(noise)
    pred_fake = d_net(fake_images)
    # compute loss
    g_loss = lossfun(pred_fake, real_labels)
    # backprop
    g_optimizer.zero_grad()
    g_loss.backward()
    g_optimizer.step()
    return {"d_loss": d_loss, "d_real": d_loss_real, "d_fake": d_loss_fake, "g_loss": g_loss}


def test_mnist_step_is_the_course_lectures():
    """Same weights, batches, noise and dropout masks (each side starts from the same seed and draws
    D's masks in the same order): the same losses and weights, step after step."""
    torch.manual_seed(0)
    G, D = MLPGenerator(), MLPDiscriminator()
    g_net, d_net = Generator_0(), Discriminator_0()
    g_net.load_state_dict({k.replace("net.", "model.", 1): v for k, v in G.state_dict().items()})
    d_net.load_state_dict({k.replace("net.", "model.", 1): v for k, v in D.state_dict().items()})
    cfg = {"betas": (0.5, 0.999)}
    opt_g, opt_d = adam({**cfg, "lr": 4e-4}, G), adam({**cfg, "lr": 2e-4}, D)
    g_optimizer, d_optimizer = adam({**cfg, "lr": 4e-4}, g_net), adam({**cfg, "lr": 2e-4}, d_net)
    data = torch.Generator().manual_seed(1)
    names = {k: (k, 1) for k in ("d_loss", "d_real", "d_fake", "g_loss")}
    for step in range(3):
        real = torch.rand(32, 1, IMG_SIZE, IMG_SIZE, generator=data) * 2 - 1  # a batch of "digits"
        z = torch.randn(32, 100, generator=data)
        torch.manual_seed(10 + step)
        logged = train_mnist.train_step(G, D, opt_g, opt_d, real, z, Namespace(loss="bce"))
        torch.manual_seed(10 + step)
        recorded = {k: v.item() for k, v in course_training_phase(g_net, d_net, g_optimizer, d_optimizer,
                                                                   real, z).items()}
        assert_losses(logged, recorded, names, step)
    assert_weights({k.replace("net.", "model.", 1): v for k, v in G.state_dict().items()}, g_net.state_dict(), "G")
    assert_weights({k.replace("net.", "model.", 1): v for k, v in D.state_dict().items()}, d_net.state_dict(), "D")
