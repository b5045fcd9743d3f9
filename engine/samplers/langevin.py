"""Langevin samplers with one signature: (score_fn, x_init, schedule, rng, callback) → SampleResult.

score_fn(x, sigma) returns s(x) ≈ ∇_x log p_σ(x) for a batch x and a float σ. Schedules (σ_i, α_i,
T) are built by the small functions below; trajectories are recorded by a callback (k-diffusion
style), e.g. a FrameRecorder, which the reverse-SDE samplers use too.

Update (seeds' / paper form):  x ← x + (α/2)·s(x, σ_i) + √α·z,  z ~ N(0, I).
Plain Langevin is one level (σ = 0 for an exact score); annealed Langevin runs the levels
σ_1 > … > σ_L in turn with α_i = ε·σ_i²/σ_L² and T steps per level, each level starting where the
previous ended. The optional final denoising step is Tweedie's x ← x + σ_L²·s(x, σ_L).
`langevin_step` is the one update; the predictor–corrector's corrector (engine.samplers.reverse)
uses it too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from engine.samplers import mixture_kernel
from engine.samplers.schedules import annealed_step_sizes, geometric_sigmas

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
    return LangevinSchedule(sigmas, annealed_step_sizes(eps, sigmas), int(steps_per_level), **kw)


@dataclass
class SampleResult:
    """A run's particles and NFE; frames only when a FrameRecorder filled them (langevin_result)."""

    x: torch.Tensor                          # final particles (N, d)
    frames: torch.Tensor | None = None       # (F, M, d) recorded particle positions, F ≥ 1
    frame_steps: list[int] = field(default_factory=list)   # global step of each frame
    frame_levels: list[int] = field(default_factory=list)  # level index of each frame
    nfe: int = 0                             # score evaluations


class FrameRecorder:
    """A sampler callback (k-diffusion style) that keeps a trajectory: the state every `every`
    steps and at the final one, the first `keep` particles (0: all).

    Samplers call callback(info) with info = {"x", "step", …} at step 0, after every step and,
    with "final": True, for the state they return; the other keys ("level", "sigma" for Langevin,
    "t" for the reverse-SDE samplers) are kept per frame and read back with `labels(key)`.
    """

    def __init__(self, every: int, keep: int = 0):
        self.every, self.keep = every, keep
        self.states: list[torch.Tensor] = []
        self.info: list[dict] = []

    def __call__(self, info: dict) -> None:
        if self.every and (info["step"] % self.every == 0 or info.get("final")):
            self.states.append(info["x"][: self.keep or None].detach().clone())
            self.info.append(info)

    def frames(self) -> torch.Tensor | None:
        return torch.stack(self.states) if self.states else None

    def labels(self, key: str) -> list:
        return [i[key] for i in self.info]

    def langevin_result(self, result: SampleResult) -> SampleResult:
        """A Langevin result with these frames, their steps and levels."""
        return SampleResult(x=result.x, frames=self.frames(), frame_steps=self.labels("step"),
                            frame_levels=self.labels("level"), nfe=result.nfe)


def langevin_step(x: torch.Tensor, score: torch.Tensor, alpha, z: torch.Tensor) -> torch.Tensor:
    """One Langevin step in the paper form: x + (α/2)·s + √α·z (α a float or a 0-d tensor)."""
    root = torch.sqrt(alpha) if torch.is_tensor(alpha) else math.sqrt(alpha)
    return x + (alpha / 2) * score + root * z


def langevin_dynamics(score_fn: ScoreFn, x_init: torch.Tensor, schedule: LangevinSchedule,
                      rng: torch.Generator | None = None, callback=None, noise=None) -> SampleResult:
    """Run (annealed) Langevin dynamics; raises SamplerDiverged on NaN/inf or blow-up.
    callback(info), if given, sees {"x", "step", "level", "sigma"} at step 0 and after every step,
    and the denoised state with "final": True (e.g. a FrameRecorder). noise(step0, shape), if
    given, returns each level's z (T, N, …) in place of torch.randn from rng (`kernel_noise`)."""
    x = x_init.clone()
    n, d = x.shape[0], x.shape[1:]
    notify = callback or (lambda info: None)
    notify({"x": x, "step": 0, "level": 0, "sigma": schedule.sigmas[0]})
    step = 0
    for level, (sigma, alpha) in enumerate(zip(schedule.sigmas, schedule.step_sizes)):
        shape = (schedule.steps_per_level, n, *d)
        if noise is not None:
            z = noise(step, shape).to(device=x.device, dtype=x.dtype)
        else:  # one randn call per level is much faster than one per step for small particle sets
            z = torch.randn(shape, generator=rng, dtype=x.dtype, device=x.device)
        for t in range(schedule.steps_per_level):
            x = langevin_step(x, score_fn(x, sigma), alpha, z[t])
            step += 1
            if step % 10 == 0 or t == schedule.steps_per_level - 1:
                _check(x, step, level, sigma, alpha, schedule)
            notify({"x": x, "step": step, "level": level, "sigma": sigma})
    if schedule.denoise:
        x = _denoise(score_fn, x, step, schedule)
        notify({"x": x, "step": step, "level": len(schedule.sigmas) - 1,
                "sigma": schedule.sigmas[-1], "final": True})
    return SampleResult(x=x, nfe=step + schedule.denoise)


def _denoise(score_fn, x: torch.Tensor, step: int, schedule: LangevinSchedule) -> torch.Tensor:
    """Tweedie: E[x0 | x] = x + σ_L² ∇log p_σL(x)."""
    sigma_last = schedule.sigmas[-1]
    x = x + sigma_last**2 * score_fn(x, sigma_last)
    _check(x, step, len(schedule.sigmas) - 1, sigma_last, 0.0, schedule)
    return x


def mixture_langevin_chains(mixture, x_inits: list[torch.Tensor],
                            schedules: list[LangevinSchedule],
                            rngs: list[torch.Generator], callbacks=None,
                            fused: bool | None = None) -> list[SampleResult]:
    """Langevin chains on the exact score of one Gaussian mixture (one chain or several).

    Chain b is `langevin_dynamics(mixture.score, x_inits[b], schedules[b], rngs[b], callbacks[b])`,
    the same maths. Two implementations:

    - fused (default when numba is installed, for float32 2D particles): each chain runs
      `mixture_kernel.langevin_steps`, the whole step (score, softmax, noise, update) as one
      compiled loop. Its noise is the kernel's own counter-based stream under a key drawn once
      from rngs[b] (so the same seed gives the same particles, and chains with equal generators
      share their noise as on the torch path), not torch.randn's: the same law, other numbers.
      A callback with an `every` attribute (a FrameRecorder) is called at step 0, at multiples of
      `every` and for the final state only, any other callback after every step;
    - torch (`fused=False`, or numba missing): all chains advance together in one (B, d, N)
      tensor with one torch.randn of (T, N, d) per level from rngs[b], bit for bit the particles
      of langevin_dynamics; each step costs one set of small-tensor ops instead of B.

    The schedules must have the same total number of steps (levels may differ: plain Langevin's
    one level of L·T steps next to annealed Langevin's L levels of T).
    Raises SamplerDiverged for the first chain that diverges.
    """
    count = len(schedules)
    total = schedules[0].total_steps
    if any(s.total_steps != total for s in schedules) or len(x_inits) != count or len(rngs) != count:
        raise ValueError("Batched chains need one init, schedule and generator each, and the "
                         "same total number of steps.")
    callbacks = callbacks or [None] * count
    if fused is None:
        fused = (mixture_kernel.available and mixture.dim == 2
                 and all(x.dtype == torch.float32 and x.device.type == "cpu" for x in x_inits))
    if fused:
        return [_fused_chain(mixture, x, s, g, c) for x, s, g, c in zip(x_inits, schedules, rngs, callbacks)]
    return _torch_chains(mixture, x_inits, schedules, rngs, callbacks)


def kernel_key(rng: torch.Generator | None) -> int:
    """The fused kernel's noise key for one chain: one draw below 2³² from the chain's generator."""
    return int(torch.randint(0, 2**32, (1,), generator=rng, dtype=torch.int64))


def kernel_noise(rng: torch.Generator | None):
    """The fused kernel's noise stream as langevin_dynamics' `noise` for 2D particles (key from
    rng, as a fused chain draws it): a learned score then sees the draws the exact one does."""
    key = kernel_key(rng)
    return lambda step0, shape: torch.from_numpy(mixture_kernel.normals(key, step0, shape[0], shape[1]))


def _fused_chain(mixture, x_init: torch.Tensor, schedule: LangevinSchedule, rng, callback) -> SampleResult:
    """One chain through the compiled kernel, stopping where the torch path checks for divergence
    (every 10 steps and at each level's end) and where the callback records. The noise key is
    one draw from `rng`."""
    xt = np.ascontiguousarray(x_init.detach().numpy().T)                   # (2, N) float32
    key = kernel_key(rng)
    notify = callback or (lambda info: None)
    every = getattr(callback, "every", 1) if callback is not None else 0
    notify({"x": x_init, "step": 0, "level": 0, "sigma": schedule.sigmas[0]})
    steps = schedule.steps_per_level
    for level, (sigma, alpha) in enumerate(zip(schedule.sigmas, schedule.step_sizes)):
        mean_col, neg_inv_var, const = mixture.score_constants(x_init, float(sigma))
        constants = (mean_col[..., 0].numpy(), neg_inv_var[..., 0].numpy(), const[:, 0].numpy())
        t = 0
        while t < steps:
            done = level * steps + t                               # global steps before this segment
            stop = min(steps, t + 10 - done % 10)
            if every:
                stop = min(stop, t + every - done % every)
            mixture_kernel.langevin_steps(xt, key, level * steps, t, stop, *constants, float(alpha))
            t = stop
            done = level * steps + t
            if done % 10 == 0 or t == steps:
                if mixture_kernel.out_of_bounds(xt, schedule.blowup_radius):
                    _check(torch.from_numpy(xt), done, level, sigma, alpha, schedule)
            if every and (done % every == 0 or every == 1):
                notify({"x": torch.from_numpy(xt.T.copy()), "step": done, "level": level, "sigma": sigma})
    x = torch.from_numpy(xt.T.copy())
    total = schedule.total_steps
    if schedule.denoise:
        x = _denoise(mixture.score, x, total, schedule)
        notify({"x": x, "step": total, "level": len(schedule.sigmas) - 1,
                "sigma": schedule.sigmas[-1], "final": True})
    return SampleResult(x=x, nfe=total + schedule.denoise)


def _torch_chains(mixture, x_inits, schedules, rngs, callbacks) -> list[SampleResult]:
    """mixture_langevin_chains in torch: all chains in one (B, d, N) tensor."""
    count = len(schedules)
    total = schedules[0].total_steps
    n, d = x_inits[0].shape
    dtype, device = x_inits[0].dtype, x_inits[0].device
    means, _, _ = mixture.tensors(device, dtype)
    mean_col = means.unsqueeze(-1)                                   # (K, d, 1)
    k = means.shape[0]
    xs = torch.stack([x.T for x in x_inits])                         # (B, d, N)
    neg_inv_var = torch.empty((count, k, d, 1), dtype=dtype, device=device)
    const = torch.empty((count, k, 1), dtype=dtype, device=device)
    half = [0.0] * count
    noises: list = [None] * count
    notify = [c or (lambda info: None) for c in callbacks]
    for b, s in enumerate(schedules):
        notify[b]({"x": x_inits[b], "step": 0, "level": 0, "sigma": s.sigmas[0]})
    uniform_half = None
    seg_start = seg_end = 0
    seg_noise = None
    for step in range(total):
        for b, s in enumerate(schedules):
            if step % s.steps_per_level == 0:   # chain b enters a new level: as langevin_dynamics
                level = step // s.steps_per_level
                alpha = s.step_sizes[level]
                noise = torch.randn((s.steps_per_level, n, d), generator=rngs[b], dtype=dtype,
                                    device=device)
                noise.mul_(math.sqrt(alpha))
                noises[b] = noise.transpose(1, 2)                    # (T, d, N) view
                _, niv, c = mixture.score_constants(x_inits[b], float(s.sigmas[level]))
                neg_inv_var[b] = niv
                const[b] = c
                half[b] = alpha / 2
                uniform_half = None
        if step == seg_end:
            # Until the next level change of any chain, every chain's noise is one stacked block.
            seg_start = step
            seg_end = min((step // s.steps_per_level + 1) * s.steps_per_level for s in schedules)
            seg_noise = torch.stack([noises[b][step % s.steps_per_level:
                                               step % s.steps_per_level + seg_end - step]
                                     for b, s in enumerate(schedules)], dim=1)  # (S, B, d, N)
        diff = xs.unsqueeze(1) - mean_col                            # (B, K, d, N)
        scaled = diff * neg_inv_var                                  # −(x − μ_k)/v_k
        logits = torch.add(const, (diff * scaled).sum(2), alpha=0.5)  # (B, K, N)
        resp = torch.softmax(logits, dim=1)
        score = (resp.unsqueeze(2) * scaled).sum(1)                  # (B, d, N)
        if uniform_half is None:
            uniform_half = torch.tensor(half, dtype=dtype, device=device).view(count, 1, 1)
        xs = xs + uniform_half * score
        xs += seg_noise[step - seg_start]
        done = step + 1
        for b, s in enumerate(schedules):
            level = step // s.steps_per_level
            if done % 10 == 0 or done % s.steps_per_level == 0:
                _check(xs[b], done, level, s.sigmas[level], s.step_sizes[level], s)
            notify[b]({"x": xs[b].T, "step": done, "level": level, "sigma": s.sigmas[level]})
    results = []
    for b, s in enumerate(schedules):
        x = xs[b].T.contiguous()
        if s.denoise:
            x = _denoise(mixture.score, x, total, s)
            notify[b]({"x": x, "step": total, "level": len(s.sigmas) - 1, "sigma": s.sigmas[-1],
                       "final": True})
        results.append(SampleResult(x=x, nfe=total + s.denoise))
    return results


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
