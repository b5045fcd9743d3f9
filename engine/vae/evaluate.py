"""What a trained VAE is measured and shown by, one estimator for both encoders (arrays out).

The log-likelihood bound (nats, per test digit): fit a Gaussian r(z) = N(m, C) to M encoder samples
of the digit (full covariance, slightly widened), draw z_1..z_K ~ r, and

    L_K(x) = log (1/K) Σ_k p_θ(x|z_k) p(z_k) / r(z_k)  ≤  log p_θ(x)   in expectation (Jensen),

for any proposal r, so it is a valid lower bound for an implicit encoder too; it increases with K
towards log p(x). Reported as the mean over digits with its standard error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from engine.vae.objective import (bernoulli_log_likelihood, gaussian_entropy, knn_entropy,
                                  standard_normal_log_prob)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def posterior_samples(model, x: torch.Tensor, n: int, generator=None) -> torch.Tensor:
    """(B, n, d) samples z ~ q(z|x) for each of the B digits."""
    reps = x.reshape(x.shape[0], -1).repeat(n, 1)
    z = model.encoder.sample(reps, generator=generator)
    return z.reshape(n, x.shape[0], -1).transpose(0, 1)


@torch.no_grad()
def importance_bound(model, x: torch.Tensor, k: int = 1000, fit_samples: int = 256,
                     widen: float = 1.2, seed: int = 0, chunk: int = 25, progress=None) -> torch.Tensor:
    """L_K(x) per digit (see the module docstring); (B,) nats. progress(digits_done, digits)
    after every chunk."""
    g = _gen(seed)
    out = []
    for xs in x.split(chunk):
        z_fit = posterior_samples(model, xs, fit_samples, g).double()
        mean = z_fit.mean(1)
        centred = z_fit - mean[:, None]
        cov = centred.transpose(1, 2) @ centred / (fit_samples - 1)
        cov = widen**2 * cov + 1e-6 * torch.eye(cov.shape[-1], dtype=cov.dtype)
        chol = torch.linalg.cholesky(cov)
        eps = torch.randn((xs.shape[0], k, mean.shape[-1]), generator=g, dtype=torch.float64)
        z = mean[:, None] + eps @ chol.transpose(1, 2)
        log_r = (-0.5 * (eps**2).sum(-1) - 0.5 * mean.shape[-1] * math.log(2 * math.pi)
                 - torch.diagonal(chol, dim1=-2, dim2=-1).log().sum(-1)[:, None])
        zf = z.float().reshape(-1, mean.shape[-1])
        xr = xs.reshape(xs.shape[0], 1, -1).expand(-1, k, -1).reshape(-1, xs[0].numel())
        log_joint = (bernoulli_log_likelihood(model.decoder(zf), xr)
                     + standard_normal_log_prob(zf)).double().reshape(xs.shape[0], k)
        out.append(torch.logsumexp(log_joint - log_r, dim=1) - math.log(k))
        if progress is not None:
            progress(sum(len(o) for o in out), len(x))
    return torch.cat(out)


@torch.no_grad()
def elbo_summary(model, x: torch.Tensor, seed: int = 0, entropy_samples: int = 64,
                 entropy_digits: int = 32) -> dict:
    """Mean ELBO terms over the digits (nats): reconstruction E log p(x|z), prior E log p(z),
    entropy (analytic for the Gaussian encoder; the k-NN estimate from `entropy_samples` encoder
    samples of the first `entropy_digits` digits for the implicit one) and their sum "elbo"."""
    g = _gen(seed)
    z = model.encoder.sample(x, generator=g)
    recon = float(bernoulli_log_likelihood(model.decoder(z), x).mean())
    prior = float(standard_normal_log_prob(z).mean())
    out = {"reconstruction": recon, "prior": prior}
    if model.kind == "gaussian":
        out["entropy"] = float(gaussian_entropy(model.encoder(x)[1]).mean())
    else:
        samples = posterior_samples(model, x[:entropy_digits], entropy_samples, g)
        out["entropy"] = float(knn_entropy(samples).mean())
        out["score_stein"] = stein_ratio(model, x[:entropy_digits], samples)
    out["elbo"] = recon + prior + out["entropy"]
    return out


@torch.no_grad()
def stein_ratio(model, x: torch.Tensor, samples: torch.Tensor) -> float:
    """E_q[−s(z, x)ᵀ(z − E_q z)] / d, averaged over the digits: 1 for the true score ∇_z log q
    (integration by parts: E_q[−∇log qᵀ(z − c)] = tr I = d for any constant c), whatever q is; near 0
    when the score net misses the posterior (then the entropy gradient it gives is ~0 too).
    samples: (B, n, d) encoder samples of the B digits x."""
    b, n, d = samples.shape
    z = samples.transpose(0, 1).reshape(-1, d)
    s = model.posterior_score(z, x).reshape(n, b, d).transpose(0, 1)
    return float(-(s * (samples - samples.mean(1, keepdim=True))).sum(-1).mean() / d)


@dataclass(frozen=True)
class BoundResult:
    bound: float               # mean L_K over the digits, nats
    standard_error: float      # of that mean
    k: int
    digits: int
    terms: dict                # elbo_summary on the same digits

    def to_dict(self) -> dict:
        return {"bound": self.bound, "standard_error": self.standard_error, "k": self.k,
                "digits": self.digits, "elbo_terms": dict(self.terms)}


def evaluate_bound(model, x: torch.Tensor, k: int = 1000, seed: int = 0, progress=None) -> BoundResult:
    if k < 1:
        raise ValueError("The number of importance samples K must be at least 1.")
    per = importance_bound(model, x, k=k, seed=seed, progress=progress)
    se = float(per.std() / math.sqrt(len(per))) if len(per) > 1 else float("nan")
    return BoundResult(float(per.mean()), se, k, len(per), elbo_summary(model, x, seed))


# -- what the page shows -------------------------------------------------------------------------

@torch.no_grad()
def reconstructions(model, x: torch.Tensor, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(digits, Bernoulli means of p(x|z) for one z ~ q(z|x) each), both (B, 28, 28) in [0, 1]."""
    z = model.encoder.sample(x, generator=_gen(seed))
    probs = torch.sigmoid(model.decoder(z))
    return x.reshape(-1, 28, 28).numpy(), probs.reshape(-1, 28, 28).numpy()


@torch.no_grad()
def prior_samples(model, n: int, seed: int = 0) -> np.ndarray:
    """Bernoulli means of p(x|z), z ~ N(0, I): (n, 28, 28) in [0, 1]."""
    z = torch.randn((n, model.latent), generator=_gen(seed))
    return torch.sigmoid(model.decoder(z)).reshape(-1, 28, 28).numpy()


@dataclass(frozen=True)
class LatentMap:
    samples: np.ndarray        # (n, 2) encoder samples of one digit
    grid_x: np.ndarray         # (G,)
    grid_y: np.ndarray         # (G,)
    scores: np.ndarray         # (G·G, 2) ∇_z log q(z|x) on the grid (learned or exact)
    learned: bool              # the score net (implicit) or the Gaussian's exact score


@torch.no_grad()
def latent_map(model, x: torch.Tensor, n: int = 500, grid: int = 15, seed: int = 0) -> LatentMap:
    """Posterior samples of one digit x (784,) and the posterior score over their range (latent 2)."""
    if model.latent != 2:
        raise ValueError("The latent map needs a model with a 2-dimensional latent space.")
    x1 = x.reshape(1, -1)
    z = posterior_samples(model, x1, n, _gen(seed))[0]
    lo, hi = z.min(0).values, z.max(0).values
    pad = 0.15 * (hi - lo) + 1e-3
    gx = torch.linspace(float(lo[0] - pad[0]), float(hi[0] + pad[0]), grid)
    gy = torch.linspace(float(lo[1] - pad[1]), float(hi[1] + pad[1]), grid)
    pts = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), -1).reshape(-1, 2)
    scores = model.posterior_score(pts, x1)
    return LatentMap(z.numpy(), gx.numpy(), gy.numpy(), scores.numpy(), model.score is not None)
