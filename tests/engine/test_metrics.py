"""Sample metrics against known values."""

import pytest
import torch

from engine.metrics import (energy_distance, fisher_divergence, mode_weights, sliced_wasserstein,
                            total_variation)
from engine.targets import GaussianMixture, seeds_mixture


def test_mode_weights_of_exact_samples_and_tv():
    mix = GaussianMixture.create([(5, 5), (-5, -5), (5, -5)], [0.5, 0.3, 0.2])
    x, labels = mix.sample_with_labels(20000, torch.Generator().manual_seed(0))
    w = mode_weights(x, mix)
    torch.testing.assert_close(w, torch.bincount(labels, minlength=3).double() / 20000)
    assert total_variation(w, mix.weights) < 0.01
    assert total_variation([1, 0], [0, 1]) == pytest.approx(1.0)
    assert total_variation([0.5, 0.5], [0.8, 0.2]) == pytest.approx(0.3)


def test_mode_weights_ignore_non_finite_particles():
    mix = seeds_mixture()
    x = torch.tensor([[5.0, 5.0], [float("nan"), 0.0], [-5.0, -5.0], [4.0, 4.0]])
    assert mode_weights(x, mix).tolist() == pytest.approx([2 / 3, 1 / 3])


def test_sliced_wasserstein_of_shifted_cloud_equals_shift_norm_projection():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3000, 2, generator=g)
    assert sliced_wasserstein(x, x) == pytest.approx(0.0, abs=1e-12)
    shift = torch.tensor([3.0, 0.0])
    # W₂ along direction v is |vᵀshift|; averaged in square over directions it is |shift|²/2 in 2D
    sw = sliced_wasserstein(x, x + shift, n_projections=2000)
    assert sw == pytest.approx((9.0 / 2) ** 0.5, rel=0.05)


def test_energy_distance_zero_for_same_law_positive_otherwise():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(1500, 2, generator=g), torch.randn(1500, 2, generator=g)
    assert abs(energy_distance(a, b)) < 0.02
    assert energy_distance(a, b + 2) > 1.0


def test_fisher_divergence_of_a_shifted_score_is_half_the_squared_shift():
    mix = seeds_mixture()
    x = mix.sample(100)
    shifted = lambda x, s: mix.score(x, s) + torch.tensor([1.0, 2.0])  # noqa: E731
    assert fisher_divergence(shifted, mix.score, x) == pytest.approx(2.5, rel=1e-5)
    assert fisher_divergence(mix.score, mix.score, x) == 0.0
