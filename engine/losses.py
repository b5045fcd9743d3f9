"""Score-matching objectives (SEEDS §2, §4 and §5), one small function each, for data of any shape.

One convention for every loss here: a ½ in front, the squared norm SUMMED over all non-batch
dimensions (x.flatten(1).sum(1): the 2 coordinates of a point, the 784 pixels of a digit), and the
MEAN over the batch. So with per-example terms ℓ_n:
    loss = (1/N) Σ_n ℓ_n,   e.g. ℓ_n = ½ ||s_θ(x_n) − ∇log p(x_n)||²  (ESM).
Every function takes ``model(x, sigma_or_t)`` and returns the scalar loss; pass ``reduce=False`` for
the per-example terms (shape (N,)). Random draws come from ``generator`` (CPU) in a fixed order, and
may be given instead (``z``, ``levels``, ``t``, ``v``) to fix them.

* ESM     ½ E_p ||s_θ(x) − ∇log p(x)||²                      (needs the exact score: mixtures only)
* ISM     E_p [ tr ∇_x s_θ(x) + ½ ||s_θ(x)||² ]              (exact trace: one backward pass per dim)
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
* SDE     the continuous-time NCSN (score_sde): t ~ U(eps, 1), x(t) = m(t) x + std(t) z,
          weighting "default"     λ(t) = std(t)²:  ½ ||std(t) s_θ(x(t), t) + z||²
          weighting "likelihood"  λ(t) = g(t)²:    ½ g(t)² ||s_θ + z/std(t)||² = ½ (g/std)² ||std s_θ + z||²
          (The first version of Score Lab dropped this ½; every loss now has it. The minimiser, and
          with Adam the training, is the same; logged loss values are halved.)
"""

from __future__ import annotations

import torch

OBJECTIVES = ("esm", "ism", "ssm", "ssm-vr", "dsm", "ncsn")
PROJECTIONS = ("gaussian", "rademacher")
WEIGHTINGS = ("default", "likelihood")


def _sum_dims(t: torch.Tensor) -> torch.Tensor:
    """Σ over all non-batch dimensions: shape (N, ...) → (N,)."""
    return t.flatten(1).sum(1)


def _per_example(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(N,) → (N, 1, …, 1), broadcasting against a batch shaped like `like`."""
    return values.reshape(-1, *([1] * (like.dim() - 1)))


def _reduce(per_example: torch.Tensor, reduce: bool):
    return per_example.mean() if reduce else per_example


def _randn(x: torch.Tensor, generator) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)


def esm_loss(model, x: torch.Tensor, exact_score, sigma: float = 0.0, reduce: bool = True):
    """½ ||s_θ(x, σ) − exact_score(x, σ)||²; exact_score(x, σ) is e.g. GaussianMixture.score."""
    with torch.no_grad():
        target = exact_score(x, sigma)
    diff = model(x, sigma) - target
    return _reduce(0.5 * _sum_dims(diff**2), reduce)


def jacobian_trace(s: torch.Tensor, x: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    """tr ∇_x s(x) per example, exactly: one backward pass per (flattened) dimension, O(d) cost."""
    s_flat = s.flatten(1)
    trace = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    for i in range(s_flat.shape[1]):
        (g,) = torch.autograd.grad(s_flat[:, i].sum(), x, create_graph=create_graph, retain_graph=True)
        trace = trace + g.flatten(1)[:, i]
    return trace


def ism_loss(model, x: torch.Tensor, sigma: float = 0.0, reduce: bool = True, create_graph: bool = True):
    """Hyvärinen's implicit score matching with the exact Jacobian trace."""
    x = x.detach().requires_grad_(True)
    s = model(x, sigma)
    per = jacobian_trace(s, x, create_graph) + 0.5 * _sum_dims(s**2)
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
    ``v`` (shape (n_projections·N, ...)) may be given to fix the directions (tests).
    """
    n = x.shape[0]
    xr = x.detach().repeat(n_projections, *([1] * (x.dim() - 1))).requires_grad_(True)
    if v is None:
        v = projections(xr.shape, projection, generator, xr.dtype, xr.device)
    s = model(xr, sigma)
    (g,) = torch.autograd.grad((s * v).sum(), xr, create_graph=create_graph)  # g = vᵀ ∇_x s
    vjv = _sum_dims(g * v)
    if variance_reduced:
        second = 0.5 * _sum_dims(s**2)
    else:
        second = 0.5 * _sum_dims(s * v) ** 2
    per = (vjv + second).reshape(n_projections, n).mean(0)
    return _reduce(per, reduce)


def dsm_loss(model, x: torch.Tensor, sigma: float, generator: torch.Generator | None = None,
             z: torch.Tensor | None = None, reduce: bool = True):
    """Single-σ denoising score matching: ½ ||s_θ(x̃, σ) + (x̃ − x)/σ²||² = ½ ||s_θ(x̃, σ) + z/σ||²."""
    if z is None:
        z = _randn(x, generator)
    diff = model(x + sigma * z, sigma) + z / sigma
    return _reduce(0.5 * _sum_dims(diff**2), reduce)


def ncsn_loss(model, x: torch.Tensor, sigmas, generator: torch.Generator | None = None,
              levels: torch.Tensor | None = None, z: torch.Tensor | None = None,
              reduce: bool = True):
    """Multi-σ NCSN loss with λ(σ) = σ²: per example ½ ||σ_i s_θ(x + σ_i z, σ_i) + z||², level i
    uniform per example (drawn first, then z). reduce=False returns (per-example terms, levels)."""
    sig = torch.as_tensor(sigmas, dtype=x.dtype, device=x.device)
    if levels is None:
        levels = torch.randint(0, len(sig), (x.shape[0],), generator=generator).to(x.device)
    if z is None:
        z = _randn(x, generator)
    sigma = sig[levels]
    s_col = _per_example(sigma, x)
    per = 0.5 * _sum_dims((s_col * model(x + s_col * z, sigma) + z) ** 2)
    if reduce:
        return per.mean()
    return per, levels


def sde_loss(model, sde, x: torch.Tensor, generator: torch.Generator | None = None,
             weighting: str = "default", eps: float = 1e-5, t: torch.Tensor | None = None,
             z: torch.Tensor | None = None, reduce: bool = True):
    """The continuous-time objective of a forward SDE (engine.sde.sdes), model(x, t); t is drawn
    first, then z. See the module docstring for the two weightings."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"Unknown weighting {weighting!r}; choose default or likelihood.")
    if t is None:
        t = eps + (1 - eps) * torch.rand(x.shape[0], generator=generator, dtype=x.dtype)
    if z is None:
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    t, z = t.to(x.device), z.to(x.device)
    mean, std = sde.marginal_prob(x, t)
    per = 0.5 * _sum_dims((std * model(mean + std * z, t) + z) ** 2)
    if weighting == "likelihood":
        g = torch.as_tensor(sde.diffusion(t), dtype=x.dtype, device=x.device)
        per = per * (g / std.flatten()) ** 2
    return _reduce(per, reduce)


def per_level_means(per: torch.Tensor, levels: torch.Tensor, n_levels: int) -> list[float | None]:
    """Mean loss term per noise level (None where no example drew that level)."""
    sums = torch.zeros(n_levels, dtype=per.dtype).index_add_(0, levels.cpu(), per.detach().cpu())
    counts = torch.bincount(levels.cpu(), minlength=n_levels)
    return [float(s / c) if c > 0 else None for s, c in zip(sums, counts)]
