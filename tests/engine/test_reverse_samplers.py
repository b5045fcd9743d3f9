"""Reverse-SDE, predictor–corrector and probability-flow ODE sampling with the exact marginal score
of the seeds' mixture recover its 0.8/0.2 weights; NFE counts; divergence; inpainting."""

import pytest
import torch

from engine.samplers.langevin import SamplerDiverged
from engine.sde.sdes import exact_score_fn, make_sde
from engine.lab.sde_mixing import SDEMixConfig, run_sde_mix
from engine.samplers.reverse import SDESamplerConfig, pc_inpaint, sample
from engine.targets import seeds_mixture


@pytest.mark.parametrize("sampler,sde,steps", [
    ("sde", "ve", 300), ("pc", "ve", 200), ("ode", "ve", 0),
    ("sde", "vp", 300), ("pc", "subvp", 200), ("ode", "vp", 0),
])
def test_sde_samplers_recover_the_seeds_weights(sampler, sde, steps):
    cfg = SDEMixConfig(sampler=sampler, sde=sde, particles=2000, steps=steps or 500, seed=3)
    out = run_sde_mix(cfg).summary()
    assert out["target_weights"] == pytest.approx([0.8, 0.2])
    assert out["mode_weights"][0] == pytest.approx(0.8, abs=0.03), out
    expected_nfe = {"sde": steps, "pc": 2 * steps}.get(sampler)
    if expected_nfe is not None:
        assert out["nfe"] == expected_nfe
    else:
        assert 20 < out["nfe"] < 1000  # adaptive RK45: a few hundred at rtol = atol = 1e-5


def test_ode_sampling_is_deterministic_and_records_frames():
    sde = make_sde("vp")
    mix = seeds_mixture()
    x0 = sde.prior_sampling((200, 2), generator=torch.Generator().manual_seed(0))
    cfg = SDESamplerConfig(sampler="ode", steps=100, record_every=10)
    a = sample(exact_score_fn(mix, sde), x0, sde, cfg, torch.Generator().manual_seed(1))
    b = sample(exact_score_fn(mix, sde), x0, sde, cfg, torch.Generator().manual_seed(2))
    assert torch.equal(a.x, b.x)  # no noise: the rng does not matter
    assert a.frames.shape == (11, 200, 2) and a.frame_times[0] == 1.0
    assert torch.allclose(a.frames[0], x0) and torch.allclose(a.frames[-1], a.x)


def test_nan_score_raises_one_sentence_with_a_hint():
    sde = make_sde("ve", 0.01, 50)
    x0 = sde.prior_sampling((10, 2), generator=torch.Generator().manual_seed(0))
    bad = lambda x, t: torch.full_like(x, float("nan"))  # noqa: E731
    for name in ("sde", "pc", "ode"):
        with pytest.raises(SamplerDiverged) as err:
            sample(bad, x0, sde, SDESamplerConfig(sampler=name, steps=20))
        msg = str(err.value)
        assert "diverged" in msg or "failed" in msg
        assert "try" in msg and msg.count(".") <= 3 and "\n" not in msg


def test_pc_inpainting_samples_the_conditional():
    """Known x1 = 5 in the seeds' mixture: p(x2 | x1 = 5) is (almost exactly) N(5, 1)."""
    sde = make_sde("ve", 0.01, 50)
    mix = seeds_mixture()
    n = 1000
    known = torch.tensor([[5.0, 0.0]]).repeat(n, 1)
    mask = torch.tensor([[1.0, 0.0]]).repeat(n, 1)
    res = pc_inpaint(exact_score_fn(mix, sde), known, mask, sde,
                     SDESamplerConfig(sampler="pc", steps=200, snr=0.16),
                     torch.Generator().manual_seed(0))
    assert torch.all(res.x[:, 0] == 5.0)
    assert float(res.x[:, 1].mean()) == pytest.approx(5.0, abs=0.1)
    assert float(res.x[:, 1].std()) == pytest.approx(1.0, abs=0.08)
    assert res.nfe == 400


def test_pc_with_fewer_steps_than_beta_max_does_not_break():
    """VP's corrector α = 1 − β(t)/N is negative for N < β_max at large t; it is clamped at 0."""
    sde = make_sde("vp")
    assert sde.corrector_alpha(1.0, 10) == 0.0
    assert sde.corrector_alpha(0.0, 1000) == pytest.approx(1 - 0.1 / 1000)
    out = run_sde_mix(SDEMixConfig(sampler="pc", sde="vp", steps=10, particles=200)).summary()
    assert out["nfe"] == 20 and sum(out["mode_weights"]) == pytest.approx(1.0)


def test_one_pc_step_is_the_paper_form_corrector_then_the_reverse_euler_mean():
    """N = 1: the Langevin corrector x + (a/2)s + √a z with a = 2ε, ε = 2α(r‖z‖/‖s‖)² (α = 1 for
    VE), then the last predictor step returns the reverse-SDE mean x + g² s Δt (f = 0 for VE)."""
    from engine.samplers.reverse import predictor_corrector

    sde = make_sde("ve", 0.1, 10.0)
    score = lambda x, t: -x / (1 + sde.std(t) ** 2)  # noqa: E731 — N(0, I) data, exact
    x0 = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    out = predictor_corrector(score, x0, sde, SDESamplerConfig(steps=1, snr=0.2),
                              torch.Generator().manual_seed(1))
    z = torch.randn(5, 2, generator=torch.Generator().manual_seed(1))
    s = score(x0, 1.0)
    a = 2 * (2 * 1.0 * (0.2 * z.norm(dim=1).mean() / s.norm(dim=1).mean()) ** 2)
    x = x0 + a / 2 * s + a.sqrt() * z
    expect = x + sde.diffusion(1.0) ** 2 * score(x, 1.0) * (1 - sde.eps)
    assert torch.allclose(out.x, expect, rtol=1e-5, atol=1e-5) and out.nfe == 2


def test_langevin_step_is_the_paper_form():
    from engine.samplers.langevin import langevin_step

    x, s, z = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 4.0]), torch.tensor([1.0, -1.0])
    assert torch.allclose(langevin_step(x, s, 0.04, z), x + 0.02 * s + 0.2 * z)
    assert torch.allclose(langevin_step(x, s, torch.tensor(0.04), z), x + 0.02 * s + 0.2 * z)


def test_repaint_path_visits_every_segment_resample_times():
    from engine.samplers.reverse import repaint_path

    assert repaint_path(7) == list(range(8))
    path = repaint_path(10, jump=5, resample=3)
    assert path[0] == 0 and path[-1] == 10
    downs = sum(1 for a, b in zip(path, path[1:]) if b == a + 1)
    ups = [(a, b) for a, b in zip(path, path[1:]) if b < a]
    assert downs == 5 * 3 + 5 and ups == [(5, 0), (5, 0)]        # the last segment only once


def test_the_transition_kernel_composes_with_the_marginals():
    """x(t) ~ marginal, then x(t') | x(t) ~ transition: the result has the marginal at t'."""
    from engine.sde.sdes import VESDE, VPSDE

    g = torch.Generator().manual_seed(0)
    x0 = torch.full((200_000, 1), 0.7, dtype=torch.float64)
    for sde in (VESDE(0.01, 10.0), VPSDE()):
        xt = sde.forward_sample(x0, 0.3, generator=g)
        xs = sde.transition(xt, 0.3, 0.8, generator=g)
        mean, std = sde.marginal_prob(x0[:1], 0.8)
        assert float(xs.mean()) == pytest.approx(float(mean), abs=0.02 * float(std) + 1e-3)
        assert float(xs.std()) == pytest.approx(float(std), rel=0.01)


def test_repaint_inpainting_samples_the_exact_conditional_of_a_gaussian():
    """Data N(0, Σ) in 2D with unit variances and correlation ρ; the first coordinate known = a.
    With the exact VE score, inpainting with RePaint's resampling draws x₂ | x₁ = a ~ N(ρa, 1 − ρ²)."""
    from engine.samplers.reverse import SDESamplerConfig, pc_inpaint
    from engine.sde.sdes import VESDE

    rho, a = 0.9, 1.5
    cov = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=torch.float64)
    sde = VESDE(0.01, 10.0)

    def score(x, t):
        var = cov + float(sde.std(torch.tensor(t))) ** 2 * torch.eye(2, dtype=torch.float64)
        return -x @ torch.linalg.inv(var)

    n = 4000
    known = torch.zeros(n, 2, dtype=torch.float64)
    known[:, 0] = a
    mask = torch.zeros(n, 2, dtype=torch.float64)
    mask[:, 0] = 1
    out = pc_inpaint(score, known, mask, sde, SDESamplerConfig(sampler="pc", steps=100, snr=0.16),
                     torch.Generator().manual_seed(1), jump=5, resample=10).x
    assert torch.all(out[:, 0] == a)
    assert float(out[:, 1].mean()) == pytest.approx(rho * a, abs=0.04)
    assert float(out[:, 1].var()) == pytest.approx(1 - rho**2, rel=0.15)
