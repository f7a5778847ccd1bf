"""How good are generated MNIST digits? A score from a small classifier that minigan trains itself.

FID (Heusel et al. 2017) compares fakes and real images in the feature space of an Inception-v3 net;
that net is a download and knows nothing of digits. The same recipe works in the feature space of a
small CNN trained on MNIST here (one epoch, about a minute on a CPU, ~99% test accuracy, seeded, cached
beside the data). Three figures for a set of generated digits:

    confidence  mean over the fakes of max_c p(c | x): does each fake look like *some* digit?
    coverage    H(histogram of the predicted classes) / log 10: are all ten digits made, and equally
                often? 1 = uniform over the classes, 0 = a single class (mode collapse)
    fd          the Frechet distance between Gaussians fitted to the classifier's penultimate (128-d)
                features of the fakes (mean mu_f, covariance S_f) and of real test digits (mu_r, S_r):
                    |mu_f - mu_r|^2 + tr(S_f) + tr(S_r) - 2 tr((S_f S_r)^(1/2))
                0 for the same distribution; it sees blur, noise and missing variety alike.

The real digits are the MNIST test split, which the classifier never trained on: its second half is
the reference for fd, its first half (scored like fakes) gives the ceiling. Uniform noise gives the
floor. Both, and the MLP GAN after 1, 5 and 10 epochs, are in README's expected results.

>>> fd = frechet_distance(torch.zeros(3), torch.eye(3), torch.ones(3), 4 * torch.eye(3))
>>> round(fd, 6)             # |0 - 1|^2 * 3 dims + tr(I) + tr(4I) - 2 tr(2I) = 3 + 3 + 12 - 12
6.0
>>> round(coverage(torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])), 6), coverage(torch.tensor([7, 7, 7]))
(1.0, 0.0)
"""
import argparse
import math
import os
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..data.datasets import MNIST
from ..data.download import find_dataset
from ..errors import MiniganError
from ..files import write_atomically
from .run import generate

CACHE_NAME = "minigan-mnist-classifier-v1.pt"  # v1: the net, recipe and seed below; bump on any change
SEED, BATCH, MAX_LR = 0, 64, 3e-3
N_FAKES = 5000   # fakes per score (= the ceiling's real digits): fd depends on the sample size
MIN_ACCURACY = 0.985


class MNISTClassifier(nn.Module):
    """LeNet-like: conv5(16) - pool - conv5(32) - pool - fc 128 (the features) - fc 10 (the logits)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),   # 16 x 14 x 14
            nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # 32 x 7 x 7
            nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU())          # 128: the penultimate layer
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        return self.head(self.features(x))


def as_images(uint8):
    """MNIST's N x 28 x 28 uint8 digits as N x 1 x 28 x 28 floats in [-1, 1] (what G makes)."""
    return uint8.float().div(127.5).sub(1.0)[:, None]


def train_classifier(mnist_root):
    """Train the classifier on MNIST's 60000 training digits: one epoch, batch 64, Adam with a one-cycle
    LR (up to 3e-3 and down again, Smith 2018: one epoch reaches ~99%). Seeded, with torch's global
    random state left as it was (a training run that scores itself resumes exactly)."""
    train = MNIST(mnist_root, train=True)
    if len(train) != 60000:
        raise MiniganError(f"the MNIST score trains its classifier on the full MNIST training set, but "
                           f"{mnist_root} holds {len(train)} training digits: point --data at the real MNIST")
    x, y = as_images(train.images), train.labels.long()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        net = MNISTClassifier()
        opt = torch.optim.Adam(net.parameters())
        steps = len(x) // BATCH
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, MAX_LR, total_steps=steps)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(SEED))
        for i in tqdm(range(steps), desc="MNIST classifier (once, then cached)", mininterval=1.0):
            batch = order[i * BATCH:(i + 1) * BATCH]
            loss = F.cross_entropy(net(x[batch]), y[batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


@torch.no_grad()
def accuracy(net, mnist_root):
    test = MNIST(mnist_root, train=False)
    predicted = torch.cat([net(x).argmax(1) for x in as_images(test.images).split(1000)])
    return predicted.eq(test.labels.long()).float().mean().item()


def cache_folders(mnist_root):
    """Where the classifier is looked for and written, in order: $MINIGAN_CACHE alone if it is set;
    else beside the MNIST files, the user's cache folder, a temporary folder (the data may be read-only)."""
    if os.environ.get("MINIGAN_CACHE"):
        return [Path(os.environ["MINIGAN_CACHE"])]
    user = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "minigan"
    return [Path(mnist_root), user, Path(tempfile.gettempdir()) / "minigan"]


def load_classifier(mnist_root, log=print):
    """The cached classifier, or a newly trained one (cached in the first writable folder)."""
    net = MNISTClassifier()
    for folder in cache_folders(mnist_root):
        if (folder / CACHE_NAME).is_file():
            saved = torch.load(folder / CACHE_NAME, map_location="cpu", weights_only=True)
            net.load_state_dict(saved["state"])
            return net.eval()
    start = time.perf_counter()
    net = train_classifier(mnist_root)
    acc = accuracy(net, mnist_root)
    log(f"MNIST classifier: test accuracy {100 * acc:.2f}% after {time.perf_counter() - start:.0f} s")
    if acc < MIN_ACCURACY:
        raise MiniganError(f"the MNIST classifier reached only {100 * acc:.2f}% test accuracy "
                           f"(< {100 * MIN_ACCURACY}%): are {mnist_root}'s files the real MNIST?")
    saved = {"state": net.state_dict(), "accuracy": acc}
    for folder in cache_folders(mnist_root):
        try:
            path = write_atomically(folder / CACHE_NAME, lambda f: torch.save(saved, f))
        except OSError:  # read-only data, no home: try the next folder
            continue
        log(f"MNIST classifier: cached in {path}")
        break
    return net


def frechet_distance(mu1, cov1, mu2, cov2):
    """|mu1 - mu2|^2 + tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2)). tr of the square root is the sum of
    the square roots of cov1 @ cov2's eigenvalues (real and >= 0: it is similar to a PSD matrix;
    rounding makes some slightly negative or complex, hence .real and the clamp). In float64."""
    mu1, cov1, mu2, cov2 = (t.double() for t in (mu1, cov1, mu2, cov2))
    root_trace = torch.linalg.eigvals(cov1 @ cov2).real.clamp_min(0).sqrt().sum()
    return ((mu1 - mu2).square().sum() + cov1.trace() + cov2.trace() - 2 * root_trace).item()


def coverage(predicted):
    """Entropy of the histogram of predicted classes (0..9), divided by log 10 (its maximum)."""
    p = torch.bincount(predicted, minlength=10).double() / len(predicted)
    p = p[p > 0]
    return (-(p * p.log()).sum() / math.log(10)).abs().item()


def gaussian(features):
    return features.double().mean(0), torch.cov(features.double().T)


class MNISTScore:
    """score(images) -> {"score_conf", "score_coverage", "score_fd"} for digits in [-1, 1] (N x 1 x S x S,
    resized to 28 x 28 when S differs, e.g. DCGAN's 64); of_generator(G, nz) scores N_FAKES of G's."""

    def __init__(self, mnist_root, device="cpu", every=1, log=print):
        self.device, self.every = torch.device(device), every
        self.net = load_classifier(mnist_root, log).to(self.device)
        real = as_images(MNIST(mnist_root, train=False).images)
        self.real = real[:len(real) // 2]  # the ceiling's digits; the other half is the reference
        self.ref = gaussian(self.features_and_predictions(real[len(real) // 2:])[0])

    @torch.no_grad()
    def features_and_predictions(self, images, batch=1000):
        features, probs = [], []
        for x in images.split(batch):
            x = x.to(self.device).float()
            if x.shape[-1] != 28:
                # DCGAN's 64 x 64: bicubic keeps the strokes sharpest (real digits resized 28 -> 64
                # -> 28 score fd ~52 with it, ~86 with bilinear, against 25 as they are)
                x = F.interpolate(x, size=(28, 28), mode="bicubic", align_corners=False, antialias=True).clamp(-1, 1)
            f = self.net.features(x)
            features.append(f.cpu())
            probs.append(self.net.head(f).softmax(1).cpu())
        return torch.cat(features), torch.cat(probs)

    def score(self, images):
        features, probs = self.features_and_predictions(images)
        return {"score_conf": probs.max(1).values.mean().item(),
                "score_coverage": coverage(probs.argmax(1)),
                "score_fd": frechet_distance(*gaussian(features), *self.ref)}

    def at_epoch_end(self, run, G, nz):
        """In a training loop: G's score at the end of every `every`-th epoch (and a line saying it),
        else {}."""
        if not (run.epoch_end and (run.epoch + 1) % self.every == 0):
            return {}
        s = self.of_generator(G, nz)
        tqdm.write(f"epoch {run.epoch}: MNIST score: confidence {s['score_conf']:.3f}, coverage "
                   f"{s['score_coverage']:.3f}, fd {s['score_fd']:.1f} (real test digits: 0.983, 0.999, 25.0)")
        return s

    def of_generator(self, G, nz, batch=500):
        """The score of N_FAKES images of G (eval mode) from z's of a generator of their own: the same
        z's every time, and the training's random state is not touched."""
        g = torch.Generator().manual_seed(SEED + 1)
        fakes = [generate(G, torch.randn(batch, nz, generator=g).to(self.device)).cpu()
                 for _ in range(N_FAKES // batch)]
        return self.score(torch.cat(fakes))


def for_run(run, mnist_root, every):
    """The scorer of a training run: None with every = 0 (--score-every 0), and in every process but
    torchrun's rank 0 (it alone trains or loads the classifier, and logs)."""
    return MNISTScore(mnist_root, run.device, every) if every and run.is_main else None


def add_score_args(parser, default=1):
    parser.add_argument("--score-every", type=int, default=default, metavar="N",
                        help="on MNIST, score the samples every N epochs (at the epoch's end) with a small MNIST "
                        "classifier trained once and cached: confidence, class coverage and the Frechet "
                        f"distance of its features to real test digits; 0: never (default: {default})")


def main(argv=None):
    """python -m minigan.kit.mnist_score [MNIST_DIR]: the classifier's accuracy, the ceiling and the floor."""
    parser = argparse.ArgumentParser(prog="python -m minigan.kit.mnist_score", description=main.__doc__)
    parser.add_argument("mnist", nargs="?", default="mnist", help="MNIST folder or name (default: mnist)")
    root = find_dataset(parser.parse_args(argv).mnist, None, "mnist")
    scorer = MNISTScore(root)
    print(f"classifier test accuracy: {100 * accuracy(scorer.net, root):.2f}%")
    noise = torch.rand(N_FAKES, 1, 28, 28, generator=torch.Generator().manual_seed(SEED)) * 2 - 1
    for name, images in (("real test digits (ceiling)", scorer.real), ("uniform noise (floor)", noise)):
        s = scorer.score(images)
        print(f"{name}: confidence {s['score_conf']:.3f}, coverage {s['score_coverage']:.3f}, fd {s['score_fd']:.2f}")
    return 0


if __name__ == "__main__":
    from .run import run_main
    run_main(main)
