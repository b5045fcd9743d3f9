"""The exact-score Langevin step of a 2D Gaussian mixture as one fused, compiled loop (numba).

For particles x (2, N) and noise z (T, N, 2) already drawn (by torch, so the random stream is the
torch path's), `langevin_steps` runs T steps of

    x ← x + (α/2)·s(x) + √α·z_t,   s(x) = Σ_k r_k(x) · (−(x − μ_k)/v_k),
    r_k = softmax_k( log w_k − ½ log|V_k| − ½ Σ_j (x_j − μ_kj)²/v_kj ),

with v_k = s_k² + σ² (the constants of `GaussianMixture.score_constants`), in float32 like the
torch path. Particles are independent, so blocks of BLOCK particles run all T steps while they sit
in L1 cache, and every inner loop runs over particles so that it vectorises; exp is `_exp_neg`,
2^⌊y⌋ from a table times a degree-6 polynomial of 2^(y − ⌊y⌋), relative error < 2e-6 on [−40, 0]
(the softmax only needs exp of a non-positive number), because libm's exp does not vectorise.
The particles agree with the torch path to float32 rounding (the golden cases' 1e-4 holds).

`available` is False when numba is not installed; engine.samplers.langevin then runs the torch
path, the same maths.
"""

from __future__ import annotations

import math

import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - the torch path runs instead
    numba = None

available = numba is not None

BLOCK = 256                      # particles per block: x, logits and sums of a block stay in L1
_F = np.float32
_LOG2E, _LN2, _SQRT2 = _F(1.4426950408889634), _F(0.6931471805599453), _F(1.4142135623730951)
_FLOOR = _F(-60.0)               # exp(−41.6) ≈ 1e-18: below it a softmax term cannot matter
_POW2_NEG = np.array([2.0 ** -n for n in range(61)], dtype=np.float32)   # 2^−n, n = 0 … 60
_HALF, _ONE = _F(0.5), _F(1.0)
_C2, _C3, _C4, _C5, _C6 = (_F(1 / math.factorial(n)) for n in range(2, 7))


def _exp_neg(x):
    """exp(x) for x ≤ 0: y = x·log₂e, exp(x) = 2^⌊y⌋ · √2 · e^g with g = (y − ⌊y⌋ − ½)·ln 2,
    |g| ≤ 0.35, e^g by its Taylor polynomial of degree 6."""
    y = max(x * _LOG2E, _FLOOR)
    n = math.floor(y)
    g = (y - n - _HALF) * _LN2
    p = _ONE + g * (_ONE + g * (_C2 + g * (_C3 + g * (_C4 + g * (_C5 + g * _C6)))))
    return _POW2_NEG[-np.int64(n)] * (_SQRT2 * p)


def _langevin_steps(x, noise, t0, t1, means, neg_inv_var, const, half, root):
    """x (2, N) float32 in place: steps t0 … t1 − 1 of the level whose noise is `noise` (T, N, 2)."""
    n = x.shape[1]
    k = means.shape[0]
    top = np.empty(BLOCK, np.float32)
    total = np.empty(BLOCK, np.float32)
    sa = np.empty(BLOCK, np.float32)
    sb = np.empty(BLOCK, np.float32)
    logits = np.empty((k, BLOCK), np.float32)
    for start in range(0, n, BLOCK):
        m = min(BLOCK, n - start)
        xa = x[0, start:start + m]
        xb = x[1, start:start + m]
        for t in range(t0, t1):
            for i in range(m):
                top[i] = _F(-3e38)
                total[i] = _F(0.0)
                sa[i] = _F(0.0)
                sb[i] = _F(0.0)
            for c in range(k):
                m0, m1, v0, v1, cc = means[c, 0], means[c, 1], neg_inv_var[c, 0], neg_inv_var[c, 1], const[c]
                for i in range(m):
                    da = xa[i] - m0
                    db = xb[i] - m1
                    logit = cc + _HALF * (da * da * v0 + db * db * v1)
                    logits[c, i] = logit
                    top[i] = max(top[i], logit)
            for c in range(k):
                m0, m1, v0, v1 = means[c, 0], means[c, 1], neg_inv_var[c, 0], neg_inv_var[c, 1]
                for i in range(m):
                    e = _exp_neg(logits[c, i] - top[i])
                    total[i] += e
                    sa[i] += e * ((xa[i] - m0) * v0)
                    sb[i] += e * ((xb[i] - m1) * v1)
            for i in range(m):
                xa[i] = (xa[i] + half * (sa[i] / total[i])) + root * noise[t, start + i, 0]
                xb[i] = (xb[i] + half * (sb[i] / total[i])) + root * noise[t, start + i, 1]


def _out_of_bounds(x, radius):
    """True when any coordinate is NaN/inf or beyond ±radius."""
    for v in x.ravel():
        if not abs(v) <= radius:
            return True
    return False


if available:
    _exp_neg = numba.njit(cache=True, inline="always")(_exp_neg)
    _langevin_steps = numba.njit(cache=True)(_langevin_steps)
    _out_of_bounds = numba.njit(cache=True)(_out_of_bounds)


def langevin_steps(x: np.ndarray, noise: np.ndarray, t0: int, t1: int, means: np.ndarray,
                   neg_inv_var: np.ndarray, const: np.ndarray, alpha: float) -> None:
    """Advance x (2, N) float32 in place by steps t0 … t1 − 1 with noise (T, N, 2) float32 and one
    level's constants μ (K, 2), −1/v (K, 2), log w − ½ log|V| (K,), step size α."""
    _langevin_steps(x, noise, t0, t1, means, neg_inv_var, const, _F(alpha / 2), _F(math.sqrt(alpha)))


def out_of_bounds(x: np.ndarray, radius: float) -> bool:
    return bool(_out_of_bounds(x, _F(radius)))
