"""Train CycleGAN (Zhu et al. 2017): translate between two domains from unpaired images, e.g. horse <-> zebra.

Two generators, G_AB: A -> B and G_BA: B -> A, and two discriminators, D_A (real A or G_BA's fake?) and
D_B. Nothing says which zebra a horse should become, so besides fooling D_B a translation must come
back: G_BA(G_AB(a)) ~ a, and the same from B (cycle consistency). The full objective (sec. 3):

    L = L_GAN(G_AB, D_B) + L_GAN(G_BA, D_A)                                    fool the discriminators
      + lambda_cycle * (|G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1)         lambda_cycle = 10
      + lambda_idt * lambda_cycle * (|G_BA(a) - a|_1 + |G_AB(b) - b|_1)        lambda_idt = 0.5

L_GAN is least squares (LSGAN, sec. 4): D minimizes (D(real) - 1)^2 + D(fake)^2, G minimizes
(D(fake) - 1)^2. The identity term (sec. 5.2) keeps an image that is already in the target domain
unchanged, which preserves colours. D learns from a pool of the last 50 fakes, not only the newest
(Shrivastava et al.), so it remembers older mistakes; its loss is halved as in pix2pix (with Adam that
leaves D's steps nearly as they are; see minigan/losses.py).
Adam 2e-4, beta1 0.5, batch 1; 200 epochs: 100 at the initial LR, 100 decaying it linearly to 0
(the paper's words; the reference code's exact sequence, which we follow, has 99 epochs at 2e-4
and its 200th at 0: see kit.linear_decay_lr).

Nets: ResNet generator (c7s1-64, d128, d256, 9 residual blocks, u128, u64, c7s1-3; instance norm, ReLU)
and the 70x70 PatchGAN with instance norm and LeakyReLU 0.2 (minigan/nets/resnet_generator.py, patchgan.py).
Sample grids: rows of real | fake | reconstructed | identity, for A then B images of the test split.
Each epoch ends with the test split's cycle L1 (every test image, or the first --test-images).

On a GPU the paper's run is `python train_cyclegan.py --data horse2zebra`. On CPU it is out of reach: a
256x256 step of the default nets took 11.9 s on an idle 2-core machine (1334 steps an epoch).
The CPU recipe, 64x64 images and small nets, runs at 0.13-0.15 s/step there (about 3 min an epoch):

    python train_cyclegan.py --data horse2zebra --image-size 64 --ngf 16 --ndf 32 --n-blocks 3 \\
        --epochs 4 --epochs-decay 1

(epochs at 1, 1, 1, 1/2 of the LR, then a 5th at 0, where the reference's schedule always ends.)

What it gives: zebras lose their stripes first (zebra -> horse turns them brown and blurry by epoch 2);
the first crude black-and-white stripes appear on the horses from epoch 2-3 (steps 2668-4002, about
10 min), irregular and with checkerboard texture; reconstructions keep layout and colour. On a CPU
shared with other jobs give torch no more threads (--threads) than there are idle cores: oversubscribed,
the same step ran 20x slower.

Examples:
    python train_cyclegan.py --resume runs/cyclegan-horse2zebra-<time>       # continue exactly
    python train_cyclegan.py --checkpoint runs/cyclegan-horse2zebra-<time> --translate horses/ # A -> B
    python train_cyclegan.py --init-from horse2zebra.pth --translate horse.jpg   # published weights
"""
import contextlib

import torch
from tqdm import tqdm

from minigan import kit, losses
from minigan.data import UnpairedImages, check_images, find_dataset, image_files, load_image, transform
from minigan.errors import MiniganError
from minigan.kit.image2image import CROP, LOAD, add_translation_args, mixed_precision, translate_files
from minigan.kit.image_pool import ImagePool
from minigan.nets import PatchGAN, ResnetGenerator, load_reference


def train_step(G_AB, G_BA, D_A, D_B, opt_g, opt_d, pool_a, pool_b, real_a, real_b, args,
               autocast=contextlib.nullcontext, scaler=None):
    """One CycleGAN step on a batch of A images and one of B images (N x 3 x S x S): the G step, then
    the D step, in the reference code's order. `args` gives --gan-loss, --lambda-cycle and
    --lambda-identity; autocast and scaler come from --amp. Returns every loss term: each
    generator's GAN term, the cycle and identity L1 of each domain (unweighted), G's total, and
    each D's (halved) loss."""
    # Each G runs in one pass on all the images it has so far (kit.in_one_pass: the nets treat every
    # image on its own -- instance norm -- so that is the reference's separate calls, to rounding).
    # Identity: G_BA on an A image (and G_AB on a B image) should change nothing.
    identity = args.lambda_identity > 0
    with autocast():
        if identity:
            fake_b, same_b = kit.in_one_pass(G_AB, real_a, real_b)            # a horse as a zebra
            rec_a, fake_a, same_a = kit.in_one_pass(G_BA, fake_b, real_b, real_a)   # and back again
        else:
            fake_b = G_AB(real_a)
            rec_a, fake_a = kit.in_one_pass(G_BA, fake_b, real_b)
        rec_b = G_AB(fake_a)

    # G step: fool both Ds, come back around the cycle, leave in-domain images alone. The Ds are
    # frozen meanwhile: G's step needs gradients through them, not for their weights.
    for D in (D_A, D_B):
        D.requires_grad_(False)
    with autocast():
        gan_ab = losses.g_loss(D_B(fake_b), args.gan_loss)  # G_AB fools D_B (the reference's loss_G_A)
        gan_ba = losses.g_loss(D_A(fake_a), args.gan_loss)  # G_BA fools D_A
        cycle_a, cycle_b = (rec_a - real_a).abs().mean(), (rec_b - real_b).abs().mean()
        g_loss = gan_ab + gan_ba + args.lambda_cycle * (cycle_a + cycle_b)
        logged = dict(g_gan_ab=gan_ab, g_gan_ba=gan_ba, g_cycle_a=cycle_a, g_cycle_b=cycle_b)
        if identity:
            idt_a, idt_b = (same_a - real_a).abs().mean(), (same_b - real_b).abs().mean()
            g_loss = g_loss + args.lambda_identity * args.lambda_cycle * (idt_a + idt_b)
            logged.update(g_idt_a=idt_a, g_idt_b=idt_b)
    kit.optimizer_step(opt_g, g_loss, scaler)
    for D in (D_A, D_B):
        D.requires_grad_(True)

    # D step: real up, fake down, on fakes drawn from the history pools (detached: G stays fixed).
    # Each D's loss is halved as in the reference code, after pix2pix ("we divide the objective by 2
    # while optimizing D", Isola et al. 2017, sec. 3.3). Meant to slow D down relative to G, it hardly
    # does with Adam, whose step is nearly invariant to the loss's scale (see minigan/losses.py).
    with autocast():
        d_a = 0.5 * losses.d_loss(*kit.in_one_pass(D_A, real_a, pool_a.query(fake_a)), args.gan_loss)
        d_b = 0.5 * losses.d_loss(*kit.in_one_pass(D_B, real_b, pool_b.query(fake_b)), args.gan_loss)
    kit.optimizer_step(opt_d, d_a + d_b, scaler)
    if scaler is not None:
        scaler.update()
    return dict(d_a=d_a, d_b=d_b, g_loss=g_loss, **logged)


def main(argv=None):
    parser = kit.parser(__doc__, "cyclegan")
    parser.add_argument("--data", default="horse2zebra", help="a folder with trainA/ trainB/ testA/ testB/, "
                        "or a CycleGAN dataset name in the data root (default: horse2zebra)")
    parser.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"],
                        help="which generator --translate and --init-from use: G_AB or G_BA (default: AtoB)")
    parser.add_argument("--gan-loss", default="lsgan", choices=["lsgan", "bce", "hinge"],
                        help="the GAN game (default: lsgan, the paper's)")
    parser.add_argument("--lambda-cycle", type=float, default=10.0, help="cycle-consistency weight (default: 10)")
    parser.add_argument("--lambda-identity", type=float, default=0.5,
                        help="identity weight, times lambda-cycle; 0 turns it off (default: 0.5)")
    parser.add_argument("--pool-size", type=int, default=50, help="fakes in each D's history pool (default: 50)")
    parser.add_argument("--ngf", type=int, default=64, help="G's width: channels of its first layer (default: 64)")
    parser.add_argument("--ndf", type=int, default=64, help="D's width: channels of its first layer (default: 64)")
    parser.add_argument("--n-blocks", type=int, default=9, help="G's residual blocks (default: 9, the paper's "
                        "for 256x256; it uses 6 for 128x128)")
    parser.add_argument("--n-layers-d", type=int, default=3, help="PatchGAN stride-2 layers (default: 3, 70x70 patches)")
    parser.add_argument("--image-size", type=int, default=CROP, help=f"train on S x S crops of images resized to "
                        f"S*{LOAD}/{CROP}; a multiple of 4 (default: {CROP})")
    parser.add_argument("--test-images", type=int, help="per domain, how many test images the epoch-end cycle "
                        "L1 uses (default: all)")
    add_translation_args(parser)
    # Adam lr 2e-4, beta1 0.5, batch 1, 100 + 100 epochs: Zhu et al. (2017), sec. 4 (Training details).
    # The LR schedule is the reference code's exactly (kit.linear_decay_lr): 99 epochs at 2e-4, then
    # linearly down, the 200th at 0.
    kit.add_common_args(parser, batch_size=1, lr=2e-4, beta1=0.5, epochs=100, epochs_decay=100, sample_every=200)
    args, ckpt = kit.parse_args(parser, argv)
    if args.pool_size < 0:
        parser.error(f"--pool-size must be at least 0 (0: no pool), got {args.pool_size}")
    if args.image_size % 4 or args.image_size < max(8, 2 ** (args.n_layers_d + 2)):
        raise MiniganError(f"--image-size {args.image_size}: the ResNet generator needs a multiple of 4, the "
                           f"PatchGAN at least {2 ** (args.n_layers_d + 2)} (or fewer --n-layers-d)")
    if not args.translate:  # the data first: a wrong --data fails before anything is written
        root = find_dataset(args.data, args.data_root, "unpaired")
        load = round(args.image_size * LOAD / CROP)
        data = UnpairedImages(root, "train", load, args.image_size, train=True)  # (a, random b), 3 x S x S
        tests = [image_files(root / f"test{d}")[:args.test_images] for d in "AB"]
        check_images([*data.file_lists(), *tests], args.skip_bad_images)  # every file opens, or one error
        test_a, test_b = (load_test_split(files, root / f"test{d}", args.image_size) for files, d in zip(tests, "AB"))
    run = kit.Run("cyclegan", args, ckpt)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    autocast, scaler = mixed_precision(args.amp, run.device)

    # The nets. G: (N, 3, S, S) -> (N, 3, S, S) in [-1, 1]; D: (N, 3, S, S) -> (N, 1, s, s) patch logits.
    # Weights ~ N(0, 0.02) (the reference code's init). One Adam for both Gs, one for both Ds.
    G_AB, G_BA = (ResnetGenerator(ngf=args.ngf, n_blocks=args.n_blocks) for _ in "AB")
    D_A, D_B = (PatchGAN(3, args.ndf, args.n_layers_d, norm="instance") for _ in "AB")
    for net in (G_AB, G_BA, D_A, D_B):
        net.apply(kit.init_weights)
        net.to(run.device, memory_format=fmt)
    kit.compile_nets(args, G_AB, G_BA, D_A, D_B)  # --compile
    G = G_AB if args.direction == "AtoB" else G_BA  # the one --translate and --init-from use
    if args.init_from and not ckpt:  # a checkpoint's weights replace them anyway
        load_reference(G, args.init_from)
    opt_g = kit.adam([*G_AB.parameters(), *G_BA.parameters()], args.lr, args.beta1)
    opt_d = kit.adam([*D_A.parameters(), *D_B.parameters()], args.lr, args.beta1)
    sched_g = kit.linear_decay_lr(opt_g, args.epochs, args.epochs_decay)  # stepped at each epoch's end
    sched_d = kit.linear_decay_lr(opt_d, args.epochs, args.epochs_decay)
    pool_a, pool_b = ImagePool(args.pool_size), ImagePool(args.pool_size)  # earlier fake_a / fake_b
    run.track(G_AB=G_AB, G_BA=G_BA, D_A=D_A, D_B=D_B, opt_g=opt_g, opt_d=opt_d, sched_g=sched_g,
              sched_d=sched_d, pool_a=pool_a, pool_b=pool_b)
    if scaler.is_enabled():  # fp16's loss scale: a resumed run goes on with it
        run.track(scaler=scaler)
    if args.translate:  # in eval mode, the same function as in training mode here (unlike pix2pix's
        # batch norm and dropout, see train_pix2pix.py): instance norm keeps no running statistics, it
        # normalizes each image by its own in both modes, and the ResNet generator has no dropout
        translate_files(G, args, ckpt, run.dir, 8, run.device)  # multiples of 4, at least 8: 8 does both
        return 0

    for step, (real_a, real_b) in run.batches(data, epochs=args.epochs + args.epochs_decay):
        real_a, real_b = (t.to(run.device, memory_format=fmt) for t in (real_a, real_b))  # N x 3 x S x S
        logged = train_step(G_AB, G_BA, D_A, D_B, opt_g, opt_d, pool_a, pool_b, real_a, real_b, args,
                            autocast, scaler)
        if run.epoch_end:
            sched_g.step()
            sched_d.step()
            logged.update(cycle_l1(G_AB, G_BA, test_a, test_b, run.device))
            tqdm.write(f"epoch {run.epoch}: test cycle L1 A {logged['test_cycle_a']:.4f}, B "
                       f"{logged['test_cycle_b']:.4f}; next epoch's lr {opt_g.param_groups[0]['lr']:.3g}")
        run.log(**logged)
        if run.sample_due:
            run.save_samples(sample_rows(G_AB, G_BA, test_a[:4], test_b[:4], run.device), nrow=4)
    return run.exit_code


def load_test_split(files, folder, size):
    """The test images `files` of `folder`, resized to size x size: (n, 3, size, size)."""
    if not files:
        raise MiniganError(f"no test images in {folder}: the sample grids and test cycle L1 need testA/ and testB/")
    return torch.stack([transform(load_image(f), size, size, train=False) for f in files])


def sample_rows(G_AB, G_BA, a, b, device):
    """Rows real | fake | reconstructed | identity: for each a, then for each b. (2n * 4, 3, S, S)."""
    a, b = a.to(device), b.to(device)
    fake_b, fake_a = kit.generate(G_AB, a), kit.generate(G_BA, b)
    rows_a = [a, fake_b, kit.generate(G_BA, fake_b), kit.generate(G_BA, a)]  # identity: G_BA leaves an A alone
    rows_b = [b, fake_a, kit.generate(G_AB, fake_a), kit.generate(G_AB, b)]
    return torch.cat([torch.stack(rows_a, 1), torch.stack(rows_b, 1)]).flatten(0, 1).float().cpu()


def cycle_l1(G_AB, G_BA, test_a, test_b, device, batch=8):
    """Mean |G_BA(G_AB(a)) - a| over the test A images and |G_AB(G_BA(b)) - b| over the B ones."""
    def cycle(there, back, images):
        rec = (kit.generate(back, kit.generate(there, x.to(device))).float().cpu() for x in images.split(batch))
        return torch.cat([(r - x).abs().mean((1, 2, 3)) for r, x in zip(rec, images.split(batch))]).mean().item()
    return {"test_cycle_a": cycle(G_AB, G_BA, test_a), "test_cycle_b": cycle(G_BA, G_AB, test_b)}


if __name__ == "__main__":
    kit.run_main(main)
