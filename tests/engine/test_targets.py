"""Exact mixture scores and densities against autograd and closed forms."""

import math

import pytest
import torch

from engine.targets import (GaussianMixture, TargetError, parse_numbers, parse_points, sample_set,
                            seeds_mixture, SAMPLE_SETS)


def random_mixture(g: torch.Generator, k: int, dim: int = 2) -> GaussianMixture:
    means = (torch.randn(k, dim, generator=g, dtype=torch.float64) * 4).tolist()
    weights = (torch.rand(k, generator=g, dtype=torch.float64) + 0.05).tolist()
    stds = []
    for i in range(k):  # alternate isotropic and diagonal components
        if i % 2:
            stds.append(float(0.3 + torch.rand(1, generator=g)))
        else:
            stds.append((0.3 + torch.rand(dim, generator=g, dtype=torch.float64)).tolist())
    return GaussianMixture.create(means, weights, stds)


@pytest.mark.parametrize("trial", range(6))
def test_score_equals_autograd_of_log_prob_at_random_sigma(trial):
    g = torch.Generator().manual_seed(trial)
    mix = random_mixture(g, k=1 + trial)
    x = torch.randn(64, 2, generator=g, dtype=torch.float64) * 6
    for sigma in [0.0, float(torch.rand(1, generator=g) * 0.5), float(torch.rand(1, generator=g) * 10)]:
        xx = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(mix.log_prob(xx, sigma).sum(), xx)
        torch.testing.assert_close(mix.score(x, sigma), grad, rtol=1e-9, atol=1e-10)
        # per-point σ (tensor path) gives the same field
        sig_t = torch.full((64,), sigma, dtype=torch.float64)
        torch.testing.assert_close(mix.score(x, sig_t), grad, rtol=1e-9, atol=1e-10)


def test_log_prob_single_gaussian_closed_form_and_perturbation_adds_variance():
    mix = GaussianMixture.create([(1.0, -2.0)], [1.0], [(0.5, 2.0)])
    x = torch.tensor([[0.0, 0.0], [1.0, -2.0], [3.0, 1.0]], dtype=torch.float64)
    for sigma in [0.0, 1.5]:
        var = torch.tensor([0.25, 4.0], dtype=torch.float64) + sigma**2
        diff = x - torch.tensor([1.0, -2.0], dtype=torch.float64)
        expected = -0.5 * ((diff**2 / var).sum(1) + torch.log(var).sum() + 2 * math.log(2 * math.pi))
        torch.testing.assert_close(mix.log_prob(x, sigma), expected)
        torch.testing.assert_close(mix.score(x, sigma), -diff / var)
        torch.testing.assert_close(mix.energy(x, sigma), -expected)


def test_density_integrates_to_one_on_a_grid():
    mix = seeds_mixture(0.7)
    for sigma in [0.0, 2.0]:
        lin = torch.linspace(-14, 14, 561, dtype=torch.float64)
        xx, yy = torch.meshgrid(lin, lin, indexing="xy")
        pts = torch.stack([xx.ravel(), yy.ravel()], -1)
        cell = (lin[1] - lin[0]) ** 2
        mass = float(mix.log_prob(pts, sigma).exp().sum() * cell)
        assert mass == pytest.approx(1.0, abs=2e-3)


def test_sampling_matches_weights_means_and_perturbed_variance():
    mix = seeds_mixture(0.8)
    g = torch.Generator().manual_seed(3)
    x = mix.sample(40000, generator=g, sigma=1.0, dtype=torch.float64)
    major = x[:, 0] > 0
    assert float(major.double().mean()) == pytest.approx(0.8, abs=0.01)
    assert x[major].mean(0).tolist() == pytest.approx([5, 5], abs=0.05)
    assert x[major].var(0).tolist() == pytest.approx([2.0, 2.0], rel=0.04)  # 1 + σ²


def test_far_from_the_minor_mode_the_score_is_blind_to_the_weights():
    """The seeds' point: where one component dominates, ∇log p ≈ ∇log p_k whatever the weights."""
    probe = torch.tensor([[4.0, 6.0]], dtype=torch.float64)
    s1 = seeds_mixture(0.8).score(probe)
    s2 = seeds_mixture(0.2).score(probe)
    assert float((s1 - s2).norm()) < 1e-10
    # at a large noise level the weights do matter between the modes
    mid = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    assert float((seeds_mixture(0.8).score(mid, 10.0) - seeds_mixture(0.2).score(mid, 10.0)).norm()) > 1e-3


def test_responsibilities_sum_to_one_and_weights_normalised():
    mix = GaussianMixture.create([(0, 0), (3, 0), (0, 3)], [2, 1, 1])
    assert mix.weights == pytest.approx((0.5, 0.25, 0.25))
    r = mix.responsibilities(torch.randn(10, 2))
    torch.testing.assert_close(r.sum(-1), torch.ones(10))


@pytest.mark.parametrize("means,weights,stds,fragment", [
    ([(0, 0), (1, 1)], [1.0], None, "weights"),
    ([(0, 0)], [-1.0], None, "non-negative"),
    ([(0, 0), (1,)], [1, 1], None, "same number"),
    ([(0, 0)], [1.0], [0.0], "positive"),
    ([], [], None, "at least one"),
])
def test_bad_mixtures_get_one_sentence(means, weights, stds, fragment):
    with pytest.raises(TargetError, match=fragment):
        GaussianMixture.create(means, weights, stds)


def test_parsers():
    assert parse_points("5,5;-5,-5") == [(5.0, 5.0), (-5.0, -5.0)]
    assert parse_numbers("0.8,0.2", "weights") == [0.8, 0.2]
    with pytest.raises(TargetError):
        parse_points("5,a")
    with pytest.raises(TargetError):
        parse_numbers("", "weights")


def test_round_trip_dict():
    mix = GaussianMixture.create([(1, 2), (3, 4)], [0.3, 0.7], [(1, 2), 0.5])
    assert GaussianMixture.from_dict(mix.to_dict()) == mix


@pytest.mark.parametrize("name", sorted(SAMPLE_SETS))
def test_sample_sets_are_seeded_and_finite(name):
    a = sample_set(name, 500, torch.Generator().manual_seed(1))
    b = sample_set(name, 500, torch.Generator().manual_seed(1))
    assert a.shape == (500, 2) and torch.isfinite(a).all()
    torch.testing.assert_close(a, b)
    assert float(a.std()) > 0.5  # spread out, not collapsed
    with pytest.raises(TargetError):
        sample_set("nope", 5)
