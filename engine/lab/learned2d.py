"""A trained 2D score against the exact one, and the Train page's other computations, as NumPy
arrays: the learned field with its error map, a preview of the training data, the NCSNv2 σ₁ rule
on that data, the live preview of a run (samples and field of its latest checkpoint), the weights
annealed Langevin recovers with it next to the exact score's, a drawn/uploaded data set, the
comparison rows of finished runs and the cost-per-step experiment."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import numpy as np
import torch

from engine import metrics
from engine.device import one_thread
from engine.lab.comparison import as_arrays, sample_learned
from engine.lab.grids import field_comparison
from engine.lab.mixing import MixConfig, run_mix
from engine.samplers.langevin import (SamplerDiverged, annealed_schedule, init_particles,
                                      langevin_dynamics, plain_schedule)
from engine.samplers.schedules import largest_pairwise_distance
from engine.models.score import load_score, trained_sigmas
from engine.store.checkpoints import CheckpointError, read_meta
from engine.targets import GaussianMixture, sample_set
from engine.training.toy2d import MAX_POINTS, check_points, run_summary, time_objectives

MAX_CSV_BYTES = 200_000        # an uploaded CSV of points


class PointsError(ValueError):
    """An uploaded or drawn point set that cannot be trained on (one sentence)."""


def training_data(name: str, n: int = 2000, means=None, weights=None, stds=None) -> np.ndarray:
    """n points of a training set (seed 0): a named sample set, or the mixture (means, weights,
    stds)."""
    g = torch.Generator().manual_seed(0)
    if name == "mixture":
        return GaussianMixture.create(means, weights, stds).sample(n, g).numpy()
    return sample_set(name, n, g).numpy()


def sigma_rule(name: str, means=None, weights=None, points=None, stds=None) -> float:
    """NCSNv2 technique 1: σ₁ ≈ the largest distance between two training points (`points`: your
    own data set, for name "points")."""
    if name == "points":
        return largest_pairwise_distance(np.asarray(points, dtype=float).reshape(-1, 2))
    return largest_pairwise_distance(training_data(name, 2000, means, weights, stds))


def trained_mixture(meta: dict) -> GaussianMixture | None:
    """The Gaussian mixture a 2D checkpoint was trained on (None for other data)."""
    target = meta.get("target") or {}
    return GaussianMixture.from_dict(target) if target.get("data") == "mixture" else None


def run_points(meta: dict) -> np.ndarray:
    """A 2D checkpoint's training data for display: its own points (--data points), else 2000
    points of its sample set."""
    target = meta.get("target") or {}
    if target.get("data") == "points":
        return np.asarray((meta.get("config") or {}).get("points") or [], dtype=float).reshape(-1, 2)
    return training_data(target.get("data", "rings"))


def extent_of(meta: dict, sigma: float) -> float:
    """Half-width of the square a 2D checkpoint's field and samples are drawn in."""
    mixture = trained_mixture(meta)
    if mixture is not None:
        return max(abs(v) for m in mixture.means for v in m) + 3 * max(1.0, sigma) ** 0.5 + 2
    return float(np.abs(run_points(meta)).max()) + 1.0


def field_of(loaded, sigma: float) -> dict:
    """The score of a loaded checkpoint at noise level σ on a grid (engine.lab.grids.field_comparison),
    next to the exact ∇log p_σ and with the error map when it was trained on a Gaussian mixture;
    otherwise over its training data ("data_points")."""
    extent = extent_of(loaded.meta, sigma)
    mixture = trained_mixture(loaded.meta)
    if mixture is not None:
        return field_comparison(loaded.score_fn, sigma, -extent, extent, exact_fn=mixture.score,
                                log_density_fn=mixture.log_prob)
    return {**field_comparison(loaded.score_fn, sigma, -extent, extent),
            "data_points": run_points(loaded.meta)}


def learned_field(path: str, sigma: float) -> dict:
    """field_of the checkpoint at `path`."""
    return field_of(load_score(path), sigma)


def preview(path: str, particles: int = 500, steps_per_level: int = 20, seed: int = 0) -> dict:
    """What a run has learned so far, from its latest checkpoint: a short Langevin run with its
    score (annealed over its own σ levels with ε = 0.1 and `steps_per_level` steps each; plain
    Langevin at its σ for a one-level model) from uniform particles over the drawing square, and
    its field at its smallest σ next to the exact one (field_of). Returns {"x", "step", "total",
    "sigma", "field", "mode_weights", "target_weights"} (weights only for a mixture), or
    {"error": one sentence}."""
    try:
        loaded = load_score(path)
    except (CheckpointError, OSError) as err:
        return {"error": str(err)}
    meta = loaded.meta
    sigmas = trained_sigmas(meta)
    sigma = min(sigmas) if sigmas else 0.0
    if len(sigmas) > 1:
        schedule = annealed_schedule(0.1, steps_per_level, max(sigmas), sigma, len(sigmas))
    else:
        schedule = plain_schedule(0.1, 10 * steps_per_level, sigma=sigma)
    extent = extent_of(meta, sigma)
    g = torch.Generator().manual_seed(seed)
    x0 = init_particles(f"uniform:{-extent},{extent}", particles, 2, generator=g)
    try:
        with one_thread(), torch.no_grad():
            x = langevin_dynamics(loaded.score_fn, x0, schedule, g).x
    except SamplerDiverged as err:
        return {"error": str(err)}
    out = {"x": x.numpy(), "step": meta.get("steps"), "total": meta.get("total_steps"),
           "sigma": sigma, "field": field_of(loaded, sigma)}
    mixture = trained_mixture(meta)
    if mixture is not None:
        out["mode_weights"] = metrics.mode_weights(x, mixture).tolist()
        out["target_weights"] = list(mixture.weights)
    return out


def mix_config(path: str, **kw) -> MixConfig:
    """`python -m engine mix --sampler annealed --checkpoint PATH` as a MixConfig: the mixture the
    checkpoint was trained on, every sampler setting at the command's default unless given."""
    mixture = trained_mixture(read_meta(path))
    if mixture is None:
        raise CheckpointError("This model was not trained on a Gaussian mixture, so there are no "
                              "weights to recover.")
    stds = tuple(float(s[0]) for s in mixture.stds)
    return MixConfig(means=tuple(tuple(m) for m in mixture.means), weights=tuple(mixture.weights),
                     stds=stds, **{"sampler": "annealed", "checkpoint": path, **kw})


def weights_check(path: str) -> dict:
    """The weights annealed Langevin recovers with checkpoint `path` (exactly what `mix --sampler
    annealed --checkpoint PATH` reports) and with the exact score of its mixture, through the same
    sampler code with the same particles and noise (the exact score passed as the score function,
    so the two runs differ only in the score): {"target": weights, "learned": arrays, "exact":
    arrays} (engine.lab.comparison), or {"error": one sentence}."""
    try:
        config = mix_config(path)
    except (CheckpointError, OSError, ValueError) as err:
        return {"error": str(err)}
    learned = sample_learned(config)
    if "error" in learned:
        return learned
    try:
        with one_thread():
            exact = as_arrays(run_mix(replace(config, checkpoint=None), score_fn=config.mixture.score))
    except (SamplerDiverged, ValueError) as err:
        return {"error": str(err)}
    return {"target": list(config.weights), "learned": learned, "exact": exact}


def points_from_csv(data: bytes) -> tuple[tuple[float, float], ...]:
    """An uploaded CSV of points → ((x, y), …): two numeric columns (a header line and further
    columns are ignored), at most MAX_POINTS rows and MAX_CSV_BYTES. PointsError (one sentence)
    for anything else."""
    if len(data) > MAX_CSV_BYTES:
        raise PointsError(f"The file is {len(data) / 1e3:.0f} kB; upload at most "
                          f"{MAX_CSV_BYTES // 1000} kB ({MAX_POINTS} points).")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PointsError("The file is not a text CSV; upload lines of 'x,y' numbers.") from None
    rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    points = []
    for i, row in enumerate(rows):
        try:
            x, y = float(row[0]), float(row[1])
        except (ValueError, IndexError):
            if i == 0:
                continue                          # a header line
            raise PointsError(f"Line {i + 1} of the CSV is not two numbers x,y: "
                              f"{','.join(row)[:40]!r}.") from None
        points.append((x, y))
    try:
        check_points(points)
    except ValueError as err:
        raise PointsError(str(err)) from None
    return tuple(points)


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
