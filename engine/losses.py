"""Score-matching objectives (SEEDS §2 and §4), one small function each.

Convention for every loss here (the ncsn code's): a ½ in front, the squared norm SUMMED over the
data dimensions, and the MEAN over the batch.  So with per-example terms ℓ_n:
    loss = (1/N) Σ_n ℓ_n,   e.g. ℓ_n = ½ ||s_θ(x_n) − ∇log p(x_n)||²  (ESM).
Every function takes ``model(x, sigma)`` (engine.models.mlp) and returns the scalar loss; pass
``reduce=False`` for the per-example terms (shape (N,)).

* ESM     ½ E_p ||s_θ(x) − ∇log p(x)||²                      (needs the exact score: mixtures only)
* ISM     E_p [ tr ∇_x s_θ(x) + ½ ||s_θ(x)||² ]              (exact trace: d backward passes)
* SSM     E_v E_p [ vᵀ ∇_x s_θ(x) v + ½ (vᵀ s_θ(x))² ]
* SSM-VR  E_v E_p [ vᵀ ∇_x s_θ(x) v + ½ ||s_θ(x)||² ]
          v ~ N(0, I) or Rademacher; both have E[v vᵀ] = I, so E_v of either SSM form equals ISM.
          (The sliced_score_matching code draws plain-SSM v on the unit sphere, which scales the
          objective by 1/d with the same minimiser; Score Lab uses unnormalised v so that SSM and
          ISM are numerically comparable.)
ISM = ESM − ½ E_p ||∇log p||² (a constant independent of θ, by integration by parts).
* DSM     ½ E ||s_θ(x̃, σ) + (x̃ − x)/σ²||²,  x̃ = x + σ z   (minimiser: ∇log p_σ, the noisy score)
* NCSN    (1/L) Σ_i λ(σ_i) · DSM(σ_i) with λ(σ) = σ², i.e. per example ½ ||σ s_θ(x + σz, σ) + z||²
          with one level drawn uniformly per example (an unbiased estimate of the 1/L sum).
"""

from __future__ import annotations

import torch

OBJECTIVES = ("esm", "ism", "ssm", "ssm-vr", "dsm", "ncsn")
PROJECTIONS = ("gaussian", "rademacher")


def _reduce(per_example: torch.Tensor, reduce: bool):
    return per_example.mean() if reduce else per_example


def esm_loss(model, x: torch.Tensor, exact_score, sigma: float = 0.0, reduce: bool = True):
    """½ ||s_θ(x, σ) − exact_score(x, σ)||²; exact_score(x, σ) is e.g. GaussianMixture.score."""
    with torch.no_grad():
        target = exact_score(x, sigma)
    diff = model(x, sigma) - target
    return _reduce(0.5 * (diff**2).sum(-1), reduce)


def jacobian_trace(s: torch.Tensor, x: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    """tr ∇_x s(x) per example, exactly: one backward pass per dimension (O(d) cost)."""
    trace = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    for i in range(x.shape[1]):
        (g,) = torch.autograd.grad(s[:, i].sum(), x, create_graph=create_graph, retain_graph=True)
        trace = trace + g[:, i]
    return trace


def ism_loss(model, x: torch.Tensor, sigma: float = 0.0, reduce: bool = True, create_graph: bool = True):
    """Hyvärinen's implicit score matching with the exact Jacobian trace."""
    x = x.detach().requires_grad_(True)
    s = model(x, sigma)
    per = jacobian_trace(s, x, create_graph) + 0.5 * (s**2).sum(-1)
    return _reduce(per, reduce)


def projections(shape, kind: str = "gaussian", generator: torch.Generator | None = None,
                dtype=torch.float32, device=None) -> torch.Tensor:
    """Random directions v with E[v vᵀ] = I: N(0, I) or Rademacher (±1)."""
    if kind not in PROJECTIONS:
        raise ValueError(f"Unknown projection {kind!r}; choose gaussian or rademacher.")
    v = torch.randn(shape, generator=generator, dtype=dtype)
    if kind == "rademacher":
        v = torch.sign(v)
        v[v == 0] = 1.0
    return v.to(device) if device is not None else v


def ssm_loss(model, x: torch.Tensor, sigma: float = 0.0, n_projections: int = 1,
             projection: str = "gaussian", variance_reduced: bool = False,
             generator: torch.Generator | None = None, v: torch.Tensor | None = None,
             reduce: bool = True, create_graph: bool = True):
    """Sliced score matching: vᵀ∇(vᵀs)… via one Hessian-vector product per projection.

    Several projections per point = the batch repeated (per-example terms are averaged over them).
    ``v`` (shape (n_projections·N, d)) may be given to fix the directions (tests).
    """
    n = x.shape[0]
    xr = x.detach().repeat(n_projections, 1).requires_grad_(True)
    if v is None:
        v = projections(xr.shape, projection, generator, xr.dtype, xr.device)
    s = model(xr, sigma)
    sv = (s * v).sum()
    (g,) = torch.autograd.grad(sv, xr, create_graph=create_graph)   # g = vᵀ ∇_x s  (per example)
    vjv = (g * v).sum(-1)
    if variance_reduced:
        second = 0.5 * (s**2).sum(-1)
    else:
        second = 0.5 * ((s * v).sum(-1)) ** 2
    per = (vjv + second).reshape(n_projections, n).mean(0)
    return _reduce(per, reduce)


def dsm_loss(model, x: torch.Tensor, sigma: float, generator: torch.Generator | None = None,
             z: torch.Tensor | None = None, reduce: bool = True):
    """Single-σ denoising score matching: ½ ||s_θ(x̃, σ) + (x̃ − x)/σ²||² = ½ ||s_θ(x̃, σ) + z/σ||²."""
    if z is None:
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    x_noisy = x + sigma * z
    target = -z / sigma
    diff = model(x_noisy, sigma) - target
    return _reduce(0.5 * (diff**2).sum(-1), reduce)


def ncsn_loss(model, x: torch.Tensor, sigmas, generator: torch.Generator | None = None,
              levels: torch.Tensor | None = None, z: torch.Tensor | None = None,
              reduce: bool = True):
    """Multi-σ NCSN loss with λ(σ) = σ²: per example ½ ||σ_i s_θ(x + σ_i z, σ_i) + z||², level i
    uniform per example. reduce=False returns (per-example terms, level indices)."""
    sig = torch.as_tensor(sigmas, dtype=x.dtype, device=x.device)
    if levels is None:
        levels = torch.randint(0, len(sig), (x.shape[0],), generator=generator).to(x.device)
    if z is None:
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    s_col = sig[levels].unsqueeze(-1)
    x_noisy = x + s_col * z
    eps = s_col * model(x_noisy, s_col.squeeze(-1))
    per = 0.5 * ((eps + z) ** 2).sum(-1)
    if reduce:
        return per.mean()
    return per, levels


def per_level_means(per: torch.Tensor, levels: torch.Tensor, n_levels: int) -> list[float | None]:
    """Mean NCSN term per noise level (None where no example drew that level)."""
    sums = torch.zeros(n_levels, dtype=per.dtype).index_add_(0, levels.cpu(), per.detach().cpu())
    counts = torch.bincount(levels.cpu(), minlength=n_levels)
    return [float(s / c) if c > 0 else None for s, c in zip(sums, counts)]
