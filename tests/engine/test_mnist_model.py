"""The MNIST score model: the σ schedule from data vs the NCSNv2 formulas, one training step lowers
the loss, sampling shapes and determinism, checkpoint round trip, EMA warm-up."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from engine.store.checkpoints import load_model, save_model
from engine.models.ema import Ema
from engine.models.unet import build_ncsn_unet
from engine.sde.sdes import TutorialVESDE
from engine.mnist.sampling import SampleConfig, build_schedule, sample_images
from engine.models.registry import build_model
from engine.render.images import grid_array
from engine.losses import ncsn_loss
from engine.training.images import ImageTrainConfig, compute_schedule

TINY = {"kind": "ncsn_unet", "channels": [8, 16, 16, 32], "embed_dim": 16}


def _images(n=40, seed=0):
    """Real MNIST digits when available (a few), else the test skips."""
    from engine.mnist.data import MnistUnavailable, load_mnist, to_float
    try:
        data = load_mnist()
    except MnistUnavailable as err:
        pytest.skip(str(err))
    idx = np.random.default_rng(seed).choice(len(data.train_images), n, replace=False)
    return to_float(data.train_images[idx])


def test_schedule_follows_the_ncsnv2_rules():
    x = _images(60)
    cfg = ImageTrainConfig(sigma_min=0.01, steps_per_level=5)
    s = compute_schedule(x, cfg)
    flat = x.reshape(len(x), -1).astype(np.float64)
    brute = max(np.linalg.norm(a - b) for a in flat for b in flat)
    assert s["sigma_max"] == pytest.approx(brute, rel=1e-9)          # technique 1
    D, g = 784, s["gamma"]
    a = math.sqrt(2 * D) * (g - 1)
    assert norm.cdf(a + 3 * g) - norm.cdf(a - 3 * g) == pytest.approx(0.5, abs=1e-8)  # technique 2
    sig = np.array(s["sigmas"])
    assert sig[0] == pytest.approx(s["sigma_max"]) and sig[-1] == pytest.approx(0.01)
    assert np.allclose(sig[:-1] / sig[1:], sig[0] / sig[1])            # geometric
    assert sig[0] / sig[1] <= g + 1e-9  # L = ⌈log(σ_1/σ_L)/log γ⌉ + 1 levels: ratio at most γ
    # technique 4: ε (code form) makes the variance objective closest to 1
    def objective(eps, T=5, s2=0.01**2, gam=g):
        r = 1 - eps / s2
        c = 2 * eps / (s2 - s2 * r**2)
        return r ** (2 * T) * (gam**2 - c) + c
    e = s["step_size_code"]
    assert abs(objective(e) - 1) <= abs(objective(e * 1.05) - 1)
    assert abs(objective(e) - 1) <= abs(objective(e / 1.05) - 1)
    assert s["step_size"] == pytest.approx(2 * e)  # paper form α = 2ε_code


def test_schedule_overrides():
    x = _images(20)
    s = compute_schedule(x, ImageTrainConfig(sigma_max=5.0, levels=11, sigma_min=0.05))
    assert s["sigmas"][0] == 5.0 and len(s["sigmas"]) == 11
    assert s["gamma"] == pytest.approx((5.0 / 0.05) ** 0.1)
    b = compute_schedule(x, ImageTrainConfig(objective="dsm", dsm_sigma=0.2))
    assert b["sigmas"] == [0.2] and b["budget_levels"] > 50


def test_one_training_step_lowers_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    x = torch.from_numpy(_images(32))
    model = build_model(TINY)
    sigmas = torch.tensor([5.0, 1.0, 0.2, 0.05])
    g = torch.Generator().manual_seed(0)
    lvl = torch.randint(4, (32,), generator=g)
    z = torch.randn(x.shape, generator=g)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = ncsn_loss(model, x, sigmas, levels=lvl, z=z)
    opt.zero_grad()
    before.backward()
    opt.step()
    after = ncsn_loss(model, x, sigmas, levels=lvl, z=z)
    assert float(after.detach()) < float(before.detach())


def test_output_is_divided_by_sigma_when_unembedded():
    model = build_ncsn_unet(channels=(8, 16, 16, 32), embed_dim=16, sigma_embed=False).eval()
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        a, b = model(x, 0.5), model(x, 2.0)
    assert torch.allclose(a, 4.0 * b, rtol=1e-5, atol=1e-6)  # s(x, σ) = f(x)/σ


def test_ve_std_closed_form():
    t = torch.tensor([0.0, 0.5, 1.0])
    expect = torch.sqrt((25.0 ** (2 * t) - 1) / (2 * math.log(25.0)))
    assert torch.allclose(TutorialVESDE(25.0).std(t), expect)
    tut = build_model({"kind": "tutorial_unet"})
    assert tut(torch.rand(3, 1, 28, 28), torch.tensor([0.1, 0.5, 1.0])).shape == (3, 1, 28, 28)


def test_ema_warmup_and_average():
    lin = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(0.0)
    ema = Ema(lin, decay=0.999)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    ema.update(lin)                       # d = min(0.999, 1/10) = 0.1
    assert float(ema.model.weight) == pytest.approx(0.9)
    ema.update(lin)                       # d = 2/11
    assert float(ema.model.weight) == pytest.approx(0.9 * (2 / 11) + (1 - 2 / 11))


def _meta(levels=6, T=2):
    sig = list(np.geomspace(3.0, 0.05, levels))
    return {"model": TINY, "objective": "ncsn",
            "schedule": {"sigmas": sig, "gamma": sig[0] / sig[1], "steps_per_level": T,
                         "step_size": 2e-4, "sigma_min": sig[-1], "budget_levels": levels}}


def test_sampling_shapes_and_determinism():
    torch.manual_seed(0)
    model = build_model(TINY)
    meta = _meta()
    cfg = SampleConfig(n=3, seed=5, frames=4)
    a = sample_images(model, meta, cfg)
    b = sample_images(model, meta, cfg)
    c = sample_images(model, meta, SampleConfig(n=3, seed=6, frames=4))
    assert a.images.shape == (3, 28, 28) and a.images.dtype == np.float32
    assert a.images.min() >= 0 and a.images.max() <= 1
    assert np.array_equal(a.images, b.images) and not np.array_equal(a.images, c.images)
    assert a.frames.shape[1:] == (3, 28, 28) and len(a.frame_levels) == a.frames.shape[0] <= 4
    assert a.nfe == 6 * 2 + 1  # L·T Langevin steps + the final denoising step
    plain, info = build_schedule(meta, SampleConfig(mode="plain"))
    assert plain.sigmas == (meta["schedule"]["sigmas"][-1],) and plain.steps_per_level == 12
    assert info["total_steps"] == 12  # the same budget as annealing


def test_annealed_step_sizes_follow_alpha_rule():
    meta = _meta(levels=5, T=3)
    sched, info = build_schedule(meta, SampleConfig(step_size=1e-4))
    sig = np.array(sched.sigmas)
    assert np.allclose(sched.step_sizes, 1e-4 * sig**2 / sig[-1] ** 2)
    with pytest.raises(ValueError, match="single-σ"):
        build_schedule({**meta, "objective": "dsm"}, SampleConfig(mode="annealed"))


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(1)
    model = build_model(TINY).eval()
    save_model(tmp_path / "m", model, _meta())
    loaded, meta = load_model(tmp_path / "m")
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(x, 0.3), loaded(x, 0.3))
    assert meta["schedule"]["steps_per_level"] == 2


def test_grid_layout():
    imgs = np.zeros((5, 28, 28), np.float32)
    imgs[4] = 1.0
    g = grid_array(imgs, nrow=3, pad=2)
    assert g.shape == (2 * 30 + 2, 3 * 30 + 2)
    assert (g[32:60, 32:60] == 255).all() and (g[2:30, 2:30] == 0).all()


def test_tutorial_pc_sampler_recovers_a_gaussian_with_its_exact_score():
    """With the exact VE-perturbed score of N(0.5, 0.15²) per pixel the PC sampler returns that law."""
    from engine.bench.mnist import pc_sample

    m, s = 0.5, 0.15

    def exact(x, t):
        var = s**2 + TutorialVESDE(25.0).std(t) ** 2      # t: the sampler's float time
        return -(x - m) / var

    images, _ = pc_sample(exact, 16, steps=500, snr=0.16, seed=0)
    # pc_sample clips to [0, 1]; 0.5 ± 0.15 stays inside (3.3σ)
    assert images.mean() == pytest.approx(m, abs=0.02)
    assert images.std() == pytest.approx(s, rel=0.1)
