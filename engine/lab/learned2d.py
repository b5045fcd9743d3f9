"""A trained 2D score against the exact one, and the Train page's other computations, as NumPy
arrays: the learned field with its error map, a preview of the training data, the NCSNv2 σ₁ rule
on that data, the comparison rows of finished runs and the cost-per-step experiment."""

from __future__ import annotations

import numpy as np
import torch

from engine.device import one_thread
from engine.lab.grids import field_comparison
from engine.samplers.schedules import largest_pairwise_distance
from engine.models.score import load_score
from engine.store.checkpoints import CheckpointError, read_meta
from engine.targets import GaussianMixture, sample_set
from engine.training.toy2d import run_summary, time_objectives


def training_data(name: str, n: int = 2000, means=None, weights=None) -> np.ndarray:
    """n points of a training set (seed 0): a named sample set, or the mixture (means, weights)."""
    g = torch.Generator().manual_seed(0)
    if name == "mixture":
        return GaussianMixture.create(means, weights).sample(n, g).numpy()
    return sample_set(name, n, g).numpy()


def sigma_rule(name: str, means=None, weights=None) -> float:
    """NCSNv2 technique 1: σ₁ ≈ the largest distance between two training points."""
    return largest_pairwise_distance(training_data(name, 2000, means, weights))


def learned_field(path: str, sigma: float) -> dict:
    """The score of checkpoint `path` at noise level σ on a grid (engine.lab.grids.field_comparison),
    next to the exact ∇log p_σ and with the error map when it was trained on a Gaussian mixture;
    otherwise over a preview of its training data ("data_points")."""
    loaded = load_score(path)
    score_fn = loaded.score_fn
    target = loaded.meta.get("target") or {}
    if target.get("data") == "mixture":
        mixture = GaussianMixture.from_dict(target)
        extent = max(abs(v) for m in mixture.means for v in m) + 3 * max(1.0, sigma) ** 0.5 + 2
        return field_comparison(score_fn, sigma, -extent, extent, exact_fn=mixture.score,
                                log_density_fn=mixture.log_prob)
    points = training_data(target.get("data", "rings"))
    extent = float(np.abs(points).max()) + 1.0
    return {**field_comparison(score_fn, sigma, -extent, extent), "data_points": points}


def comparison_rows(runs) -> list[dict]:
    """One row per finished run with a readable checkpoint: {"run", objective, data, steps, loss,
    fisher, fisher_floor, sec_per_step, wall_time} (engine.training.toy2d.run_summary)."""
    rows = []
    for r in runs:
        if r.checkpoint is None or r.state != "finished":
            continue
        try:
            meta = read_meta(r.dir / "model")
        except (CheckpointError, OSError):
            continue
        rows.append({"run": r.dir.name[:15] + "·" + (meta.get("objective") or ""), **run_summary(meta)})
    return rows


def cost_per_step(dims: tuple, steps: int) -> list[dict]:
    """Seed experiment (a): seconds per training step of ISM, SSM and DSM at each dimension, on
    one thread (what a user's laptop core sees; comparable between runs)."""
    with one_thread():
        return time_objectives(dims=dims, steps=steps)
