"""Langevin samplers with one signature: (score_fn, x_init, schedule, rng) → SampleResult.

score_fn(x, sigma) returns s(x) ≈ ∇_x log p_σ(x) for a batch x and a float σ.

Update (seeds' / paper form):  x ← x + (α/2)·s(x, σ_i) + √α·z,  z ~ N(0, I).
Plain Langevin is one level (σ = 0 for an exact score); annealed Langevin runs the levels
σ_1 > … > σ_L in turn with α_i = ε·σ_i²/σ_L² and T steps per level, each level starting where the
previous ended. The optional final denoising step is Tweedie's x ← x + σ_L²·s(x, σ_L).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import torch

from .noise import geometric_sigmas

ScoreFn = Callable[[torch.Tensor, float], torch.Tensor]


class SamplerDiverged(RuntimeError):
    """Particles became NaN/inf or flew far out; the message says where and what to try."""

    def __init__(self, message: str, step: int, level: int):
        super().__init__(message)
        self.step = step
        self.level = level


@dataclass(frozen=True)
class LangevinSchedule:
    sigmas: tuple[float, ...]       # σ at which the score is evaluated, one per level
    step_sizes: tuple[float, ...]   # α_i, one per level (paper form)
    steps_per_level: int
    denoise: bool = False           # final Tweedie step at σ_L
    record_every: int = 0           # keep a trajectory frame every k steps (0: none)
    record_particles: int = 0       # how many particles to keep in frames (0: all)
    blowup_radius: float = 1e4      # |x| beyond this counts as diverged

    @property
    def total_steps(self) -> int:
        return self.steps_per_level * len(self.sigmas)


def plain_schedule(step_size: float, steps: int, sigma: float = 0.0, **kw) -> LangevinSchedule:
    """Plain Langevin: one level, fixed α = ε, score at σ (0 for the exact clean score)."""
    return LangevinSchedule((float(sigma),), (float(step_size),), int(steps), **kw)


def annealed_schedule(eps: float, steps_per_level: int, sigma_max: float, sigma_min: float,
                      levels: int, **kw) -> LangevinSchedule:
    """Annealed Langevin: geometric σ_i and α_i = ε·σ_i²/σ_L²."""
    sigmas = geometric_sigmas(sigma_max, sigma_min, levels)
    step_sizes = tuple(eps * s**2 / sigmas[-1] ** 2 for s in sigmas)
    return LangevinSchedule(sigmas, step_sizes, int(steps_per_level), **kw)


SMALL_WORK = 1 << 15  # tensors up to this many elements run fastest on one intra-op thread


@contextmanager
def small_tensor_threads(numel: int):
    """Run a loop of ops on tiny tensors with one torch intra-op thread, then restore.

    For a few thousand elements per op, a second thread costs more than it saves, and on a busy
    machine its spin-waiting costs milliseconds per op (softmax went from 10 µs to 7 ms here).
    Larger work keeps the configured thread count.
    """
    previous = torch.get_num_threads()
    if numel > SMALL_WORK or previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass
class SampleResult:
    x: torch.Tensor                          # final particles (N, d)
    frames: torch.Tensor | None = None       # (F, M, d) recorded particle positions, F ≥ 1
    frame_steps: list[int] = field(default_factory=list)   # global step of each frame
    frame_levels: list[int] = field(default_factory=list)  # level index of each frame
    nfe: int = 0                             # score evaluations


def langevin_dynamics(score_fn: ScoreFn, x_init: torch.Tensor, schedule: LangevinSchedule,
                      rng: torch.Generator | None = None) -> SampleResult:
    """Run (annealed) Langevin dynamics; raises SamplerDiverged on NaN/inf or blow-up."""
    x = x_init.clone()
    n, d = x.shape[0], x.shape[1:]
    keep = schedule.record_particles or n
    frames, frame_steps, frame_levels = [], [], []
    if schedule.record_every:
        frames.append(x[:keep].clone())
        frame_steps.append(0)
        frame_levels.append(0)
    step = 0
    nfe = 0
    check_every = 10
    for level, (sigma, alpha) in enumerate(zip(schedule.sigmas, schedule.step_sizes)):
        noise_scale = math.sqrt(alpha)
        half_alpha = alpha / 2
        # One randn call per level is much faster than one per step for small particle sets.
        noise = torch.randn((schedule.steps_per_level, n, *d), generator=rng,
                            dtype=x.dtype, device=x.device)
        noise.mul_(noise_scale)  # √α z for the whole level in one op (same numbers as per step)
        for t in range(schedule.steps_per_level):
            s = score_fn(x, sigma)
            nfe += 1
            x = x + half_alpha * s
            x += noise[t]
            step += 1
            if step % check_every == 0 or t == schedule.steps_per_level - 1:
                _check(x, step, level, sigma, alpha, schedule)
            if schedule.record_every and step % schedule.record_every == 0:
                frames.append(x[:keep].clone())
                frame_steps.append(step)
                frame_levels.append(level)
    if schedule.denoise:
        sigma_last = schedule.sigmas[-1]
        x = x + sigma_last**2 * score_fn(x, sigma_last)  # Tweedie: E[x0 | x] = x + σ² ∇log p_σ(x)
        nfe += 1
        _check(x, step, len(schedule.sigmas) - 1, sigma_last, 0.0, schedule)
        if schedule.record_every:
            frames.append(x[:keep].clone())
            frame_steps.append(step)
            frame_levels.append(len(schedule.sigmas) - 1)
    stacked = torch.stack(frames) if frames else None
    return SampleResult(x=x, frames=stacked, frame_steps=frame_steps, frame_levels=frame_levels,
                        nfe=nfe)


# The annealed sampler is the same chain over a multi-level schedule.
annealed_langevin = langevin_dynamics


def _check(x: torch.Tensor, step: int, level: int, sigma: float, alpha: float,
           schedule: LangevinSchedule) -> None:
    finite = bool(torch.isfinite(x).all())
    if finite and float(x.abs().max()) <= schedule.blowup_radius:
        return
    what = "became NaN/inf" if not finite else f"flew beyond |x| = {schedule.blowup_radius:g}"
    where = f"at step {step}" + (f" (level {level + 1}, σ = {sigma:.3g})" if len(schedule.sigmas) > 1 else "")
    raise SamplerDiverged(
        f"The sampler diverged: particles {what} {where} with step size α = {alpha:.3g}; "
        f"try a smaller step size.", step=step, level=level)


def init_particles(spec: str, n: int, dim: int, generator: torch.Generator | None = None,
                   dtype=torch.float32) -> torch.Tensor:
    """'uniform:-8,8' (a box) or 'gaussian:0,3' (mean, std per coordinate) → (n, dim)."""
    kind, _, params = spec.partition(":")
    try:
        a, b = (float(v) for v in params.split(",")) if params else (None, None)
    except ValueError:
        raise ValueError(f"Cannot read the initial distribution {spec!r}; use e.g. 'uniform:-8,8' "
                         f"or 'gaussian:0,3'.") from None
    if kind == "uniform":
        lo, hi = (-8.0, 8.0) if a is None else (a, b)
        if not hi > lo:
            raise ValueError(f"The initial box {spec!r} is empty; the upper bound must exceed the lower.")
        return lo + (hi - lo) * torch.rand(n, dim, generator=generator, dtype=dtype)
    if kind == "gaussian":
        mean, std = (0.0, 1.0) if a is None else (a, b)
        if not std > 0:
            raise ValueError(f"The initial Gaussian {spec!r} needs a positive standard deviation.")
        return mean + std * torch.randn(n, dim, generator=generator, dtype=dtype)
    raise ValueError(f"Unknown initial distribution {spec!r}; use 'uniform:LO,HI' or 'gaussian:MEAN,STD'.")
