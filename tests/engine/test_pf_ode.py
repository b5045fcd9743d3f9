"""The σ-parametrised probability-flow ODE sampler (engine/samplers/pf_ode.py) and its σ grid,
against the closed form for Gaussian data."""

import math

import pytest
import torch

from engine.samplers.pf_ode import heun_sampler
from engine.samplers.langevin import SamplerDiverged
from engine.samplers.schedules import ScheduleError, karras_sigmas

MU, S = 0.3, 0.5          # data N(μ, s² I): p_σ = N(μ, (s² + σ²) I)


def gaussian_score(x, sigma):
    return -(x - MU) / (S**2 + float(sigma) ** 2)


def test_karras_grid_runs_from_sigma_max_to_sigma_min_then_zero():
    sig = karras_sigmas(10, 0.002, 16.0)
    assert len(sig) == 11 and sig[-1] == 0.0
    assert sig[0] == pytest.approx(16.0) and sig[-2] == pytest.approx(0.002)
    assert all(a > b for a, b in zip(sig, sig[1:]))
    # Equal steps in σ^{1/ρ} (ρ = 7): denser at small σ than an even grid in σ.
    roots = [s ** (1 / 7) for s in sig[:-1]]
    gaps = [a - b for a, b in zip(roots, roots[1:])]
    assert max(gaps) == pytest.approx(min(gaps), rel=1e-9)
    with pytest.raises(ScheduleError):
        karras_sigmas(0, 0.002, 16.0)


def test_heun_follows_the_exact_ode_flow_of_gaussian_data():
    # dx/dσ = −σ ∇log p_σ(x) = σ (x − μ)/(s² + σ²)  ⇒  x(σ) − μ = (x(σ_max) − μ) √(s² + σ²)/√(s² + σ_max²).
    sigma_max = 20.0
    x0 = MU + sigma_max * torch.randn(500, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sig = karras_sigmas(40, 0.002, sigma_max)
    seen = []
    out = heun_sampler(gaussian_score, x0, sig, callback=seen.append)
    # The last (Euler) step to σ = 0 is Tweedie's x + σ_min² s, exact for this flow up to O(σ_min²);
    # the rest is Heun's: second order, so twice the levels leave a quarter of the error.
    exact = MU + (x0 - MU) * S / math.sqrt(S**2 + sigma_max**2)
    err40 = float((out.x - exact).abs().max())
    err80 = float((heun_sampler(gaussian_score, x0, karras_sigmas(80, 0.002, sigma_max)).x - exact).abs().max())
    assert err40 < 0.012 and 3.5 < err40 / err80 < 4.5
    assert out.nfe == 2 * 40 - 1
    assert len(seen) == 41 and seen[0]["step"] == 0 and seen[-1]["final"]
    # The denoised estimate at σ is E[x_0 | x_σ] = μ + (x − μ) s²/(s² + σ²).
    mid = seen[20]
    sigma = sig[19]
    x_before = MU + (x0 - MU) * math.sqrt(S**2 + sigma**2) / math.sqrt(S**2 + sigma_max**2)
    want = MU + (x_before - MU) * S**2 / (S**2 + sigma**2)
    assert torch.allclose(mid["denoised"], want, atol=5e-3)


def test_a_diverging_ode_run_is_one_sentence():
    with pytest.raises(SamplerDiverged, match="ODE sampler diverged"):
        heun_sampler(lambda x, s: torch.full_like(x, float("nan")), torch.zeros(2, 2), karras_sigmas(3, 0.01, 1.0))
