"""Train pix2pix (Isola et al. 2017): translate paired images, e.g. facade labels -> photos.

G maps an input image x (domain A) to an output G(x) that should look like the target y (domain B).
D is conditional: it sees the input next to an output, concat(x, y) (6 channels), and judges each
70x70 patch (the PatchGAN) as real (x's true y) or fake (G(x)). The objective (the paper's eq. 4):

    G* = arg min_G max_D  L_cGAN(G, D) + lambda * L_L1(G)            lambda = 100
    L_cGAN = E_x,y[log D(x, y)] + E_x[log(1 - D(x, G(x)))]           (G: the non-saturating -log D(x, G(x)))
    L_L1   = E_x,y[ |y - G(x)|_1 ]

L1 alone already gets the colours and layout right but is blurry (it averages the plausible outputs);
the GAN term makes the result sharp. `--loss l1` trains with L1 alone (no D) to see that blur,
`--loss gan` without L1 (sharp but unrelated to the target).

Data: side-by-side A|B images in <data>/{train,val}/; facades is B -> A (labels are the right half),
hence --direction BtoA by default there. Each step: resize to 286, random 256 crop, random flip
(the same for both halves), batch 1; 200 epochs, the LR constant for the first 100 and then decaying
linearly to 0, as the reference code trains it. Each epoch ends with val L1, val PSNR and an input |
output | target grid. --image-size S trains at S x S (load S*286/256): use --generator toy (multiples of 8)
or pool64 (multiples of 16), the course's small U-Nets; unet256 needs 256.

At test time G runs as in training, the paper's protocol (sec. 3.3: "we apply dropout at test time,
and we apply batch normalization using the statistics of the test batch"; the reference's test.py
without --eval): --translate, the val grids and val L1/PSNR do so, on test batches of --batch-size
images (1, the paper's). --running-stats runs G in eval mode instead (running statistics, no dropout).
--translate follows the reference's test.py in its sizes too: each input resized to --image-size squared (256), the
output at that size, 8 bits by truncation (--native-size: near each image's own size). A|B pairs (a
dataset folder, whose test/ split is used, or any image twice as wide as high) are split per
--direction: the input half is translated, and input | output | target is written beside the output.

Speed (measured on a busy 2-core CPU, --threads 1): the paper's nets at 256x256 take 6.5 s a step
(facades: 400 steps an epoch); the toy U-Net at 64x64 with --ndf 32 takes 0.22 s. On a CPU shared with
other jobs give torch no more threads than there are idle cores: oversubscribed, it runs many times slower.

Examples:
    python train_pix2pix.py --data facades                       # the paper's 200 epochs, outputs in runs/
    python train_pix2pix.py --data facades --generator toy --image-size 64 --ndf 32   # a CPU run
    python train_pix2pix.py --data facades --loss l1             # L1 only, to see its effect
    python train_pix2pix.py --resume runs/pix2pix-facades-<time> # continue exactly where it stopped
    python train_pix2pix.py --checkpoint runs/pix2pix-facades-<time> --translate datasets/facades  # test/ pairs
    python train_pix2pix.py --checkpoint runs/pix2pix-facades-<time> --translate labels/   # or a file
    python train_pix2pix.py --init-from facades_label2photo.pth --translate labels/   # published weights
"""
import argparse
import contextlib
from pathlib import Path

import torch
from tqdm import tqdm

from minigan import kit, losses
from minigan.data import PairedImages, check_images, find_dataset
from minigan.errors import MiniganError
from minigan.kit.image2image import CROP, LOAD, add_translation_args, mixed_precision, translate_files
from minigan.nets import PatchGAN, PoolDiscriminator64, PoolUNet64, ToyUNet, UNet256, load_reference

MULTIPLE = {"unet256": 256, "toy": 8, "pool64": 16}  # G's accepted sizes: multiples of these


def train_step(G, D, opt_g, opt_d, real_a, real_b, args, autocast=contextlib.nullcontext, scaler=None):
    """One pix2pix step on a batch of pairs, inputs real_a and targets real_b (N x 3 x S x S): D's
    step, then G's. `args` gives --loss and --lambda-l1; autocast and scaler come from --amp. Returns
    every loss term: D's on the fake and on the real pairs and their halved sum, G's cGAN and
    (unweighted) L1 terms and the total it minimized."""
    with autocast():
        fake_b = G(real_a)
    logged = {}

    # D step: maximize log D(x, y) + log(1 - D(x, G(x))); the fake is detached, G stays fixed. D sees
    # the fake pair first, then the real one, as the reference code does: with batch norm each call
    # is a batch of its own, so the losses do not depend on the order, but each call also updates the
    # running statistics (D's state, what it computes in eval mode), and those do.
    if args.loss != "l1":
        with autocast():
            on_fake = D(torch.cat([real_a, fake_b.detach()], 1))                    # N x 6 x S x S in
            on_real = D(torch.cat([real_a, real_b], 1))
            d_real, d_fake = losses.d_terms(on_real, on_fake)
            # "we divide the objective by 2 while optimizing D" (Isola et al. 2017, sec. 3.3)
            d_loss = 0.5 * (d_real + d_fake)
        kit.optimizer_step(opt_d, d_loss, scaler)
        logged.update(d_loss=d_loss, d_real=d_real, d_fake=d_fake)

    # G step: fool the updated D and stay close to the target in L1. D is frozen meanwhile: G's
    # step needs no gradients for D's weights, only through D.
    D.requires_grad_(False)
    with autocast():
        g_l1 = (fake_b - real_b).abs().mean()
        g_loss = args.lambda_l1 * g_l1 if args.loss != "gan" else 0.0
        if args.loss != "l1":
            g_gan = losses.g_loss(D(torch.cat([real_a, fake_b], 1)))
            g_loss = g_loss + g_gan
            logged["g_gan"] = g_gan
    kit.optimizer_step(opt_g, g_loss, scaler)
    D.requires_grad_(True)
    if scaler is not None:
        scaler.update()
    logged.update(g_loss=g_loss, g_l1=g_l1)
    return logged


def main(argv=None):
    parser = kit.parser(__doc__, "pix2pix")
    parser.add_argument("--data", default="facades", help="a folder with train/ and val/ of side-by-side "
                        "A|B images, or a pix2pix dataset name in the data root (default: facades)")
    parser.add_argument("--direction", choices=["AtoB", "BtoA"],
                        help="translate the left half into the right (AtoB) or back (default: BtoA for "
                        "facades, whose labels are on the right; AtoB otherwise)")
    parser.add_argument("--generator", default="unet256", choices=["unet256", "toy", "pool64"],
                        help="unet256 (the paper's), toy (the course slides' C64-C128-C256 U-Net) or pool64 "
                        "(the course notes' avg-pool U-Net) (default: unet256)")
    parser.add_argument("--discriminator", default="patchgan", choices=["patchgan", "pool64"],
                        help="the 70x70 PatchGAN, or pool64, the course notes' avg-pool D (default: patchgan)")
    parser.add_argument("--norm", default="batch", choices=["batch", "instance"],
                        help="norm layers of unet256 and the PatchGAN (default: batch, the paper's)")
    parser.add_argument("--ngf", type=int, default=64, help="G's width (unet256, toy) (default: 64)")
    parser.add_argument("--ndf", type=int, default=64, help="the PatchGAN's width (default: 64)")
    parser.add_argument("--n-layers-d", type=int, default=3, help="PatchGAN stride-2 layers: 3 sees "
                        "70x70 patches, 1 16x16 ones (default: 3)")
    parser.add_argument("--loss", default="gan+l1", choices=["gan+l1", "l1", "gan"],
                        help="G's objective: cGAN + lambda*L1 (the paper's), L1 alone, cGAN alone (default: gan+l1)")
    parser.add_argument("--lambda-l1", type=float, default=100.0, help="weight of L1 (default: 100, the paper's)")
    parser.add_argument("--image-size", type=int, default=CROP,
                        help=f"train on S x S crops of images resized to S*{LOAD}/{CROP} (default: {CROP})")
    parser.add_argument("--running-stats", action=argparse.BooleanOptionalAction, default=False,
                        help="translate and validate in eval mode: batch norm on its running statistics, no "
                        "dropout (default: off, the paper's test-time protocol, batch statistics and dropout)")
    add_translation_args(parser)
    # Adam lr 2e-4, beta1 0.5, batch 1, 200 epochs on facades: Isola et al. (2017), sec. 3.3 and appendix.
    # The paper says nothing of decaying the LR; the reference code, which the published results come
    # from, runs pix2pix with n_epochs 100, n_epochs_decay 100, lr_policy linear: the kit's schedule
    # (kit.linear_decay_lr), for G's and D's optimizers, 99 epochs at 2e-4 then linearly to 0.
    kit.add_common_args(parser, batch_size=1, lr=2e-4, beta1=0.5, epochs=100, epochs_decay=100, sample_every=400)
    args, ckpt = kit.parse_args(parser, argv)
    args.direction = args.direction or ("BtoA" if Path(args.data).name == "facades" else "AtoB")
    check_size(args)
    if not args.translate:  # the data first: a wrong --data fails before anything is written
        root = find_dataset(args.data, args.data_root, "paired")
        load = round(args.image_size * LOAD / CROP)
        data = PairedImages(root, "train", args.direction, load, args.image_size, train=True)  # (x, y) 3xSxS
        val = PairedImages(root, "val", args.direction, load, args.image_size, train=False)    # resized only
        check_images([*data.file_lists(), *val.file_lists()], args.skip_bad_images)  # all open, or one error
        val_x, val_y = (torch.stack(t) for t in zip(*(val[i] for i in range(min(4, len(val))))))  # the grid's
    run = kit.Run("pix2pix", args, ckpt)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    autocast, scaler = mixed_precision(args.amp, run.device)

    # The nets. G: (N, 3, S, S) -> (N, 3, S, S) in [-1, 1]. D: concat(input, output) (N, 6, S, S) ->
    # (N, 1, s, s) logits, one per patch. Weights ~ N(0, 0.02) (the paper, sec. 6.1).
    G = {"unet256": lambda: UNet256(ngf=args.ngf, norm=args.norm), "toy": lambda: ToyUNet(ngf=args.ngf),
         "pool64": PoolUNet64}[args.generator]()
    D = (PatchGAN(6, args.ndf, args.n_layers_d, args.norm) if args.discriminator == "patchgan"
         else PoolDiscriminator64(6))
    G.apply(kit.init_weights)
    D.apply(kit.init_weights)
    if args.init_from and not ckpt:  # a checkpoint's weights replace them anyway
        if args.generator != "unet256":
            raise MiniganError("--init-from loads the reference's U-Net-256: use --generator unet256 "
                               "(with the --ngf and --norm the file was saved with)")
        load_reference(G, args.init_from)
    G, D = G.to(run.device, memory_format=fmt), D.to(run.device, memory_format=fmt)
    kit.compile_nets(args, G, D)  # --compile
    opt_g = kit.adam(G.parameters(), args.lr, args.beta1)
    opt_d = kit.adam(D.parameters(), args.lr, args.beta1)
    sched_g = kit.linear_decay_lr(opt_g, args.epochs, args.epochs_decay)  # stepped at each epoch's end
    sched_d = kit.linear_decay_lr(opt_d, args.epochs, args.epochs_decay)
    run.track(G=G, D=D, opt_g=opt_g, opt_d=opt_d, sched_g=sched_g, sched_d=sched_d)
    if scaler.is_enabled():  # fp16's loss scale: a resumed run goes on with it
        run.track(scaler=scaler)
    if args.translate:
        translate_files(G, args, ckpt, run.dir, MULTIPLE[args.generator], run.device, direction=args.direction,
                        training=not args.running_stats)  # one image per test batch, as the paper's
        return 0

    for step, (real_a, real_b) in run.batches(data, epochs=args.epochs + args.epochs_decay):
        real_a, real_b = (t.to(run.device, memory_format=fmt) for t in (real_a, real_b))  # N x 3 x S x S
        logged = train_step(G, D, opt_g, opt_d, real_a, real_b, args, autocast, scaler)
        if run.epoch_end:  # how far G(x) is from y on the val split, in [-1, 1] pixel units
            sched_g.step()
            sched_d.step()
            logged.update(validate(G, val, run.device, args))
            tqdm.write(f"epoch {run.epoch}: val L1 {logged['val_l1']:.4f}, val PSNR {logged['val_psnr']:.2f} dB; "
                       f"next epoch's lr {opt_g.param_groups[0]['lr']:.3g}")
        run.log(**logged)
        if run.sample_due:  # rows of input | output | target
            fake = at_test_time(G, val_x.to(run.device), args)
            run.save_samples(torch.stack([val_x, fake.cpu(), val_y], 1).flatten(0, 1), nrow=3)
    return run.exit_code


def at_test_time(G, x, args):
    """G(x) as pix2pix runs at test time: G as in training (batch norm on the statistics of each test
    batch of --batch-size images, dropout on), or with --running-stats in eval mode. Neither changes
    G's running statistics or the training run's random stream (see kit.generate)."""
    if args.running_stats:
        return kit.generate(G, x)
    return torch.cat([kit.generate(G, batch, training=True) for batch in x.split(args.batch_size)])


@torch.no_grad()
def validate(G, val, device, args):
    """Mean L1 and PSNR of G(x) against y over a split. PSNR = 10 log10(peak^2 / MSE) per image, the
    peak-to-peak range of [-1, 1] being 2; averaged over the images.

    G runs as --translate runs it (`at_test_time`: the paper's protocol unless --running-stats), so the
    numbers describe the images a user gets. Its dropout draws from a fixed seed, so a change from
    one epoch to the next is G's, not the noise's."""
    l1, psnr = [], []
    # the loader gets a generator of its own, so validating draws nothing from the training RNG
    for x, y in torch.utils.data.DataLoader(val, batch_size=16, generator=torch.Generator()):
        fake = at_test_time(G, x.to(device), args).float().cpu()
        l1.append((fake - y).abs().mean((1, 2, 3)))
        psnr.append(10 * torch.log10(4.0 / ((fake - y) ** 2).mean((1, 2, 3)).clamp_min(1e-10)))
    return {"val_l1": torch.cat(l1).mean().item(), "val_psnr": torch.cat(psnr).mean().item()}


def check_size(args):
    """One line instead of a traceback when a net cannot take S x S images."""
    size, multiple = args.image_size, MULTIPLE[args.generator]
    if size % multiple:
        raise MiniganError(f"--image-size {size} does not suit --generator {args.generator}, which needs "
                           f"multiples of {multiple}: use unet256 at 256, toy (multiples of 8) or pool64 (16)")
    if args.discriminator == "pool64" and size % 32:
        raise MiniganError(f"--image-size {size}: --discriminator pool64 needs multiples of 32")
    if args.discriminator == "patchgan" and size < 2 ** (args.n_layers_d + 2):  # its maps would vanish
        raise MiniganError(f"--image-size {size} is too small for a PatchGAN with --n-layers-d "
                           f"{args.n_layers_d}: use at least {2 ** (args.n_layers_d + 2)} or fewer layers")


if __name__ == "__main__":
    kit.run_main(main)
