"""engine.lab's page computations (grids, comparison, learned2d, sde_views) against closed forms:
what the pages draw is the maths, and the arrays have the shapes the figures expect."""

from __future__ import annotations

import numpy as np
import pytest

from engine.lab import comparison, grids, sde_views
from engine.lab.mixing import MixConfig, run_mix
from engine.lab.sde_mixing import SDEMixConfig


def test_score_field_is_the_mixture_score_and_blind_to_the_weight_far_from_the_minor_mode():
    d = grids.score_field(0.8, 0.5, 5.0, 0.0, heat_n=41, arrow_n=5)
    # Peak of log p: at the major mode, log(w / 2π) (unit variances, the minor mode far away).
    assert d["logp"].max() == pytest.approx(np.log(0.8 / (2 * np.pi)), abs=1e-6)
    assert d["logp"].min() == pytest.approx(d["logp"].max() - 25.0)          # floored 25 nats down
    # Near (5, 5) one component dominates: s(x) = −(x − μ), whatever the weights.
    i = int(np.argmin(np.linalg.norm(d["arrows_at"] - [4.4, 4.4], axis=1)))
    np.testing.assert_allclose(d["arrows"][i], 5.0 - d["arrows_at"][i], atol=1e-6)
    assert np.abs(d["arrows_diff"][i]).max() < 1e-6
    assert 0 < d["changed"] < 0.15


def test_probe_curves_midway_follow_the_responsibilities():
    # At x = 0 both components are equally far: s = (2w − 1)(a, a)/(1 + σ²), so along (1,1)/√2
    # the score is √2·a(2w − 1)/(1 + σ²); near either mode it does not depend on w.
    for sigma in (0.0, 2.0):
        p = grids.probe_curves(5.0, sigma)
        want = np.sqrt(2) * 5.0 * (2 * p["ws"] - 1) / (1 + sigma**2)
        np.testing.assert_allclose(p["curves"]["midway (0, 0)"], want, rtol=1e-9, atol=1e-9)
    p = grids.probe_curves(5.0, 0.0)
    assert list(p["curves"]) == ["near the major mode (4, 4)", "midway (0, 0)",
                                 "near the minor mode (−4, −4)"]
    assert np.ptp(p["curves"]["near the major mode (4, 4)"]) < 1e-9


def test_density_grid_and_a_perfect_learned_score_have_zero_error():
    g = grids.density_grid(((2.0, 2.0), (-2.0, -2.0)), (0.5, 0.5), -6, 6, n=25, floor=10)
    assert g["logp"].shape == (25, 25) and g["g"][0] == -6 and g["g"][-1] == 6
    mix = grids.two_modes(0.7, 3.0)
    cmp = grids.field_comparison(mix.score, 0.5, -6, 6, exact_fn=mix.score,
                                 log_density_fn=mix.log_prob, n_heat=20, n_arrows=5)
    assert cmp["err"].shape == (20, 20) and cmp["arrows"].shape == (25, 2)
    assert np.abs(cmp["err"]).max() == 0.0
    np.testing.assert_array_equal(cmp["learned"], cmp["exact"])


def test_the_seeds_pair_shares_budget_and_frames_label_the_noise_levels():
    assert comparison.frame_every(100, 10, 40) == 25          # 4 frames a level, each level's end
    assert comparison.frame_every(30, 4, 40) == 3             # 10 a level: the divisor 3 of T = 30
    pair = comparison.plain_and_annealed(MixConfig(steps=20, levels=5, particles=50, denoise=True,
                                                   record_every=10, record_particles=5))
    plain, ann = pair[comparison.PLAIN], pair[comparison.ANNEALED]
    assert plain.sampler == "langevin" and plain.steps == 100 and not plain.denoise
    assert ann.sampler == "annealed" and ann.steps == 20 and ann.denoise
    out = comparison.sample_exact(tuple(pair.values()))
    sigmas = np.geomspace(20.0, 1.0, 5)
    ann_out = out[1]
    np.testing.assert_allclose(ann_out["frame_sigmas"][1:],
                               [sigmas[(s - 1) // 20] for s in ann_out["frame_steps"][1:]])
    assert out[0]["nfe"] == 100 and ann_out["nfe"] == 101     # + the denoising step
    # Same particles as run_mix (what `python -m engine mix` prints).
    np.testing.assert_array_equal(ann_out["x"], run_mix(ann).sample.x.numpy())
    bad = comparison.sample_exact((MixConfig(sigma_max=0.5),))
    assert "σ_max" in bad[0]["error"]


def test_sde_views_window_and_paths():
    cfg = SDEMixConfig(particles=50, steps=20, record_every=2, record_particles=4, sampler="sde")
    window = sde_views.reverse_window(cfg)
    sde = cfg.make_sde()
    assert window["lim"] == 9.0
    assert float(sde.std(window["t_cut"])) <= window["lim"] / 3 < float(sde.std(window["t_cut"] + 0.01))
    run = sde_views.reverse_view(cfg)
    paths = sde_views.paths_until(run, window["t_cut"])
    assert len(paths) >= 2 and paths.shape[1:] == (4, 2)
    np.testing.assert_allclose(run["u"], run["frames"] @ (np.ones(2) / np.sqrt(2)))
    assert run["summary"]["nfe"] == 20
    fv = sde_views.forward_view(cfg, particles=30)
    assert [p["title"] for p in fv["panels"]] == ["t = 0.00", "t = 0.10", "t = 0.30", "t = 0.60",
                                                  "t = 1.00"]
    assert fv["u"].shape == (len(fv["times"]), 30)
    assert "error" in sde_views.forward_view(SDEMixConfig(sde="vp", beta_min=2.0, beta_max=1.0))


def test_masked_digit_greys_the_hidden_half():
    pytest.importorskip("engine.mnist.data")
    try:
        d = sde_views.masked_digit(0, "bottom", 0)
    except Exception as err:  # noqa: BLE001 — no MNIST on this machine
        pytest.skip(f"MNIST unavailable: {err}")
    assert np.all(d["masked"][14:] == 0.5) and np.array_equal(d["masked"][:14], d["original"][:14])
    assert 0 <= d["label"] <= 9 and d["original"].dtype == np.float32


def test_learned_field_of_a_run_has_the_error_map(tmp_path):
    from engine.lab.learned2d import comparison_rows, learned_field, sigma_rule
    from engine.device import one_thread
    from engine.training.toy2d import Train2DConfig, train

    with one_thread():  # one torch thread: a tiny MLP on a shared machine
        train(Train2DConfig(objective="dsm", steps=30, eval_every=0), tmp_path / "run")
    cmp = learned_field(str(tmp_path / "run" / "model"), 1.0)
    assert {"learned", "exact", "err", "logp"} <= set(cmp) and cmp["err"].shape == (70, 70)
    # σ₁ rule on the seeds' mixture: the largest distance between samples, a bit over 2·5√2.
    assert 14 < sigma_rule("mixture", ((5.0, 5.0), (-5.0, -5.0)), (0.8, 0.2)) < 25
    assert comparison_rows([]) == []
