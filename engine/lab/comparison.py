"""Samplers compared from the same start, as NumPy arrays for the pages.

The seeds' experiment pairs plain Langevin (L·T steps at one step size) with annealed Langevin (T
steps at each of L noise levels) on the same budget, the same initial particles and the same noise
stream; a trained 2D score can stand in for the exact one with every sampler setting unchanged.
Results are dicts of arrays (what `st.cache_data` stores cheaply), with MixResult.summary's names
(mode_weights, weight_error, sliced_wasserstein, nfe, seconds), or {"error": one sentence}.
"""

from __future__ import annotations

import math
from dataclasses import replace

from engine.device import one_thread
from engine.lab.mixing import MixConfig, MixResult, run_mix, run_mixes, schedule_for
from engine.samplers.langevin import SamplerDiverged
from engine.models.score import load_score
from engine.store.checkpoints import CheckpointError, read_meta

PLAIN, ANNEALED = "Plain Langevin", "Annealed Langevin"


def frame_every(steps: int, levels: int, n_frames: int) -> int:
    """Record every `every` steps, a divisor of T (so each level's end is a frame), for about
    n_frames frames over the L·T steps."""
    per_level = max(1, math.ceil(n_frames / levels))
    return next(d for d in range(max(1, math.ceil(steps / per_level)), steps + 1) if steps % d == 0)


def plain_and_annealed(base: MixConfig) -> dict[str, MixConfig]:
    """The seeds' pair from `base` (an annealed config, T = base.steps): plain Langevin runs L·T
    steps and ignores the σ schedule (those fields stay at their defaults, and it does not
    denoise); annealed Langevin runs T steps per level."""
    plain = replace(base, sampler="langevin", steps=base.levels * base.steps, denoise=False,
                    sigma_max=MixConfig.sigma_max, sigma_min=MixConfig.sigma_min,
                    levels=MixConfig.levels)
    return {PLAIN: plain, ANNEALED: replace(base, sampler="annealed")}


def as_arrays(result: MixResult) -> dict:
    """A MixResult as arrays: x, frames (F, M, 2) or None, frame_steps, frame_sigmas (σ of each
    frame's level; 0 for plain Langevin on the clean density) and the summary's figures."""
    s = result.sample
    sigmas = schedule_for(result.config).sigmas
    return dict(x=s.x.numpy(), frames=s.frames.numpy() if s.frames is not None else None,
                frame_steps=list(s.frame_steps), frame_sigmas=[float(sigmas[lv]) for lv in s.frame_levels],
                mode_weights=result.mode_weights, target_weights=result.target_weights,
                weight_error=result.weight_error, sliced_wasserstein=result.sliced_wasserstein,
                seconds=result.seconds, nfe=s.nfe)


def sample_exact(configs: tuple[MixConfig, ...]) -> list[dict]:
    """Each config with the exact score, batched where they share a start (run_mixes): arrays,
    or {"error": …} for a config that is impossible or diverges."""
    return [{"error": str(r)} if isinstance(r, Exception) else as_arrays(r) for r in run_mixes(configs)]


def sample_learned(config: MixConfig) -> dict:
    """`config` sampled with the score of its checkpoint (a trained 2D score run) instead of the
    exact one: arrays, or {"error": …}."""
    try:
        with one_thread():   # a 2→128→128→2 MLP on 1000 points: one thread is fastest
            return as_arrays(run_mix(config, score_fn=load_score(config.checkpoint).score_fn))
    except (CheckpointError, SamplerDiverged, ValueError) as err:
        return {"error": str(err)}


def trained_target(config: MixConfig) -> dict:
    """What the checkpoint of `config` was trained on, against the config's target: objective,
    weights, means, differs (True when either differs from the config's), and sigma_floor (the
    smallest σ the model saw, when it is above the annealed sampler's σ_min; else None)."""
    meta = read_meta(config.checkpoint)
    target = meta.get("target") or {}
    weights = [round(float(v), 3) for v in target.get("weights", [])]
    means = [tuple(float(v) for v in m) for m in target.get("means", [])]
    differs = (weights != [round(float(v), 3) for v in config.weights]
               or means != [tuple(m) for m in config.means])
    sigmas = meta.get("sigmas") or []
    floor = min(sigmas) if sigmas and config.sampler == "annealed" else None
    return dict(objective=meta.get("objective", "?"), weights=weights, means=means, differs=differs,
                sigma_floor=floor if floor is not None and floor > config.sigma_min * 1.0001 else None)
