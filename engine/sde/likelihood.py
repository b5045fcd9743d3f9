"""Log-likelihoods through the probability-flow ODE (instantaneous change of variables).

With f̃(x, t) = f(x, t) − ½ g(t)² s(x, t), integrate the augmented ODE from t = eps to t = 1:
    dx/dt = f̃(x, t),   dΔ/dt = ∇·f̃(x, t),
then  log p_eps(x) = log p_T(x(1)) + Δ(1)  (p_T the prior). The divergence is either exact
(d backward passes; used in 2D) or Hutchinson's estimate εᵀ (∂f̃/∂x) ε with one Rademacher probe ε
drawn once per batch and kept fixed along the whole trajectory. The solver is scipy's adaptive
RK45 (solve_ivp) with rtol = atol = 1e-5.

Bits per dimension for 8-bit images (`bits_per_dim`): pixels k ∈ {0..255} are uniformly
dequantised, x = (k + u)/256 with u ~ U[0, 1)^D, and
    bpd = −log p(x) / (D ln 2) + log2(256) = −log p(x)/(D ln 2) + 8
for data in [0, 1] (the +8 is the Jacobian of the scaling from [0, 256) to [0, 1)). This is the
continuous density of dequantised data: an upper bound on the discrete model's bits/dim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.integrate import solve_ivp

from engine.sde.sdes import SDE


class LikelihoodError(RuntimeError):
    """The ODE solve failed (one sentence with a hint)."""


@dataclass
class LikelihoodResult:
    log_p: torch.Tensor          # (N,) log p(x) in nats (at t = eps)
    prior_logp: torch.Tensor     # (N,) log p_T(x(1))
    delta: torch.Tensor          # (N,) ∫ ∇·f̃ dt
    z: torch.Tensor              # (N, ...) x(1), the latent code
    nfe: int                     # score evaluations (each also costs the divergence)
    method: str                  # "exact" or "hutchinson"


def _divergence_exact(fn, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(f(x), ∇·f(x)) with one backward pass per dimension (for small d)."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        out = fn(x)
        flat = out.reshape(out.shape[0], -1)
        xs = x.reshape(x.shape[0], -1)
        d = flat.shape[1]
        div = torch.zeros(x.shape[0], dtype=x.dtype)
        for i in range(d):
            grad = torch.autograd.grad(flat[:, i].sum(), x, retain_graph=i < d - 1)[0]
            div = div + grad.reshape(x.shape[0], -1)[:, i]
        del xs
    return out.detach(), div.detach()


def _divergence_hutchinson(fn, x: torch.Tensor, probe: torch.Tensor):
    """(f(x), εᵀ (∂f/∂x) ε) with one vector–Jacobian product."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        out = fn(x)
        grad = torch.autograd.grad((out * probe).sum(), x)[0]
    return out.detach(), (grad * probe).reshape(x.shape[0], -1).sum(1).detach()


def ode_log_likelihood(score_fn, x: torch.Tensor, sde: SDE, exact_trace: bool | None = None,
                       rtol: float = 1e-5, atol: float = 1e-5, seed: int = 0,
                       dtype=torch.float64, terminal_logp=None,
                       eps: float | None = None, progress=None) -> LikelihoodResult:
    """log p(x) in nats per sample from the probability-flow ODE.

    score_fn(x, t) must be differentiable in x (autograd). exact_trace defaults to True for
    d ≤ 4 (2D) and False (Hutchinson, Rademacher probe fixed for the batch) otherwise.
    terminal_logp(z) replaces the prior's log-density at t = 1 (tests use the exact p_1 of a
    mixture to check the integration alone; the prior differs from p_1 by a little).
    eps (default sde.eps) is where the integration starts: log p_eps is the density of the data
    smoothed by the kernel at eps, so for bits/dim it must be well below one pixel level.
    progress(fraction), when given, is called after every accepted solver step with the share
    of the time range [eps, T] integrated so far."""
    shape = x.shape
    n = shape[0]
    d = x[0].numel()
    if exact_trace is None:
        exact_trace = d <= 4
    g = torch.Generator().manual_seed(seed)
    probe = (torch.randint(0, 2, shape, generator=g) * 2 - 1).to(dtype)
    nfe = 0
    t0 = sde.eps if eps is None else float(eps)

    def drift(xx, t):
        return sde.reverse_drift(xx, t, score_fn(xx, t), probability_flow=True)

    def rhs(t, y):
        nonlocal nfe
        xt = torch.from_numpy(y[: n * d]).to(dtype).reshape(shape)
        fn = lambda xx: drift(xx, float(t))  # noqa: E731
        if exact_trace:
            f, div = _divergence_exact(fn, xt)
        else:
            f, div = _divergence_hutchinson(fn, xt, probe)
        nfe += 1
        out = np.concatenate([f.double().reshape(-1).numpy(), div.double().numpy()])
        if not np.all(np.isfinite(out)):
            raise LikelihoodError(f"The likelihood ODE diverged: the drift became NaN/inf at "
                                  f"t = {float(t):.3g}; check the score model matches this SDE.")
        return out

    y0 = np.concatenate([x.detach().double().reshape(-1).numpy(), np.zeros(n)])

    def accepted(t, y):   # solve_ivp evaluates events after every accepted step: progress only
        progress((float(t) - t0) / (sde.T - t0))
        return 1.0        # never zero: no event, the solution is unchanged

    sol = solve_ivp(rhs, (t0, sde.T), y0, method="RK45", rtol=rtol, atol=atol,
                    events=[accepted] if progress is not None else None)
    if not sol.success or not np.all(np.isfinite(sol.y[:, -1])):
        raise LikelihoodError(f"The likelihood ODE failed ({sol.message.rstrip('.')}); try a "
                              f"looser tolerance or check the score model matches this SDE.")
    end = torch.from_numpy(sol.y[:, -1].copy())
    z = end[: n * d].reshape(shape).to(dtype)
    delta = end[n * d:].to(dtype)
    prior = sde.prior_logp(z) if terminal_logp is None else terminal_logp(z)
    return LikelihoodResult(log_p=prior + delta, prior_logp=prior, delta=delta, z=z, nfe=nfe,
                            method="exact" if exact_trace else "hutchinson")


def dequantize(images_uint8: torch.Tensor, generator: torch.Generator | None = None,
               dtype=torch.float32) -> torch.Tensor:
    """Uniform dequantisation of 8-bit pixels to [0, 1): x = (k + u)/256, u ~ U[0, 1)."""
    k = images_uint8.to(dtype)
    u = torch.rand(k.shape, generator=generator, dtype=dtype)
    return (k + u) / 256.0


def bits_per_dim(log_p: torch.Tensor, dim: int) -> torch.Tensor:
    """bpd of uniformly dequantised 8-bit data scaled to [0, 1): −log p/(D ln 2) + 8."""
    return -log_p / (dim * math.log(2)) + 8.0
