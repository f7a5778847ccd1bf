"""The MNIST score: the classifier it trains (once per session, cached), its three figures on real
digits (the ceiling) and noise (the floor), the Frechet distance, the cache's fallbacks."""
import math

import pytest
import torch
import torch.nn.functional as F

from minigan.data import MNIST
from minigan.kit import mnist_score
from minigan.nets import MLPGenerator


@pytest.fixture(scope="module")
def mnist(data_root):
    return data_root / "mnist"


@pytest.fixture(scope="module")
def scorer(mnist):
    return mnist_score.MNISTScore(mnist)  # trains the classifier if this session's cache lacks it


def test_classifier_accuracy(scorer, mnist):
    acc = mnist_score.accuracy(scorer.net, mnist)
    print(f"MNIST classifier test accuracy: {100 * acc:.2f}%")
    assert acc >= mnist_score.MIN_ACCURACY


def test_real_digits_score_high_and_noise_low(scorer):
    real = scorer.score(scorer.real)
    assert real["score_conf"] > 0.95 and real["score_coverage"] > 0.99 and real["score_fd"] < 50
    big = scorer.score(F.interpolate(scorer.real, size=(64, 64), mode="bilinear", antialias=True))  # DCGAN's size
    assert real["score_fd"] < big["score_fd"] < real["score_fd"] + 40 and big["score_conf"] > 0.95  # resampling blurs
    noise = scorer.score(torch.rand(mnist_score.N_FAKES, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    assert noise["score_fd"] > 20 * real["score_fd"] and noise["score_conf"] < 0.5


def test_one_class_has_no_coverage(scorer, mnist):
    test = MNIST(mnist, train=False)
    sevens = mnist_score.as_images(test.images[test.labels == 7])
    score = scorer.score(sevens)
    assert score["score_coverage"] < 0.1 and score["score_conf"] > 0.95 and score["score_fd"] > 100


def test_of_generator_is_repeatable_and_leaves_the_rng_alone(scorer):
    G = MLPGenerator(100)
    state = torch.get_rng_state()
    a, b = scorer.of_generator(G, 100), scorer.of_generator(G, 100)
    assert a == b and torch.equal(state, torch.get_rng_state()) and G.training
    assert a["score_fd"] > 100  # an untrained G makes no digits


@pytest.mark.parametrize("seed", range(3))
def test_frechet_distance_against_commuting_covariances(seed):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))  # a random rotation
    a, b = torch.rand(6, generator=g, dtype=torch.float64) + 0.1, torch.rand(6, generator=g, dtype=torch.float64)
    mu1, mu2 = torch.randn(6, generator=g, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64)
    cov1, cov2 = q @ torch.diag(a) @ q.T, q @ torch.diag(b) @ q.T  # (cov1 cov2)^(1/2) = q diag(sqrt(ab)) q^T
    expected = ((mu1 - mu2) ** 2).sum() + (a + b - 2 * (a * b).sqrt()).sum()
    assert mnist_score.frechet_distance(mu1, cov1, mu2, cov2) == pytest.approx(expected.item(), rel=1e-9)
    assert mnist_score.frechet_distance(mu1, cov1, mu1, cov1) == pytest.approx(0.0, abs=1e-9)


def test_coverage():
    assert mnist_score.coverage(torch.arange(10).repeat(5)) == pytest.approx(1.0)
    assert mnist_score.coverage(torch.tensor([0, 1] * 5)) == pytest.approx(math.log(2) / math.log(10))


def test_cache_falls_back_when_a_folder_is_not_writable(tmp_path, monkeypatch):
    blocked = tmp_path / "a_file"
    blocked.write_text("")  # a folder below a file cannot be made: like read-only data
    monkeypatch.setattr(mnist_score, "cache_folders", lambda root: [blocked / "cache", tmp_path / "user"])
    trained = []
    monkeypatch.setattr(mnist_score, "train_classifier", lambda root: trained.append(1) or mnist_score.MNISTClassifier())
    monkeypatch.setattr(mnist_score, "accuracy", lambda net, root: 0.99)
    first = mnist_score.load_classifier(tmp_path, log=lambda line: None)
    assert (tmp_path / "user" / mnist_score.CACHE_NAME).is_file() and trained == [1]
    second = mnist_score.load_classifier(tmp_path, log=lambda line: None)  # from the cache: not trained again
    assert trained == [1]
    assert all(torch.equal(x, y) for x, y in zip(first.state_dict().values(), second.state_dict().values()))
    monkeypatch.setattr(mnist_score, "accuracy", lambda net, root: 0.5)
    monkeypatch.setattr(mnist_score, "cache_folders", lambda root: [tmp_path / "other"])
    with pytest.raises(mnist_score.MiniganError, match="only 50.00% test accuracy"):
        mnist_score.load_classifier(tmp_path, log=lambda line: None)
    assert not (tmp_path / "other").exists()  # a bad classifier is not cached
