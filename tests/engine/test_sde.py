"""SDE formulas: marginal mean/std vs the SDE's own drift and diffusion (moment ODEs and an
Euler–Maruyama simulation), exact mixture marginals vs autograd and vs sampling."""

import math

import pytest
import torch

from engine.sde.sdes import (SDEError, TutorialVESDE, make_sde, mixture_at, mixture_log_prob,
                        mixture_score)
from engine.targets import seeds_mixture

SDES = [make_sde("ve", 0.01, 50.0), make_sde("vp"), make_sde("subvp")]


def test_ve_and_vp_formulas_match_the_references():
    ve, vp, sub = SDES
    t = 0.3
    assert float(ve.std(torch.tensor(t))) == pytest.approx(0.01 * 5000**t, rel=1e-6)
    assert float(ve.diffusion(torch.tensor(t))) == pytest.approx(0.01 * 5000**t * math.sqrt(2 * math.log(5000)), rel=1e-6)
    lmc = -0.25 * t**2 * 19.9 - 0.5 * t * 0.1
    assert vp.mean_coef(t) == pytest.approx(math.exp(lmc))
    assert vp.std(t) == pytest.approx(math.sqrt(1 - math.exp(2 * lmc)))
    assert sub.std(t) == pytest.approx(1 - math.exp(2 * lmc))
    assert vp.prior_std == 1.0 and ve.prior_std == 50.0


@pytest.mark.parametrize("sde", SDES, ids=["ve", "vp", "subvp"])
def test_marginal_moments_solve_the_moment_odes(sde):
    """For dx = c(t)x dt + g dw: m' = c m and (std²)' = 2c std² + g² (VE: the kernel's std is
    σ(t), so (σ²)' = g² holds too)."""
    h = 1e-5
    for t in (0.1, 0.4, 0.8):
        c = float(sde.drift_coef(torch.tensor(t, dtype=torch.float64)))
        g2 = float(sde.diffusion(torch.tensor(t, dtype=torch.float64))) ** 2
        var = lambda s: float(sde.std(torch.tensor(s, dtype=torch.float64))) ** 2  # noqa: E731
        mean = lambda s: float(sde.mean_coef(torch.tensor(s, dtype=torch.float64)))  # noqa: E731
        dvar = (var(t + h) - var(t - h)) / (2 * h)
        dmean = (mean(t + h) - mean(t - h)) / (2 * h)
        assert dmean == pytest.approx(c * mean(t), rel=1e-5, abs=1e-9)
        assert dvar == pytest.approx(2 * c * var(t) + g2, rel=1e-4)


@pytest.mark.parametrize("sde", SDES, ids=["ve", "vp", "subvp"])
def test_euler_maruyama_simulation_matches_marginal_prob(sde):
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((20000, 1), 2.0, dtype=torch.float64)
    x = x0.clone()
    n = 1000
    for i in range(n // 2):  # simulate 0 → 0.5
        f, G = sde.discretize(x, i / n, n)
        x = x + f + G * torch.randn(x.shape, generator=g, dtype=x.dtype)
    mean, std = sde.marginal_prob(x0[:1], 0.5)
    # VE's kernel std is σ(t) (score_sde): the simulated increment from t = 0 has σ(t)² − σ_min².
    expected_var = float(std) ** 2 - (float(sde.std(torch.tensor(0.0))) ** 2 if sde.name == "ve" else 0.0)
    assert float(x.mean()) == pytest.approx(float(mean), abs=0.03 * max(1.0, math.sqrt(expected_var)))
    assert float(x.var()) == pytest.approx(expected_var, rel=0.05)


@pytest.mark.parametrize("sde", SDES, ids=["ve", "vp", "subvp"])
def test_mixture_marginal_score_is_the_gradient_of_its_log_density(sde):
    mix = seeds_mixture()
    x = torch.randn(50, 2, dtype=torch.float64) * 6
    t = torch.rand(50, dtype=torch.float64)
    xr = x.clone().requires_grad_(True)
    grad = torch.autograd.grad(mixture_log_prob(mix, sde, xr, t).sum(), xr)[0]
    assert torch.allclose(mixture_score(mix, sde, x, t), grad, atol=1e-9)
    # a scalar time gives the same as the per-sample path, and the object form agrees
    lp = mixture_log_prob(mix, sde, x, 0.37)
    assert torch.allclose(lp, mixture_log_prob(mix, sde, x, torch.full((50,), 0.37, dtype=torch.float64)))
    assert torch.allclose(lp, mixture_at(mix, sde, 0.37).log_prob(x), atol=1e-9)


def test_forward_samples_follow_the_closed_form_marginal():
    """x(t) = m x0 + std z from mixture samples has the mixture-at-t's moments."""
    sde = make_sde("vp")
    mix = seeds_mixture()
    g = torch.Generator().manual_seed(1)
    x0 = mix.sample(40000, generator=g, dtype=torch.float64)
    xt = sde.forward_sample(x0, 0.3, generator=g)
    ref = mixture_at(mix, sde, 0.3)
    m = torch.tensor(ref.means, dtype=torch.float64)
    w = torch.tensor(ref.weights, dtype=torch.float64)
    mean = (w[:, None] * m).sum(0)
    assert torch.allclose(xt.mean(0), mean, atol=0.05)
    var = (w[:, None] * (torch.tensor(ref.stds, dtype=torch.float64) ** 2 + m**2)).sum(0) - mean**2
    assert torch.allclose(xt.var(0), var, rtol=0.03)


def test_prior_logp_is_the_gaussian_density():
    sde = make_sde("ve", 0.01, 3.0)
    z = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    expect = torch.tensor([-math.log(2 * math.pi * 9), -math.log(2 * math.pi * 9) - 0.5])
    assert torch.allclose(sde.prior_logp(z), expect, atol=1e-6)


def test_tutorial_sde_closed_forms_and_the_net_divides_by_its_std():
    """dx = σ^t dw: std(t)² = ∫₀ᵗ σ^{2u} du = (σ^{2t} − 1)/(2 ln σ), g(t) = σ^t; the tutorial
    U-Net's output is f_θ(x, t)/std(t) with exactly this std."""
    from engine.models.registry import build_model

    sde = TutorialVESDE(25.0)
    t = torch.tensor([0.01, 0.5, 1.0], dtype=torch.float64)
    expect = torch.sqrt((25.0 ** (2 * t) - 1) / (2 * math.log(25.0)))
    assert torch.allclose(sde.std(t), expect)
    assert sde.std(0.5) == pytest.approx(math.sqrt(24 / (2 * math.log(25.0))))
    assert sde.diffusion(0.5) == pytest.approx(5.0)
    assert sde.prior_std == pytest.approx(float(expect[-1]))
    net = build_model({"kind": "tutorial_unet", "channels": [8, 16, 16, 32], "embed_dim": 16})
    assert net.sde == sde


def test_bad_parameters_are_one_sentence():
    with pytest.raises(SDEError, match="σ_min < σ_max"):
        make_sde("ve", 1.0, 0.5)
    with pytest.raises(SDEError, match="choose ve, vp or subvp"):
        make_sde("xx")
