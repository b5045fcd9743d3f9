"""Langevin samplers with exact scores against closed forms and the seeds' experiment."""


import pytest
import torch

from engine.lab.mixing import (MixConfig, initial_particles, noise_generator, recorder_for, run_mix,
                               schedule_for, seeds_defaults)
from engine.samplers import mixture_kernel
from engine.samplers.langevin import (FrameRecorder, SamplerDiverged, annealed_schedule,
                                      init_particles, kernel_noise, langevin_dynamics,
                                      mixture_langevin_chains, plain_schedule)
from engine.targets import GaussianMixture, seeds_mixture


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


# -- the fused exact-score kernel (engine.samplers.mixture_kernel) against the torch path ------

needs_numba = pytest.mark.skipif(not mixture_kernel.available, reason="numba not installed")


@needs_numba
def test_fused_exp_matches_exp_on_the_softmax_range():
    import numpy as np
    xs = np.linspace(-40, 0, 4001).astype(np.float32)
    approx = np.array([mixture_kernel._exp_neg(v) for v in xs], dtype=np.float64)
    assert np.max(np.abs(approx / np.exp(xs.astype(np.float64)) - 1)) < 3e-6


@needs_numba
@pytest.mark.parametrize("config", [
    MixConfig(particles=300, seed=3, record_every=20, record_particles=40),
    MixConfig(sampler="langevin", particles=700, steps=300, seed=2),
    MixConfig(means=((0.0, 0.0), (4.0, 4.0), (-3.0, 5.0)), weights=(0.3, 0.5, 0.2),
              stds=(1.0, 0.5, 2.0), particles=1000, steps=30, denoise=True, record_every=15),
])
def test_fused_chain_is_the_langevin_loop_with_the_kernel_noise(config):
    """Same maths: langevin_dynamics on the exact score, fed the kernel's own draws
    (kernel_noise: normals at the key from the chain's generator), gives the fused particles to
    float32 rounding; the frames and their steps/levels and the NFE are those of that loop and of
    the torch path."""
    runs = {}
    for fused in (True, False):
        rec = recorder_for(config)
        out, = mixture_langevin_chains(config.mixture, [initial_particles(config)],
                                       [schedule_for(config)], [noise_generator(config)], [rec],
                                       fused=fused)
        runs[fused] = rec.langevin_result(out)
    rec = recorder_for(config)
    ref = rec.langevin_result(langevin_dynamics(config.mixture.score, initial_particles(config),
                                                schedule_for(config), callback=rec,
                                                noise=kernel_noise(noise_generator(config))))
    a, b = runs[True], runs[False]
    torch.testing.assert_close(a.x, ref.x, atol=2e-4, rtol=1e-4)
    assert a.nfe == b.nfe == ref.nfe and a.frame_steps == b.frame_steps == ref.frame_steps
    assert a.frame_levels == b.frame_levels == ref.frame_levels
    if b.frames is not None:
        torch.testing.assert_close(a.frames, ref.frames, atol=2e-4, rtol=1e-4)
    assert not torch.allclose(a.x, b.x, atol=1e-2)   # the torch path draws other numbers


@needs_numba
def test_kernel_noise_is_philox2x32_and_standard_normal():
    """Random123's known answers for Philox2x32-10; the Box–Muller draws have the moments and the
    distribution function of N(0, 1), uncorrelated coordinates, particles and steps; |z| ≤ 5.8."""
    import numpy as np
    from scipy import stats

    kat = {(0, 0, 0): (0xFF1DAE59, 0x6CD10DF2),
           (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF): (0x2C3F628B, 0xAB4FD7AD),
           (0x243F6A88, 0x85A308D3, 0x13198A2E): (0xDD7CE038, 0xF62A4C12)}
    for (c0, c1, key), want in kat.items():
        assert tuple(int(v) for v in mixture_kernel._philox(np.uint64(c0), np.uint64(c1), np.uint64(key))) == want
    z = mixture_kernel.normals(12345, 7, 100, 4000).astype(np.float64)      # (T, N, 2)
    flat = z.ravel()
    assert abs(flat.mean()) < 5 * (1 / np.sqrt(flat.size))
    assert abs(flat.var() - 1) < 5 * np.sqrt(2 / flat.size)
    assert abs(stats.skew(flat)) < 0.02 and abs(stats.kurtosis(flat)) < 0.04
    assert stats.kstest(flat[:200_000], "norm").pvalue > 1e-3
    assert np.abs(flat).max() <= 5.8
    for a, b in ((z[..., 0], z[..., 1]), (z[:-1], z[1:]), (z[:, :-1], z[:, 1:])):
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.01
    np.testing.assert_array_equal(mixture_kernel.normals(12345, 57, 50, 4000), z[50:])   # counters
    assert not np.array_equal(mixture_kernel.normals(12346, 7, 1, 4000), z[:1])


@needs_numba
def test_kernel_log_is_accurate_on_the_uniforms():
    import numpy as np

    u = ((np.arange(0, 2**24, 97) + 0.5) / 2**24).astype(np.float32)
    got = np.array([mixture_kernel._log(np.float32(v)) for v in u[::50]], dtype=np.float64)
    np.testing.assert_allclose(got, np.log(u[::50].astype(np.float64)), rtol=3e-7, atol=1e-7)


@needs_numba
def test_a_score_function_sees_the_noise_the_fused_exact_chain_sees():
    """run_mix with a score function (the learned path) draws the fused kernel's noise, so the
    exact score passed as a function gives the fused particles (learned vs exact: same noise)."""
    config = MixConfig(particles=400, steps=30, levels=4, seed=2)
    exact = run_mix(config).sample.x
    as_function = run_mix(config, score_fn=config.mixture.score).sample.x
    torch.testing.assert_close(as_function, exact, atol=2e-4, rtol=1e-4)


@needs_numba
def test_fused_chain_same_seed_same_particles_whatever_is_recorded():
    """The counter-based noise does not depend on where the run stops to record frames."""
    base = MixConfig(particles=500, steps=40, levels=3, seed=9)
    plain = run_mix(base).sample.x
    recorded = run_mix(MixConfig(**{**base.__dict__, "record_every": 7, "record_particles": 30})).sample.x
    assert torch.equal(plain, recorded) and torch.equal(plain, run_mix(base).sample.x)
    assert not torch.equal(plain, run_mix(MixConfig(**{**base.__dict__, "seed": 10})).sample.x)


@needs_numba
def test_fused_chain_reaches_the_stationary_law_of_a_gaussian():
    """x' = x + (α/2)s + √α z for N(μ, diag(v)) has the stationary law N(μ, v/(1 − α/(4v)))."""
    mean, var, alpha = torch.tensor([1.0, -2.0]), torch.tensor([2.0, 0.5]), 0.05
    gauss = GaussianMixture.create([mean.tolist()], [1.0], [var.sqrt().tolist()])
    out, = mixture_langevin_chains(gauss, [torch.zeros(20000, 2)], [plain_schedule(alpha, 600)],
                                   [torch.Generator().manual_seed(0)], fused=True)
    stationary = (var / (1 - alpha / (4 * var))).double()
    torch.testing.assert_close(out.x.double().mean(0), mean.double(), atol=0.04, rtol=0)
    torch.testing.assert_close(torch.diagonal(torch.cov(out.x.double().T)), stationary, rtol=0.04, atol=0)


@needs_numba
def test_fused_chain_recovers_mixture_weights_and_stops_divergence():
    res = run_mix(MixConfig(sampler="annealed", weights=(0.3, 0.7), particles=5000, seed=4))
    assert res.weight_error < 0.03
    with pytest.raises(SamplerDiverged, match="smaller step size") as info:
        mixture_langevin_chains(seeds_mixture(), [torch.zeros(100, 2)], [plain_schedule(30.0, 100)],
                                [torch.Generator().manual_seed(0)], fused=True)
    assert info.value.step % 10 == 0 and info.value.step <= 20  # checked where the torch path checks
