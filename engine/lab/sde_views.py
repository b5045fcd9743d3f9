"""What the SDE page shows, as NumPy arrays (engine.lab.sde_mixing does the maths in torch).

The forward SDE: particles from exact data samples at a few times over the closed-form marginal
log p_t, each panel zoomed out with the noise, and the marginal of the diagonal projection
u = (x₁ + x₂)/√2 over (t, u). The reverse samplers' runs and the window their paths are drawn in.
A learned time-conditional 2D score's ODE log-density next to the exact one. MNIST: a test digit
and its mask (the page inpaints it, and measures bits/dim, as background jobs: `python -m engine
sde-mnist inpaint --index I --run-dir DIR`, `sde-mnist bpd --run-dir DIR`), and the classifier's
reading of each completion.
Errors come back as {"error": one sentence}.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from engine.lab.sde_mixing import (SDEMixConfig, forward_paths, likelihood_maps, marginal_grid,
                                   projected_log_density, run_sde_mix)
from engine.models.score import load_score
from engine.samplers.langevin import SamplerDiverged
from engine.sde.sdes import SDEError
from engine.targets import GaussianMixture, TargetError

SNAPSHOT_TIMES = (0.0, 0.1, 0.3, 0.6, 1.0)
DIAGONAL = np.array([1.0, 1.0]) / np.sqrt(2)     # u = x · (1, 1)/√2
PROJECTED_PATHS = 30
ERRORS = (SamplerDiverged, SDEError, TargetError, ValueError)


def mode_extent(cfg: SDEMixConfig) -> float:
    """a for modes at (±a, ±a): the largest coordinate of a mean."""
    return max(abs(v) for m in cfg.means for v in m)


def forward_view(cfg: SDEMixConfig, particles: int = 400) -> dict:
    """Forward paths (Euler–Maruyama, 200 steps, ~50 frames) from exact data samples: times,
    frames (F, M, 2), u (F, 30): the first 30 paths projected on the diagonal, and panels: at each
    of SNAPSHOT_TIMES the closed-form log p_t on a 60×60 grid wide enough for the noise, with the
    particles there ({"title", "xs", "ys", "logp", "points", "range"})."""
    try:
        sde, mix = cfg.make_sde(), cfg.mixture
    except ERRORS as err:
        return {"error": str(err)}
    times, frames = forward_paths(mix, sde, particles, steps=200, record=50, seed=cfg.seed)
    times, frames = times.numpy(), frames.numpy()
    a = mode_extent(cfg)
    panels = []
    for t in SNAPSHOT_TIMES:
        k = int(np.argmin(np.abs(times - t)))
        lim = max(a + 4.0, float(sde.mean_coef(t)) * (a + 3) + 3 * float(sde.std(t)))
        g, logp = marginal_grid(mix, sde, float(times[k]), -lim, lim, n=60)
        panels.append(dict(title=f"t = {times[k]:.2f}", xs=g.numpy(), ys=g.numpy(), logp=logp.numpy(),
                           points=frames[k], range=(-lim, lim)))
    return {"times": times, "frames": frames, "u": frames[:, :PROJECTED_PATHS] @ DIAGONAL,
            "prior_std": sde.prior_std, "panels": panels}


def projected_view(cfg: SDEMixConfig) -> dict:
    """log-density of u = (x₁ + x₂)/√2 under p_t (closed form) on 101 times × 161 values of u,
    zoomed on the data (u within ±(1.5a + 6)): {"ts", "us", "logp" (T, U)}."""
    u_max = mode_extent(cfg) * 1.5 + 6
    ts, us = np.linspace(0.0, 1.0, 101), np.linspace(-u_max, u_max, 161)
    return {"ts": ts, "us": us,
            "logp": projected_log_density(cfg.mixture, cfg.make_sde(), ts, us).numpy()}


def reverse_view(cfg: SDEMixConfig) -> dict:
    """One reverse run with the exact score: x, frames (F, M, 2), times (F,), u (F, M) (the paths
    on the diagonal) and the summary (mode_weights, weight_error, sliced_wasserstein, nfe, …)."""
    try:
        r = run_sde_mix(cfg)
    except ERRORS as err:
        return {"error": str(err)}
    frames = r.sample.frames.numpy()
    return {"x": r.sample.x.numpy(), "frames": frames, "times": np.array(r.sample.frame_times),
            "u": frames @ DIAGONAL, "summary": r.summary()}


def reverse_window(cfg: SDEMixConfig) -> dict:
    """The square the reverse paths are drawn in: lim = a + 4, log p at t = ε on an 80×80 grid
    (floored 30 nats below its peak), and t_cut: the largest t whose noise std fits a third of
    the window (before that a VE path starts ±3σ_max away)."""
    sde, lim = cfg.make_sde(), mode_extent(cfg) + 4.0
    g, logp = marginal_grid(cfg.mixture, sde, sde.eps, -lim, lim, 80)
    logp = logp.numpy()
    t_cut = max([t for t in np.linspace(0, 1, 101) if float(sde.std(float(t))) <= lim / 3] or [0.0])
    return {"g": g.numpy(), "logp": np.maximum(logp, logp.max() - 30), "lim": lim, "t_cut": float(t_cut)}


def paths_until(run: dict, t_cut: float) -> np.ndarray:
    """The frames of a reverse run at t ≤ t_cut (at least the last two)."""
    keep = run["times"] <= t_cut + 1e-9
    return run["frames"][keep] if keep.sum() >= 2 else run["frames"][-2:]


def likelihood_view(path: str, n: int, progress=None) -> dict:
    """The probability-flow ODE log-density of a learned time-conditional 2D score on an n×n grid
    around its training mixture, next to the exact log p: grid, ode, exact, nfe, seconds, and
    near_error: mean |ODE − exact| where p is within 6 nats of its peak. (The SDEs page runs it
    as a job: `python -m engine nll --checkpoint PATH --grid N --run-dir DIR`.)"""
    model = load_score(path, reading="time")
    mix = GaussianMixture.from_dict(model.meta["data"]["mixture"])
    lim = max(abs(v) for m in mix.means for v in m) + 4.0
    out = likelihood_maps(model.score_fn, model.sde, mix, -lim, lim, n=n, progress=progress)
    out = {k: (v.numpy() if torch.is_tensor(v) else v) for k, v in out.items()}
    inside = out["exact"] > out["exact"].max() - 6
    out["near_error"] = float(np.abs(out["ode"] - out["exact"])[inside].mean())
    return out


# -- MNIST ------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _test_set():
    from engine.mnist.data import load_mnist
    d = load_mnist()
    return d.test_images, d.test_labels


@functools.lru_cache(maxsize=1)
def _classifier():
    from engine.mnist.quality import load_classifier
    return load_classifier()[0]


def masked_digit(index: int, mask_kind: str, seed: int) -> dict:
    """Test digit `index` in [0, 1], its label, the mask (1 = known) and the masked digit with the
    hidden pixels grey: {"original", "label", "mask", "masked"}."""
    from engine.mnist.sde_tasks import make_mask

    images, labels = _test_set()
    original = images[int(index)].astype(np.float32) / 255.0
    mask = make_mask(mask_kind, seed)
    return {"original": original, "label": int(labels[int(index)]), "mask": mask,
            "masked": original * mask + 0.5 * (1 - mask)}


def classify(images) -> list[int]:
    """The project's classifier's label for each image (N, 28, 28) in [0, 1]."""
    from engine.models.classifier import predict

    probs, _ = predict(_classifier(), images)
    return [int(p.argmax()) for p in probs]
