"""Probability-flow ODE log-likelihood against the closed-form mixture density; bits/dim."""

import math

import pytest
import torch

from engine.sde.likelihood import bits_per_dim, dequantize, ode_log_likelihood
from engine.sde.sdes import exact_score_fn, make_sde, mixture_log_prob
from engine.targets import seeds_mixture


@pytest.fixture(scope="module")
def points():
    return seeds_mixture().sample(100, generator=torch.Generator().manual_seed(3), dtype=torch.float64)


@pytest.mark.parametrize("name", ["ve", "vp"])
def test_ode_nll_matches_the_closed_form_per_point(name, points):
    """With the exact score the ODE's mean NLL equals −log p(x) to ~0.01 nats per point (the
    small remainder is the prior N(0, σ_max² I) standing in for the true p_1)."""
    mix = seeds_mixture()
    sde = make_sde(name, 0.01, 100.0)
    res = ode_log_likelihood(exact_score_fn(mix, sde), points, sde)
    assert res.method == "exact"
    exact = mix.log_prob(points)
    assert float((res.log_p - exact).mean().abs()) < 0.01
    assert res.nfe > 10


def test_ode_integration_alone_is_exact_with_the_true_terminal_density(points):
    """Replacing the prior by the exact p_1 isolates the ODE: log p_eps matches pointwise."""
    mix = seeds_mixture()
    sde = make_sde("ve", 0.01, 20.0)
    res = ode_log_likelihood(exact_score_fn(mix, sde), points[:40], sde,
                             terminal_logp=lambda z: mixture_log_prob(mix, sde, z, 1.0))
    exact = mixture_log_prob(mix, sde, points[:40], sde.eps)
    assert float((res.log_p - exact).abs().max()) < 0.01


def test_hutchinson_estimate_is_unbiased_on_average(points):
    mix = seeds_mixture()
    sde = make_sde("vp")
    exact = ode_log_likelihood(exact_score_fn(mix, sde), points, sde, exact_trace=True)
    hutch = ode_log_likelihood(exact_score_fn(mix, sde), points, sde, exact_trace=False, seed=1)
    assert hutch.method == "hutchinson"
    diff = (hutch.log_p - exact.log_p)
    # one probe per point: the error is zero-mean with per-point spread; the mean over 100
    # points must be within 3 standard errors of zero.
    assert float(diff.mean().abs()) < 3 * float(diff.std()) / math.sqrt(len(diff)) + 1e-3
    assert float(diff.std()) > 0  # it is an estimate, not the exact trace


def test_bits_per_dim_of_the_uniform_density_is_eight():
    """log p = 0 on [0, 1)^D is the uniform distribution over 256 levels: exactly 8 bits/dim."""
    assert torch.allclose(bits_per_dim(torch.zeros(3), 784), torch.full((3,), 8.0, dtype=torch.float32))
    # a density twice as high everywhere costs one bit less per image, 1/D bits per dim
    assert float(bits_per_dim(torch.tensor(784 * math.log(2)), 784)) == pytest.approx(7.0)


def test_dequantisation_stays_in_the_pixel_bin():
    k = torch.randint(0, 256, (1000,), generator=torch.Generator().manual_seed(0)).to(torch.uint8)
    x = dequantize(k, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert torch.equal(torch.floor(x * 256).to(torch.uint8), k)
    assert float(x.min()) >= 0 and float(x.max()) < 1
