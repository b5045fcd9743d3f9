"""Densities and score fields of 2D models on grids, as NumPy arrays for the figures.

The Scores page's field of the two-mode mixture and its change with the weight, the score along
the diagonal as the weight moves, the Langevin page's density contours, and a learned score next
to the exact one (the Train page). A log-density is floored `floor` nats below its maximum, so the
colour (or the contours) spend their range where the mass is.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.device import small_tensor_threads
from engine.targets import GaussianMixture


def two_modes(w: float, a: float) -> GaussianMixture:
    """w·N((a, a), I) + (1 − w)·N((−a, −a), I): the seeds' mixture at a = 5, w = 0.8."""
    return GaussianMixture.create([(a, a), (-a, -a)], [w, 1.0 - w], [1.0, 1.0])


def grid_points(lo: float, hi: float, n: int, dtype=torch.float64) -> tuple[np.ndarray, torch.Tensor]:
    """(g (n,), the n×n points (n², 2)) in row-major order: row i is y = g[i], column j x = g[j]."""
    g = np.linspace(lo, hi, n)
    xx, yy = np.meshgrid(g, g)
    return g, torch.tensor(np.stack([xx.ravel(), yy.ravel()], 1), dtype=dtype)


def floored(logp: np.ndarray, floor: float) -> np.ndarray:
    return np.maximum(logp, logp.max() - floor)


def score_field(w: float, w_other: float, a: float, sigma: float, *, lo: float = -10.0,
                hi: float = 10.0, heat_n: int = 101, arrow_n: int = 17, floor: float = 25.0) -> dict:
    """The score ∇log p_σ of `two_modes(w, a)` and how it changes when w becomes w′.

    Returns gx (heat grid), logp (log p_σ, floored), arrows_at, arrows (s_w there), arrows_diff
    (s_w − s_w′ there), diff (|s_w − s_w′| on the heat grid), changed (share of the grid where
    |s_w − s_w′| > 1 % of |s_w|) and means.
    """
    with small_tensor_threads(heat_n * heat_n * 2):  # tiny tensors: one torch thread is fastest
        gx, grid = grid_points(lo, hi, heat_n)
        _, arrows_at = grid_points(lo + 0.6, hi - 0.6, arrow_n)
        p, q = two_modes(w, a), two_modes(w_other, a)
        logp = p.log_prob(grid, sigma).numpy().reshape(heat_n, heat_n)
        s_p, s_q = p.score(grid, sigma).numpy(), q.score(grid, sigma).numpy()
        diff = np.linalg.norm(s_p - s_q, axis=1)
        rel = diff / np.maximum(np.linalg.norm(s_p, axis=1), 1e-12)
        arrows = p.score(arrows_at, sigma)
        return dict(gx=gx, logp=floored(logp, floor), arrows_at=arrows_at.numpy(),
                    arrows=arrows.numpy(), arrows_diff=(arrows - q.score(arrows_at, sigma)).numpy(),
                    diff=diff.reshape(heat_n, heat_n), changed=float((rel > 0.01).mean()),
                    means=np.array([(a, a), (-a, -a)]))


def probe_curves(a: float, sigma: float, n_weights: int = 99) -> dict:
    """The score along the diagonal, s_w(x)·(1, 1)/√2, at (a−1, a−1), (0, 0) and (1−a, 1−a), as
    the weight w runs over (0, 1): {"ws", "curves": {probe name: (n_weights,)}}."""
    ws = np.linspace(0.01, 0.99, n_weights)
    u = torch.tensor([1.0, 1.0], dtype=torch.float64) / np.sqrt(2.0)
    b = a - 1
    points = {f"near the major mode ({b:g}, {b:g})": (b, b), "midway (0, 0)": (0.0, 0.0),
              f"near the minor mode ({-b:g}, {-b:g})".replace("-", "−"): (-b, -b)}
    x = torch.tensor(list(points.values()), dtype=torch.float64)
    with small_tensor_threads(x.numel()):
        curves = np.array([(two_modes(wi, a).score(x, sigma) @ u).numpy() for wi in ws])  # (W, 3)
    return dict(ws=ws, curves={name: curves[:, i] for i, name in enumerate(points)})


def density_grid(means, weights, lo: float, hi: float, n: int = 90, floor: float = 30.0) -> dict:
    """log p of the mixture on an n×n grid over [lo, hi]²: {"g" (n,), "logp" (n, n), floored}."""
    g, pts = grid_points(lo, hi, n)
    with small_tensor_threads(pts.numel()):  # tiny tensors: one torch thread is fastest
        logp = GaussianMixture.create(means, weights).log_prob(pts).numpy().reshape(n, n)
    return dict(g=g, logp=floored(logp, floor))


def field_comparison(score_fn, sigma: float, lo: float, hi: float, exact_fn=None,
                     log_density_fn=None, n_heat: int = 70, n_arrows: int = 17) -> dict:
    """Learned (and exact, when known) score on a grid at noise level σ, as NumPy arrays.

    score_fn / exact_fn: (x: Tensor (N,2), σ) → Tensor (N,2). log_density_fn(x, σ) → (N,).
    Returns xs, ys (heat grid), arrows (points), learned/exact vectors at the arrows, err (the
    error ‖s_θ − ∇log p_σ‖ on the heat grid), exact_norm and logp (log p_σ there, floored 25 nats).
    """
    xs, heat = grid_points(lo, hi, n_heat, torch.float32)
    _, arrows = grid_points(lo, hi, n_arrows, torch.float32)
    out = {"xs": xs, "ys": xs, "arrows": arrows.numpy(), "sigma": float(sigma)}
    with torch.no_grad():
        out["learned"] = score_fn(arrows, sigma).numpy()
        if exact_fn is not None:
            out["exact"] = exact_fn(arrows, sigma).numpy()
            exact = exact_fn(heat, sigma)
            out["err"] = (score_fn(heat, sigma) - exact).norm(dim=-1).numpy().reshape(n_heat, n_heat)
            out["exact_norm"] = exact.norm(dim=-1).numpy().reshape(n_heat, n_heat)
        if log_density_fn is not None:
            logp = log_density_fn(heat.double(), sigma).numpy().reshape(n_heat, n_heat)
            out["logp"] = floored(logp, 25.0)
    return out
