"""Samplers for the reverse of a forward SDE, one signature each:

    sampler(score_fn, x_init, config, rng) -> SDESampleResult(x, frames, frame_times, nfe)

score_fn(x, t) ≈ ∇_x log p_t(x) for a batch x and a float time t ∈ [eps, 1]. x_init is a draw
from the prior (sde.prior_sampling). Time runs backwards from t = 1 to t = eps on a uniform grid
of N steps, Δt = −(1 − eps)/N.

- Euler–Maruyama on the reverse SDE  dx = [f − g² s] dt + g dw̄:
      x ← x − (f − g² s)|Δt| + g √|Δt| z;   the last step returns the mean (no noise).
  NFE = N.
- Predictor–corrector: at each time, `corrector_steps` Langevin corrector steps, then the
  Euler–Maruyama predictor step (score_sde's order). The corrector is the seeds' Langevin step
  x ← x + (a/2) s + √a z (engine.samplers.langevin.langevin_step) with score_sde's step size,
  stated there in the code form and converted at the edge, a = 2ε:
      ε = 2 α (r ‖z‖ / ‖s‖)²,   a = 2ε = 4 α (r ‖z‖ / ‖s‖)²,
  norms per sample then averaged over the batch, α = 1 (VE) or 1 − β_i (VP, sub-VP). r is the
  signal-to-noise ratio ("snr"): the size of the score step relative to the noise;
  NFE = N·(corrector_steps + 1).
- Inpainting (`pc_inpaint`) is the same predictor–corrector loop with the known pixels replaced
  by a forward-SDE draw of the known data after every step (score_sde's controllable generation).
- Probability-flow ODE dx/dt = f − ½ g² s, solved from t = 1 to eps with scipy's adaptive
  RK45 (solve_ivp, rtol = atol = 1e-5 by default). NFE = the solver's function evaluations.

Every sampler raises SamplerDiverged (one sentence with a hint) on NaN/inf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from scipy.integrate import solve_ivp

from engine.samplers.langevin import FrameRecorder, SamplerDiverged, langevin_step
from engine.samplers.schedules import code_to_paper_step
from engine.sde.sdes import SDE
from engine.training.flags import check_fields, option

ScoreFn = Callable[[torch.Tensor, float], torch.Tensor]
SDE_SAMPLERS = ("sde", "pc", "ode")


@dataclass(frozen=True)
class SDESamplerConfig:
    sampler: str = option("pc", choices=SDE_SAMPLERS)
    steps: int = option(500, "N time steps for sde/pc (ignored by ode)",
                        low=1, high=100_000, label="number of steps")
    snr: float = option(0.16, "r of the Langevin corrector",
                        low=0, high=100, label="signal-to-noise ratio r")
    corrector_steps: int = option(1, low=0, high=100)
    rtol: float = option(1e-5, "ODE relative tolerance",
                         low=0, high=1, low_open=True, label="ODE tolerance rtol")
    atol: float = option(1e-5, "ODE absolute tolerance",
                         low=0, high=1, low_open=True, label="ODE tolerance atol")
    record_every: int = option(0, "keep a frame every k steps (0: none; ode: ~N/k evenly spaced times)",
                               low=0, high=100_000)
    record_particles: int = option(0, "particles kept per frame (0: all)", low=0, high=100_000)
    blowup_radius: float = option(1e6, low=0, low_open=True)

    def validate(self) -> None:
        check_fields(self)
        if self.sampler == "pc" and not self.snr > 0:
            raise ValueError("The corrector's signal-to-noise ratio r (--snr) must be positive (try 0.16).")


@dataclass
class SDESampleResult:
    x: torch.Tensor                                           # final samples (N, ...)
    frames: torch.Tensor | None = None                        # (F, M, ...) positions over time
    frame_times: list[float] = field(default_factory=list)    # t of each frame (1 → eps)
    nfe: int = 0                                              # score evaluations


def _check(x: torch.Tensor, t: float, what: str, hint: str, radius: float) -> None:
    finite = bool(torch.isfinite(x).all())
    if finite and float(x.abs().max()) <= radius:
        return
    how = "became NaN/inf" if not finite else f"flew beyond |x| = {radius:g}"
    raise SamplerDiverged(f"The {what} diverged: samples {how} at t = {t:.3g}; {hint}.",
                          step=0, level=0)


class _NonFinite(Exception):
    def __init__(self, t: float):
        super().__init__(t)
        self.t = t


def _time_grid(sde: SDE, n: int) -> torch.Tensor:
    return torch.linspace(sde.T, sde.eps, n + 1, dtype=torch.float64)


def _em_step(sde: SDE, score_fn, x, t: float, dt: float, noise: torch.Tensor | None):
    """One reverse Euler–Maruyama step (dt > 0 is the size of the backward step)."""
    s = score_fn(x, t)
    f, g = sde.sde(x, t)
    mean = x - (f - g**2 * s) * dt
    if noise is None:
        return mean
    return mean + g * math.sqrt(dt) * noise


def _langevin_corrector(score_fn, x, t: float, snr: float, alpha: float, rng) -> torch.Tensor:
    """One corrector step x + (a/2) s + √a z with a = 2ε, ε = 2α(r‖z‖/‖s‖)² (score_sde's code form)."""
    s = score_fn(x, t)
    z = torch.randn(x.shape, generator=rng, dtype=x.dtype, device=x.device)
    grad_norm = s.flatten(1).norm(dim=-1).mean()
    noise_norm = z.flatten(1).norm(dim=-1).mean()
    eps_code = 2 * alpha * (snr * noise_norm / grad_norm.clamp_min(1e-12)) ** 2
    return langevin_step(x, s, code_to_paper_step(eps_code), z)


def reverse_sde(score_fn: ScoreFn, x_init: torch.Tensor, sde: SDE, config: SDESamplerConfig,
                rng: torch.Generator | None = None) -> SDESampleResult:
    """Euler–Maruyama on the reverse SDE (config.sampler is ignored)."""
    return _predictor_corrector(score_fn, x_init, sde, config, rng, corrector_steps=0)


def predictor_corrector(score_fn: ScoreFn, x_init: torch.Tensor, sde: SDE,
                        config: SDESamplerConfig, rng: torch.Generator | None = None,
                        callback=None) -> SDESampleResult:
    """Langevin corrector (snr r) then reverse-SDE Euler–Maruyama predictor at every time;
    callback(info) after every step (see _predictor_corrector)."""
    return _predictor_corrector(score_fn, x_init, sde, config, rng,
                                corrector_steps=config.corrector_steps, callback=callback)


def repaint_path(n: int, jump: int = 1, resample: int = 1) -> list[int]:
    """The time-grid indices 0 … n visited by the PC loop. Plainly 0, 1, …, n. With resampling
    (RePaint, Lugmayr et al. 2022): after every `jump` steps down to index k, go back up to k − jump
    by the forward SDE and down again, `resample` passes in all (not over the last segment)."""
    path, i = [0], 0
    while i < n:
        end = min(i + jump, n)
        passes = resample if end < n else 1
        for r in range(passes):
            path.extend(range(i + 1, end + 1))
            if r < passes - 1:
                path.append(i)
        i = end
    return path


def _predictor_corrector(score_fn, x_init, sde, config, rng, corrector_steps: int,
                         condition=None, what: str | None = None, callback=None, path=None):
    """The one PC loop over the time grid t_0 = 1 > … > t_N = eps, visiting the indices in `path`
    (default 0 … N): a step down is a corrector + predictor step, a step back up (RePaint's
    resampling) a draw of the forward SDE's transition. `condition(x, t, final)`, when given, is
    applied after every corrector and predictor step and after a step back (inpainting replaces
    the known pixels there); final marks the last step. `callback({"x", "step", "total", "t",
    "final"})`, when given, is called after every move (progress)."""
    config.validate()
    n = config.steps
    times = _time_grid(sde, n)
    dt = float(sde.T - sde.eps) / n
    path = path or list(range(n + 1))
    x = x_init.clone()
    rec = FrameRecorder(config.record_every, config.record_particles)
    rec({"x": x, "step": 0, "t": float(times[0])})
    nfe = 0
    what = what or ("predictor–corrector sampler" if corrector_steps else "reverse-SDE sampler")
    hint = ("try a smaller snr or more steps" if corrector_steps
            else "try more steps, or check that the score model matches this SDE")
    for k in range(1, len(path)):
        i, j = path[k - 1], path[k]
        last = k == len(path) - 1
        if j < i:          # back up: x(t_j) | x(t_i), t_j > t_i
            x = sde.transition(x, float(times[i]), float(times[j]), rng)
            if condition is not None:
                x = condition(x, float(times[j]), False)
        else:
            t = float(times[i])
            for _ in range(corrector_steps):
                x = _langevin_corrector(score_fn, x, t, config.snr, sde.corrector_alpha(t, n), rng)
                if condition is not None:
                    x = condition(x, t, False)
                nfe += 1
            noise = None if last else torch.randn(x.shape, generator=rng, dtype=x.dtype, device=x.device)
            x = _em_step(sde, score_fn, x, t, dt, noise)
            nfe += 1
            if condition is not None:
                x = condition(x, float(times[j]), last)
        if k % 10 == 0 or last:
            _check(x, float(times[j]), what, hint, config.blowup_radius)
        info = {"x": x, "step": k, "total": len(path) - 1, "t": float(times[j]), "final": last}
        rec(info)
        if callback is not None:
            callback(info)
    return SDESampleResult(x=x, frames=rec.frames(), frame_times=rec.labels("t"), nfe=nfe)


def probability_flow_ode(score_fn: ScoreFn, x_init: torch.Tensor, sde: SDE,
                         config: SDESamplerConfig, rng: torch.Generator | None = None
                         ) -> SDESampleResult:
    """Deterministic sampling: the probability-flow ODE from t = 1 to eps with adaptive RK45."""
    config.validate()
    shape = x_init.shape
    dtype = x_init.dtype
    nfe = 0

    def rhs(t, y):
        nonlocal nfe
        x = torch.from_numpy(y).to(dtype).reshape(shape)
        s = score_fn(x, float(t))
        nfe += 1
        drift = sde.reverse_drift(x, float(t), s, probability_flow=True)
        out = drift.detach().double().reshape(-1).numpy()
        if not np.all(np.isfinite(out)):
            raise _NonFinite(float(t))   # RK45 would shrink its step forever on NaN
        return out

    t_eval = None
    if config.record_every:
        n_frames = max(2, config.steps // config.record_every + 1)
        t_eval = np.linspace(sde.T, sde.eps, n_frames)
    y0 = x_init.detach().double().reshape(-1).numpy()
    hint = "try a tighter tolerance, or check that the score model matches this SDE"
    try:
        sol = solve_ivp(rhs, (sde.T, sde.eps), y0, method="RK45", rtol=config.rtol,
                        atol=config.atol, t_eval=t_eval)
    except _NonFinite as err:
        raise SamplerDiverged(f"The probability-flow ODE diverged: the drift became NaN/inf at "
                              f"t = {err.t:.3g}; {hint}.", step=0, level=0) from None
    if not sol.success or not np.all(np.isfinite(sol.y)):
        raise SamplerDiverged(f"The probability-flow ODE solver failed ({sol.message.rstrip('.')}); "
                              f"{hint}.", step=0, level=0)
    x = torch.from_numpy(sol.y[:, -1].copy()).to(dtype).reshape(shape)
    _check(x, sde.eps, "probability-flow ODE", hint, config.blowup_radius)
    result = SDESampleResult(x=x, nfe=nfe)
    if t_eval is not None:
        keep = config.record_particles or shape[0]
        frames = torch.from_numpy(sol.y.T.copy()).to(dtype).reshape(len(sol.t), *shape)
        result.frames = frames[:, :keep]
        result.frame_times = [float(t) for t in sol.t]
    return result


def sample(score_fn: ScoreFn, x_init: torch.Tensor, sde: SDE, config: SDESamplerConfig,
           rng: torch.Generator | None = None) -> SDESampleResult:
    """Dispatch on config.sampler (sde | pc | ode)."""
    config.validate()
    fn = {"sde": reverse_sde, "pc": predictor_corrector, "ode": probability_flow_ode}[config.sampler]
    with torch.no_grad():
        return fn(score_fn, x_init, sde, config, rng)


# -- controllable generation: inpainting ---------------------------------------------------------

def pc_inpaint(score_fn: ScoreFn, known: torch.Tensor, mask: torch.Tensor, sde: SDE,
               config: SDESamplerConfig, rng: torch.Generator | None = None,
               callback=None, jump: int = 1, resample: int = 1) -> SDESampleResult:
    """Predictor–corrector inpainting (score_sde's controllable generation): the PC sampler above,
    with the known pixels (mask = 1) replaced after every corrector and predictor step by a fresh
    forward-SDE draw of the known data at the current time, x ← x·(1−m) + (m(t)·y + std(t)·z)·m,
    so the unknown pixels are sampled from p_t(x_unknown | x_known). At the end the known pixels
    equal y. `callback(info)` is called after every step (see _predictor_corrector). resample > 1
    adds RePaint's resampling (repaint_path: every `jump` steps, back up and down again), which lets
    the unknown pixels agree with the known ones far better than replacement alone."""
    config.validate()
    mask = mask.to(known.dtype)

    def impose(x, t, final=False):
        if final:
            return x * (1 - mask) + known * mask
        z = torch.randn(known.shape, generator=rng, dtype=known.dtype, device=known.device)
        mean, std = sde.marginal_prob(known, t)
        return x * (1 - mask) + (mean + std * z) * mask

    x = sde.prior_sampling(known.shape, generator=rng, dtype=known.dtype)
    with torch.no_grad():
        return _predictor_corrector(score_fn, impose(x, sde.T), sde, config, rng,
                                    config.corrector_steps, condition=impose,
                                    what="inpainting sampler", callback=callback,
                                    path=repaint_path(config.steps, jump, resample))
