"""Train a DCGAN (Radford, Metz, Chintala 2015) on 64x64 images: anime faces, any image folder, MNIST.

The same game as train_mnist.py,

    min_G max_D  V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]    (G: the non-saturating -log D(G(z)))

played by convolutional nets that follow the paper's guidelines: no pooling (strided convolutions in
D, transposed convolutions in G -- ours, minigan.ConvTranspose2d), batch norm in both (not on G's
output nor D's input), ReLU in G with tanh out, LeakyReLU(0.2) in D, no fully connected hidden
layers; weights ~ N(0, 0.02). The layer tables are in minigan/nets/mlp_dcgan.py.

Examples:
    python train_dcgan.py --data /path/to/anime_faces              # a folder of images, RGB 64x64
    python train_dcgan.py --data mnist                              # MNIST resized to 64x64, 1 channel
    python train_dcgan.py --data anime_faces --max-steps 200        # a smoke run ($MINIGAN_DATA/anime_faces)
    python train_dcgan.py --resume runs/dcgan-anime_faces-<time>    # continue exactly where it stopped
    python train_dcgan.py --checkpoint runs/dcgan-anime_faces-<time> --sample 64 --interpolate 8
"""
import torch

from minigan import kit, losses
from minigan.data import MNIST, ImageFolder, check_images, find_dataset, layout_problem
from minigan.kit import latent, mnist_score
from minigan.nets import DCGANDiscriminator, DCGANGenerator

NZ, IMAGE_SIZE = 100, 64  # z in R^100 and 64x64 images (Radford et al.; the PyTorch DCGAN tutorial)


def train_step(G, D, opt_g, opt_d, real, z):
    """One DCGAN step on a batch of real images (N x C x 64 x 64) and noise z (N x NZ): D's step, then
    G's, as in the PyTorch DCGAN tutorial's loop. Returns the losses, D's with its two terms."""
    fake = G(z)

    # D step: maximize log D(x) + log(1 - D(G(z))) on real and detached fakes (G stays fixed). Two
    # calls, two batches for D's batch norm (the tutorial's "separate mini-batches for real and fake").
    d_real, d_fake = losses.d_terms(D(real), D(fake.detach()))
    d_loss = d_real + d_fake  # the tutorial's errD = errD_real + errD_fake, not halved
    kit.optimizer_step(opt_d, d_loss)

    # G step: maximize log D(G(z)) through the updated D, on the same fakes.
    g_loss = losses.g_loss(D(fake))
    kit.optimizer_step(opt_g, g_loss)
    return {"d_loss": d_loss, "d_real": d_real, "d_fake": d_fake, "g_loss": g_loss}


def main(argv=None):
    parser = kit.parser(__doc__, "dcgan")
    parser.add_argument("--data", metavar="PATH|NAME",
                        help="(required) a folder of images (searched recursively), a dataset name "
                        "looked up in the data root ($MINIGAN_DATA, e.g. anime_faces), or 'mnist' / a folder "
                        "of MNIST idx files")
    parser.add_argument("--channels", type=int, choices=[1, 3],
                        help="image channels (default: follows the data, 1 for mnist, 3 for a folder; "
                        "1 turns a folder's images to grayscale)")
    parser.add_argument("--ngf", type=int, default=64, metavar="N",
                        help="G's width: channels of its last hidden layer, x8 at the first (default: 64)")
    parser.add_argument("--ndf", type=int, default=64, metavar="N",
                        help="D's width: channels of its first layer, x8 at the last (default: 64)")
    latent.add_sampling_args(parser)
    mnist_score.add_score_args(parser)
    # Adam lr 2e-4, beta1 0.5, batch 128: Radford et al. (2015), sec. 4 ("Details of adversarial
    # training"); the PyTorch tutorial trains 5 epochs on CelebA, small sets need more.
    kit.add_common_args(parser, batch_size=128, lr=2e-4, beta1=0.5, epochs=25, sample_every=200)
    args, ckpt = kit.parse_args(parser, argv)
    if not args.data:  # (not argparse's required=True: a resumed run takes it from its checkpoint)
        parser.error("--data is required")
    is_mnist = str(args.data).lower() == "mnist" or layout_problem(args.data, "mnist") is None
    args.channels = args.channels or (1 if is_mnist else 3)  # resolved now, so checkpoints record it
    if not (args.sample or args.interpolate):  # the data first: a wrong --data fails before anything is written
        if is_mnist:  # items are (image, label): keep the image
            mnist = find_dataset(args.data, args.data_root, "mnist")
            data = ImagesOnly(MNIST(mnist, train=True, image_size=IMAGE_SIZE))
        else:         # resized and centre-cropped to 64x64; every file opens, or one error
            data = ImageFolder(find_dataset(args.data, args.data_root, "folder"), IMAGE_SIZE, args.channels)
            check_images(data.file_lists(), args.skip_bad_images)
    run = kit.Run("dcgan", args, ckpt)

    # The nets: z (100x1x1) -> Cx64x64 in [-1, 1] through transposed convolutions, and a strided-conv
    # D -> one logit. Weights ~ N(0, 0.02) (the paper, sec. 4), batch-norm scales ~ N(1, 0.02).
    G = DCGANGenerator(NZ, args.ngf, args.channels).to(run.device)
    D = DCGANDiscriminator(args.ndf, args.channels).to(run.device)
    G.apply(kit.init_weights)
    D.apply(kit.init_weights)
    kit.compile_nets(args, G, D)  # --compile
    opt_g = kit.adam(G.parameters(), args.lr, args.beta1)
    opt_d = kit.adam(D.parameters(), args.lr, args.beta1)
    run.track(G=G, D=D, opt_g=opt_g, opt_d=opt_d)
    if args.sample or args.interpolate:
        latent.write_grids(G, args, ckpt, run.dir, NZ, run.device)
        return 0

    scorer = mnist_score.for_run(run, mnist, args.score_every) if is_mnist else None  # None: not scored
    fixed_z = latent.fixed_noise(64, NZ, args.seed, run.device)  # the same 64 z's in every sample grid

    for step, real in run.batches(data):
        real = real.to(run.device)                                # N x C x 64 x 64
        z = torch.randn(real.shape[0], NZ, device=run.device)     # fresh noise every step
        logged = train_step(G, D, opt_g, opt_d, real, z)
        if scorer:  # the MNIST score, every --score-every epochs
            logged.update(scorer.at_epoch_end(run, G, NZ))
        run.log(**logged)
        if run.sample_due:  # G in training mode, as the PyTorch DCGAN tutorial samples its fixed noise:
            # batch norm on the statistics of the 64 fixed z's, the G that D is being trained against.
            # Eval mode would use the running averages, which lag behind the weights while they move
            # fast: after 200 steps (ngf 32, batch 64, anime faces, seeds 0-2) the two modes' samples
            # differed by 22-27% of their spread (rms). Unlike the tutorial, sampling leaves the averages be.
            fake = kit.generate(G, fixed_z, training=True)
            run.save_samples(fake)
    return run.exit_code


class ImagesOnly(torch.utils.data.Dataset):
    """A labelled dataset without its labels."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        return self.dataset[i][0]


if __name__ == "__main__":
    kit.run_main(main)
