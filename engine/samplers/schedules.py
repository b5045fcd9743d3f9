"""Noise-level schedules as small functions, separate from the samplers: geometric σ sequences,
the annealed step sizes α_i = ε σ_i²/σ_L², and the NCSNv2 rules for choosing σ_1, γ, L and ε.

Convention: Score Lab writes Langevin steps in the paper/seeds form  x ← x + (α/2)·s + √α·z.
The ncsn/ncsnv2 and score_sde code writes x ← x + ε·s + √(2ε)·z, i.e. α = 2ε. Code-form constants
are converted at the edge with `code_to_paper_step` (the NCSNv2 step rule below is stated in the
code form, as published, and `ncsnv2_step_size` returns it in the paper form).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr  # standard normal CDF Φ
from scipy.optimize import brentq, minimize_scalar


class ScheduleError(ValueError):
    """An impossible σ schedule (one clear sentence)."""


def geometric_sigmas(sigma_max: float, sigma_min: float, levels: int) -> tuple[float, ...]:
    """σ_1 = σ_max > … > σ_L = σ_min with σ_i/σ_{i+1} constant."""
    if not (math.isfinite(sigma_max) and math.isfinite(sigma_min)):
        raise ScheduleError("σ_max and σ_min must be finite numbers.")
    if sigma_min <= 0:
        raise ScheduleError("σ_min must be positive.")
    if levels < 1:
        raise ScheduleError("The schedule needs at least one noise level.")
    if levels == 1:
        return (float(sigma_min),)
    if sigma_max <= sigma_min:
        raise ScheduleError(
            f"σ_max ({sigma_max:g}) must be larger than σ_min ({sigma_min:g}) for annealing."
        )
    return tuple(float(s) for s in np.geomspace(sigma_max, sigma_min, levels))


def annealed_step_sizes(eps: float, sigmas) -> tuple[float, ...]:
    """α_i = ε·σ_i²/σ_L² for each level (paper form): the step shrinks with the noise level."""
    sigma_last = sigmas[-1]
    return tuple(eps * s**2 / sigma_last**2 for s in sigmas)


# -- NCSNv2 technique 1: σ_1 from the data -----------------------------------------------------

def largest_pairwise_distance(x: np.ndarray, max_points: int = 4000, seed: int = 0) -> float:
    """max_{i,j} ||x_i − x_j|| over (a random subset of at most `max_points` of) the rows of x.

    On a subset the value is a lower bound of the full maximum; for MNIST it settles within a few
    percent at a few thousand images.
    """
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if len(x) > max_points:
        x = x[np.random.default_rng(seed).choice(len(x), max_points, replace=False)]
    sq = (x * x).sum(1)
    best = 0.0
    for start in range(0, len(x), 1024):  # chunked: the full Gram matrix may not fit
        block = x[start:start + 1024]
        d2 = sq[start:start + 1024, None] + sq[None, :] - 2 * block @ x.T
        best = max(best, float(d2.max()))
    return math.sqrt(max(best, 0.0))


# -- NCSNv2 technique 2: the common ratio from the overlap rule ------------------------------------

def overlap(gamma: float, dim: int) -> float:
    """Φ(√(2D)(γ−1) + 3γ) − Φ(√(2D)(γ−1) − 3γ): how much consecutive levels' shells overlap."""
    a = math.sqrt(2 * dim) * (gamma - 1)
    return float(ndtr(a + 3 * gamma) - ndtr(a - 3 * gamma))


def ratio_from_overlap(dim: int, target: float = 0.5) -> float:
    """γ = σ_{i−1}/σ_i > 1 with overlap(γ, D) = target (NCSNv2 uses 0.5)."""
    if dim < 1:
        raise ScheduleError("The data dimension must be at least 1.")
    f = lambda g: overlap(g, dim) - target  # noqa: E731
    # In high dimension the overlap falls from ~1 at γ = 1 towards 0; in very low dimension it
    # never drops to the target (the rule is meant for images), so say so instead of looping.
    grid = np.geomspace(1.0 + 1e-9, 1e3, 4000)
    below = [g for g in grid if f(g) < 0]
    if f(1.0 + 1e-12) <= 0 or not below:
        raise ScheduleError(f"No ratio γ gives overlap {target} in {dim} dimensions; the NCSNv2 "
                            f"overlap rule applies to high-dimensional data — choose L by hand.")
    hi = below[0]
    return float(brentq(f, 1.0 + 1e-12, hi, xtol=1e-12))


def levels_for(sigma_max: float, sigma_min: float, gamma: float) -> int:
    """Number of geometric levels from σ_max to σ_min with ratio about γ."""
    return int(math.ceil(math.log(sigma_max / sigma_min) / math.log(gamma))) + 1


# -- NCSNv2 technique 4: the step size for T steps per level ----------------------------------

def step_rule_objective(eps: float, sigma_min: float, gamma: float, steps: int) -> float:
    """(1 − ε/σ_L²)^{2T}(γ² − 2ε/(σ_L² − σ_L²(1 − ε/σ_L²)²)) + 2ε/(σ_L² − σ_L²(1 − ε/σ_L²)²),
    ε in the code form. NCSNv2 picks ε so that this is as close to 1 as possible."""
    s2 = sigma_min**2
    r = 1 - eps / s2
    c = 2 * eps / (s2 - s2 * r**2)
    return r ** (2 * steps) * (gamma**2 - c) + c


def _code_form_step_size(sigma_min: float, gamma: float, steps: int) -> float:
    """ε (code form) minimising |objective − 1| over 0 < ε < σ_L² (a 1-D search in log ε)."""
    s2 = sigma_min**2
    obj = lambda log_eps: abs(step_rule_objective(math.exp(log_eps), sigma_min, gamma, steps) - 1)  # noqa: E731
    grid = np.linspace(math.log(s2 * 1e-9), math.log(s2 * 0.999), 2000)
    values = [obj(g) for g in grid]
    i = int(np.argmin(values))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    res = minimize_scalar(obj, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
    return float(math.exp(res.x))


def ncsnv2_step_size(sigma_min: float, gamma: float, steps: int) -> float:
    """NCSNv2's step size for T = `steps` per level, in the paper form: the ε of α_i = ε σ_i²/σ_L².
    The rule picks the code-form ε closest to making `step_rule_objective` 1; returned as α = 2ε."""
    return code_to_paper_step(_code_form_step_size(sigma_min, gamma, steps))


def code_to_paper_step(eps_code):
    """ncsn code's ε (x + ε s + √(2ε) z) → the seeds' α (x + α/2 s + √α z): α = 2ε."""
    return 2.0 * eps_code


def paper_to_code_step(alpha):
    """The seeds' α → the ncsn code's ε = α/2 (for records that keep the published form)."""
    return alpha / 2.0


def ncsnv2_schedule(x: np.ndarray, sigma_min: float, steps_per_level: int,
                    max_points: int = 4000, seed: int = 0) -> dict:
    """All NCSNv2 choices computed from data x (N, ...): σ_1, γ, L, σ list and ε (both forms)."""
    x = np.asarray(x)
    dim = int(np.prod(x.shape[1:]))
    sigma_max = largest_pairwise_distance(x, max_points=max_points, seed=seed)
    gamma = ratio_from_overlap(dim)
    levels = levels_for(sigma_max, sigma_min, gamma)
    step_size = ncsnv2_step_size(sigma_min, gamma, steps_per_level)
    return {
        "dim": dim,
        "sigma_max": sigma_max,
        "sigma_min": sigma_min,
        "gamma": gamma,
        "levels": levels,
        "sigmas": list(geometric_sigmas(sigma_max, sigma_min, levels)),
        "steps_per_level": steps_per_level,
        "step_size_code": paper_to_code_step(step_size),
        "step_size": step_size,
    }


def karras_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> tuple[float, ...]:
    """The n-point σ grid of Karras et al. (2022, eq. 5) followed by σ = 0:
    σ_i = (σ_max^{1/ρ} + i/(n−1) · (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ, i = 0 … n−1 (denser at small σ)."""
    if n < 1:
        raise ScheduleError("The ODE sampler needs at least one step.")
    ramp = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
    hi, lo = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return tuple(float(s) for s in (hi + ramp * (lo - hi)) ** rho) + (0.0,)
