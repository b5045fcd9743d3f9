"""The ELBO of the score-based VAE (SEEDS.md §6), per example, in nats:

    ELBO(x) = E_q[log p_θ(x|z)] + E_q[log p(z)] + H(q_φ(·|x)),   p(z) = N(0, I).

Entropy, and the sign convention. With z = g_φ(x, ε), H = −E_ε[log q_φ(g_φ(x, ε)|x)], so

    ∇_φ H = −E_ε[∇_φ log q_φ(z|x)|_z fixed] − E_ε[∇_z log q_φ(z|x)ᵀ ∇_φ g_φ(x, ε)]
          = −E_ε[∇_z log q_φ(z|x)ᵀ ∇_φ g_φ(x, ε)]          (the first term is ∫∇_φ q = 0).

SEEDS.md writes this expectation without the minus sign: that is the gradient of −H, the term of
the loss −ELBO. Here the ELBO's entropy term for the implicit encoder is the surrogate

    entropy_surrogate(s, z) = −stopgrad(s_ψ(z, x))ᵀ z,   ∇_φ(surrogate) = ∇_φ H  (s_ψ ≈ ∇_z log q),

and the loss we minimise, −ELBO, carries +stopgrad(s)ᵀz (as the sliced_score_matching code does).
The surrogate's value is not H: only its gradient is; the reported entropy of an implicit encoder is
the k-nearest-neighbour estimate `knn_entropy`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from engine.losses import ssm_loss

LOG_2PI = math.log(2 * math.pi)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p_θ(x|z) = Σ_i x_i log σ(l_i) + (1 − x_i) log(1 − σ(l_i)), per example."""
    return -F.binary_cross_entropy_with_logits(logits, x.reshape(logits.shape), reduction="none").sum(-1)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) = −½‖z‖² − (d/2) log 2π, per example."""
    return -0.5 * (z**2).sum(-1) - 0.5 * z.shape[-1] * LOG_2PI


def gaussian_entropy(log_std: torch.Tensor) -> torch.Tensor:
    """H(N(μ, diag σ²)) = Σ_j log σ_j + (d/2)(1 + log 2π), per example."""
    return log_std.sum(-1) + 0.5 * log_std.shape[-1] * (1 + LOG_2PI)


def gaussian_kl_to_prior(mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ (σ² + μ² − 1) − Σ log σ = −(E_q log p(z) + H), per example."""
    return 0.5 * (torch.exp(2 * log_std) + mean**2 - 1).sum(-1) - log_std.sum(-1)


def entropy_surrogate(score: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """−stopgrad(s)ᵀz per example: its φ-gradient (through z = g_φ) is ∇_φ H when s = ∇_z log q."""
    return -(score.detach() * z).sum(-1)


def knn_entropy(samples: torch.Tensor, k: int = 3) -> torch.Tensor:
    """Kozachenko–Leonenko estimate of H from samples (..., M, d):
    H ≈ ψ(M) − ψ(k) + log V_d + (d/M) Σ_i log ρ_k(i), ρ_k the distance to the k-th neighbour and
    V_d = π^{d/2}/Γ(d/2 + 1) the unit ball's volume."""
    m, d = samples.shape[-2], samples.shape[-1]
    dist = torch.cdist(samples, samples)
    dist = dist + torch.diag_embed(torch.full(dist.shape[:-1], float("inf"), dtype=dist.dtype))
    rho = dist.kthvalue(k, dim=-1).values.clamp_min(1e-12)
    log_vd = 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1)
    digamma = torch.special.digamma(torch.tensor([float(m), float(k)], dtype=torch.float64))
    return float(digamma[0] - digamma[1]) + log_vd + d * rho.log().mean(-1)


def elbo_terms(model, x: torch.Tensor, generator=None) -> dict[str, torch.Tensor]:
    """Per-example terms on one encoder sample each: "reconstruction" log p(x|z), "prior" log p(z),
    "entropy" (Gaussian: analytic H; implicit: the surrogate −stopgrad(s)ᵀz, see the module
    docstring), and "loss" = −(their sum), whose gradient is −∇ELBO."""
    if model.kind == "gaussian":
        mean, log_std = model.encoder(x)
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        z = mean + log_std.exp() * eps
        entropy = gaussian_entropy(log_std)
    else:
        z = model.encoder.sample(x, generator=generator)
        entropy = entropy_surrogate(model.learned_score(z, x), z)
    recon = bernoulli_log_likelihood(model.decoder(z), x)
    prior = standard_normal_log_prob(z)
    return {"reconstruction": recon, "prior": prior, "entropy": entropy,
            "loss": -(recon + prior + entropy)}


def score_matching_terms(model, x: torch.Tensor, generator=None, variance_reduced: bool = True,
                         n_projections: int = 1) -> torch.Tensor:
    """Per-example sliced score matching loss of s_ψ(·, x) on fresh encoder samples z ~ q_φ(z|x)
    (z detached: this term trains the score net only). engine.losses.ssm_loss, with x bound."""
    with torch.no_grad():
        z = model.encoder.sample(x, generator=generator)
    return ssm_loss(lambda zz, _sigma: model.learned_score(zz, x), z, n_projections=n_projections,
                    variance_reduced=variance_reduced, generator=generator, reduce=False)
