"""Langevin samplers with exact scores against closed forms and the seeds' experiment."""

import math

import pytest
import torch

from engine.lab.mixing import MixConfig, run_mix, seeds_defaults
from engine.samplers.langevin import (FrameRecorder, SamplerDiverged, annealed_schedule,
                                      init_particles, langevin_dynamics, plain_schedule)
from engine.targets import GaussianMixture


def test_langevin_on_a_gaussian_reproduces_mean_and_covariance():
    """Stationary law of x' = x + (α/2)s + √α z for N(μ, diag(v)) is N(μ, v/(1 − α/(4v)))."""
    mean = torch.tensor([1.0, -2.0], dtype=torch.float64)
    var = torch.tensor([2.0, 0.5], dtype=torch.float64)
    gauss = GaussianMixture.create([mean.tolist()], [1.0], [var.sqrt().tolist()])
    alpha = 0.05
    x0 = torch.zeros(8000, 2, dtype=torch.float64)
    out = langevin_dynamics(gauss.score, x0, plain_schedule(alpha, 800), torch.Generator().manual_seed(0))
    x = out.x
    stationary = var / (1 - alpha / (4 * var))
    torch.testing.assert_close(x.mean(0), mean, atol=0.05, rtol=0)
    cov = torch.cov(x.T)
    torch.testing.assert_close(torch.diagonal(cov), stationary, rtol=0.05, atol=0)
    assert abs(float(cov[0, 1])) < 0.03
    assert out.nfe == 800


def test_annealed_recovers_seed_weights_while_plain_langevin_does_not():
    """The seeds' experiment with the exact score: 0.8 N((5,5), I) + 0.2 N((−5,−5), I)."""
    errors = {}
    for sampler in ("langevin", "annealed"):
        cfg = seeds_defaults(sampler)
        cfg = MixConfig(**{**cfg.__dict__, "particles": 4000, "seed": 1})
        res = run_mix(cfg)
        errors[sampler] = res.weight_error
        assert res.target_weights == pytest.approx([0.8, 0.2])
    assert errors["annealed"] < 0.03
    assert errors["langevin"] > 0.2


def test_same_seed_same_particles_and_shared_initialisation():
    a = run_mix(MixConfig(sampler="annealed", steps=20, seed=5))
    b = run_mix(MixConfig(sampler="annealed", steps=20, seed=5))
    c = run_mix(MixConfig(sampler="langevin", steps=20, seed=5))
    torch.testing.assert_close(a.sample.x, b.sample.x)
    torch.testing.assert_close(a.init, c.init)  # both samplers start from identical particles
    assert not torch.equal(a.sample.x, run_mix(MixConfig(sampler="annealed", steps=20, seed=6)).sample.x)


def test_annealed_step_sizes_follow_eps_sigma_ratio():
    sched = annealed_schedule(0.1, 100, 20.0, 1.0, 10)
    for sigma, alpha in zip(sched.sigmas, sched.step_sizes):
        assert alpha == pytest.approx(0.1 * sigma**2 / 1.0**2)
    assert sched.total_steps == 1000


def test_final_denoising_is_tweedie_step():
    """x + σ² ∇log p_σ(x) is the posterior mean E[x₀|x]; for one Gaussian N(0, s²) that is
    x · s²/(s² + σ²)."""
    gauss = GaussianMixture.create([(0.0, 0.0)], [1.0], [1.0])
    x0 = torch.full((1, 2), 3.0, dtype=torch.float64)
    sched = plain_schedule(1e-12, 1, sigma=2.0, denoise=True)
    out = langevin_dynamics(gauss.score, x0, sched, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.x, torch.full((1, 2), 3.0 * 1 / 5, dtype=torch.float64), atol=1e-5, rtol=0)
    assert out.nfe == 2


def test_frames_are_recorded_and_subsampled():
    out = run_mix(MixConfig(sampler="annealed", steps=10, levels=3, record_every=5,
                            record_particles=50, particles=200)).sample
    assert out.frames.shape == (1 + 30 // 5, 50, 2)
    assert out.frame_steps == [0, 5, 10, 15, 20, 25, 30]
    torch.testing.assert_close(out.frames[-1], out.x[:50])


def test_the_callback_sees_every_step_and_the_recorder_keeps_every_kth():
    """k-diffusion style: callback(info) at step 0, after each step, and for the denoised state."""
    gauss = GaussianMixture.create([(0.0, 0.0)], [1.0], [1.0])
    sched = annealed_schedule(0.1, 4, 4.0, 1.0, 3, denoise=True)
    seen = []
    rec = FrameRecorder(every=3, keep=2)

    def callback(info):
        seen.append((info["step"], info["level"], info.get("final", False)))
        rec(info)

    x0 = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    out = langevin_dynamics(gauss.score, x0, sched, torch.Generator().manual_seed(1), callback)
    assert seen[0] == (0, 0, False) and seen[-1] == (12, 2, True) and len(seen) == 14
    assert [s for s, _, _ in seen[1:-1]] == list(range(1, 13))
    assert [lv for _, lv, _ in seen[1:-1]] == [0] * 4 + [1] * 4 + [2] * 4
    assert rec.labels("step") == [0, 3, 6, 9, 12, 12] and rec.frames().shape == (6, 2, 2)
    torch.testing.assert_close(rec.frames()[0], x0[:2])
    torch.testing.assert_close(rec.frames()[-1], out.x[:2])
    kept = rec.langevin_result(out)
    assert kept.frame_levels == [0, 0, 1, 2, 2, 2] and kept.nfe == 13 and kept.x is out.x
    plain = langevin_dynamics(gauss.score, x0, sched, torch.Generator().manual_seed(1))
    assert torch.equal(plain.x, out.x) and plain.frames is None  # recording changes nothing


def test_divergence_is_stopped_with_a_hint():
    with pytest.raises(SamplerDiverged, match="smaller step size") as info:
        run_mix(MixConfig(sampler="langevin", steps=1000, step_size=30.0))
    assert info.value.step <= 20

    def nan_score(x, sigma):
        return torch.full_like(x, float("nan"))

    with pytest.raises(SamplerDiverged, match="NaN"):
        langevin_dynamics(nan_score, torch.zeros(5, 2), plain_schedule(0.1, 50), torch.Generator())


def test_init_particles_specs():
    g = torch.Generator().manual_seed(0)
    u = init_particles("uniform:-8,8", 5000, 2, g)
    assert float(u.min()) >= -8 and float(u.max()) <= 8 and abs(float(u.mean())) < 0.3
    n = init_particles("gaussian:1,3", 5000, 2, g)
    assert float(n.mean()) == pytest.approx(1.0, abs=0.1) and float(n.std()) == pytest.approx(3.0, rel=0.05)
    for bad in ["uniform:3,1", "gaussian:0,-1", "cauchy", "uniform:a,b"]:
        with pytest.raises(ValueError):
            init_particles(bad, 3, 2, g)


def test_impossible_configs_get_one_sentence():
    with pytest.raises(ValueError, match="σ_max"):
        run_mix(MixConfig(sigma_max=0.5, sigma_min=1.0))
    with pytest.raises(ValueError, match="weight"):
        run_mix(MixConfig(weights=(1.0,)))
    with pytest.raises(ValueError, match="step size"):
        run_mix(MixConfig(step_size=0.0))
