"""Train the vanilla GAN on MNIST: two MLPs playing Goodfellow's minimax game (the course's nets).

    min_G max_D  V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]

D learns to tell real digits (label 1) from G's fakes (label 0); G learns to make D say "real".
Each step takes one batch of real digits and one of fakes made from fresh noise z ~ N(0, I):

    D step:  minimize -[log D(x) + log(1 - D(G(z)))]   on real and *detached* fakes (G stays fixed)
    G step:  minimize -log D(G(z))                      the "non-saturating" loss (--loss bce)

--loss minimax makes G minimize log(1 - D(G(z))) as in the game above: it saturates (the gradient
vanishes while D confidently rejects the fakes, i.e. early on), which is why everyone uses bce.
lsgan, wgan (with gradient penalty) and hinge are the later games, see minigan/losses.py.

Examples:
    python train_mnist.py                                   # 50 epochs, outputs in runs/mnist-mnist-<time>/
    python train_mnist.py --max-steps 300                   # a smoke run
    python train_mnist.py --resume runs/mnist-mnist-<time>  # continue exactly where it stopped
    python train_mnist.py --checkpoint runs/mnist-mnist-<time> --sample 64 --interpolate 8
"""
import torch

from minigan import kit, losses
from minigan.data import MNIST, find_dataset
from minigan.kit import latent, mnist_score
from minigan.nets import MLPDiscriminator, MLPGenerator

NZ = 100  # the size of z (the course's nets; Goodfellow et al. 2014)


def train_step(G, D, opt_g, opt_d, real, z, args):
    """One round of the game on a batch of real digits (N x 1 x 28 x 28) and noise z (N x NZ): D's
    step, then G's. Returns the losses, D's with its two terms."""
    fake = G(z)

    # D step: real up, fake down. fake.detach() cuts the graph, so this step leaves G alone.
    d_real, d_fake = losses.d_terms(D(real), D(fake.detach()), args.loss)
    d_loss = d_real + d_fake  # the course's d_loss_real + d_loss_fake
    if args.loss == "wgan":  # the critic must stay (softly) 1-Lipschitz
        d_loss = d_loss + losses.gradient_penalty(D, real, fake, args.gp)
    kit.optimizer_step(opt_d, d_loss)

    # G step: the same fakes through the updated D, now with the graph back into G. The course's
    # code draws a fresh batch of noise for this step; reusing D's fakes (as the PyTorch DCGAN
    # tutorial does) gives a gradient with the same expectation, both z's coming from N(0, I), and
    # saves a forward pass of G.
    g_loss = losses.g_loss(D(fake), args.loss)
    kit.optimizer_step(opt_g, g_loss)
    return {"d_loss": d_loss, "d_real": d_real, "d_fake": d_fake, "g_loss": g_loss}


def main(argv=None):
    parser = kit.parser(__doc__, "mnist")
    parser.add_argument("--data", default="mnist", metavar="PATH|NAME",
                        help="'mnist' (looked up in the data root, downloaded if absent) or a folder holding "
                        "the four MNIST idx files (default: mnist)")
    parser.add_argument("--loss", default="bce", choices=losses.KINDS,
                        help="the GAN game (default: bce, i.e. minimax D with the non-saturating G)")
    parser.add_argument("--gp", type=float, default=10.0, metavar="WEIGHT",
                        help="gradient-penalty weight added to D's loss with --loss wgan (default: 10, "
                        "Gulrajani et al. 2017)")
    # Two time-scales (Heusel et al. 2017, "GANs trained by a two time-scale update rule"): D and G
    # may use different learning rates. This D (784-2048-...-1) beats G early -- with one rate for both
    # its loss fell to ~0.1, and after 1500-2000 steps nearly every sample was a "1" -- so G moves
    # twice as fast. Measured on CPU, seed 0: at step 4500 the grid with --lr-g 4e-4 holds every digit
    # class (D's loss ~0.55, G's ~1.2), with 2e-4 it is still mostly 1s (D ~0.3, G ~2.2).
    parser.add_argument("--lr-g", type=float, default=4e-4, metavar="LR",
                        help="G's Adam learning rate; --lr is D's (default: 4e-4, twice --lr)")
    latent.add_sampling_args(parser)
    mnist_score.add_score_args(parser)
    # Adam with lr 2e-4 (D's; G's is --lr-g), beta1 0.5, batch 128: the settings Radford et al. (2015,
    # sec. 4) found to keep GAN training stable, also used for this MLP GAN. 50 epochs: the digits are
    # sharp by then.
    kit.add_common_args(parser, batch_size=128, lr=2e-4, beta1=0.5, epochs=50, sample_every=500)
    args, ckpt = kit.parse_args(parser, argv)
    if not (args.sample or args.interpolate):  # the data first: a wrong --data fails before anything is written
        root = find_dataset(args.data, args.data_root, "mnist")
        data = MNIST(root, train=True)  # 60000 digits, 1x28x28 in [-1, 1]
    run = kit.Run("mnist", args, ckpt)

    # The nets: z (100) -> 1x28x28 image in [-1, 1], and image -> one logit. torch's default init, as
    # in the course (the N(0, 0.02) init of kit.init_weights is DCGAN's, for conv nets).
    G = MLPGenerator(NZ).to(run.device)
    D = MLPDiscriminator().to(run.device)
    kit.compile_nets(args, G, D)  # --compile
    opt_g = kit.adam(G.parameters(), args.lr_g, args.beta1)
    opt_d = kit.adam(D.parameters(), args.lr, args.beta1)
    run.track(G=G, D=D, opt_g=opt_g, opt_d=opt_d)
    if args.sample or args.interpolate:
        latent.write_grids(G, args, ckpt, run.dir, NZ, run.device)
        return 0

    scorer = mnist_score.for_run(run, root, args.score_every)  # None with --score-every 0
    fixed_z = latent.fixed_noise(64, NZ, args.seed, run.device)  # the same 64 z's in every sample grid

    for step, (real, _) in run.batches(data):
        real = real.to(run.device)                                # N x 1 x 28 x 28
        z = torch.randn(real.shape[0], NZ, device=run.device)     # fresh noise every step
        logged = train_step(G, D, opt_g, opt_d, real, z, args)
        if scorer:  # the MNIST score, every --score-every epochs
            logged.update(scorer.at_epoch_end(run, G, NZ))
        run.log(**logged)
        if run.sample_due:  # G has no batch norm and no dropout: eval and training mode draw the same
            run.save_samples(kit.generate(G, fixed_z))
    return run.exit_code


if __name__ == "__main__":
    kit.run_main(main)
