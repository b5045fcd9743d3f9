"""Forward SDEs dx = f(x, t) dt + g(t) dw on t ∈ [0, T = 1], as small classes with one interface.

Formulas as in score_sde's sde_lib (see shared/REFERENCES.md):

  VE      σ(t) = σ_min (σ_max/σ_min)^t,  f = 0,  g(t) = σ(t) √(2 ln(σ_max/σ_min));
          x(t) | x(0) ~ N(x(0), σ(t)² I);  prior N(0, σ_max² I).
  VP      β(t) = β_min + t (β_max − β_min),  f = −½ β(t) x,  g = √β(t);
          lmc(t) = −¼ t² (β_max − β_min) − ½ t β_min  (log of the mean coefficient m(t));
          x(t) | x(0) ~ N(m(t) x(0), (1 − e^{2 lmc}) I);  prior N(0, I).
  sub-VP  VP's drift,  g = √(β(t) (1 − e^{−2 β_min t − (β_max − β_min) t²})),
          std(t) = 1 − e^{2 lmc}  (not its square root);  prior N(0, I).

Reverse SDE drift  f − g² ∇log p_t;  probability-flow ODE drift  f − ½ g² ∇log p_t.

For a Gaussian mixture p_0 = Σ_k w_k N(μ_k, diag s_k²) every marginal stays a mixture:
    p_t = Σ_k w_k N(m(t) μ_k, diag(m(t)² s_k² + std(t)²)),
so log p_t and ∇ log p_t are closed forms at every t (`mixture_log_prob`, `mixture_score`).
Every method accepts t as a float or as a tensor with one value per sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from engine.targets import LOG_2PI, GaussianMixture
from engine.training.flags import option

T_END = 1.0


class SDEError(ValueError):
    """Impossible SDE parameters (one clear sentence)."""


def _t_like(t, x: torch.Tensor) -> torch.Tensor:
    """t as a tensor broadcastable against x: scalar → 0-d, (N,) → (N, 1, …, 1)."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    if t.dim() == 0:
        return t
    return t.reshape(-1, *([1] * (x.dim() - 1)))


def _defined_by_each_sde(self, *args):
    raise NotImplementedError(f"{type(self).__name__} does not define this coefficient.")


class SDE:
    """Interface shared by VE, VP, sub-VP and the tutorial VE SDE. Each SDE defines, for t a float
    or a tensor of per-sample times:
        drift_coef(t) = c(t), with f(x, t) = c(t)·x (every drift here is linear);
        diffusion(t) = g(t);
        mean_coef(t) = m(t) and std(t), with x(t) | x(0) ~ N(m(t)·x(0), std(t)² I);
        prior_std (the prior is N(0, prior_std² I)) and describe() (its JSON spec).
    Everything below is written with them."""

    name = "sde"
    eps = 1e-5            # sampling stops / likelihood starts at t = eps (score_sde's defaults)
    T = T_END
    drift_coef = diffusion = mean_coef = std = describe = _defined_by_each_sde
    prior_std = property(_defined_by_each_sde)

    def sde(self, x: torch.Tensor, t):
        """(f(x, t), g(t)) with g shaped to broadcast against x."""
        tt = _t_like(t, x)
        return self.drift_coef(tt) * x, self.diffusion(tt)

    def marginal_prob(self, x0: torch.Tensor, t):
        """(mean, std) of the perturbation kernel p(x(t) | x(0) = x0)."""
        tt = _t_like(t, x0)
        return self.mean_coef(tt) * x0, self.std(tt)

    # -- prior -------------------------------------------------------------------------------
    def prior_sampling(self, shape, generator: torch.Generator | None = None,
                       dtype=torch.float32) -> torch.Tensor:
        return self.prior_std * torch.randn(*shape, generator=generator, dtype=dtype)

    def prior_logp(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; 0, prior_std² I), summed over all but the batch dimension."""
        d = z[0].numel()
        s2 = self.prior_std ** 2
        return -0.5 * d * (LOG_2PI + math.log(s2)) - (z.flatten(1) ** 2).sum(1) / (2 * s2)

    # -- discretisation ----------------------------------------------------------------------
    def discretize(self, x: torch.Tensor, t, n_steps: int):
        """Euler–Maruyama discretisation of the forward SDE with N steps on [0, 1]:
        x_{i+1} = x_i + f_i + G_i z with f_i = f(x, t)·Δt, G_i = g(t)·√Δt."""
        dt = self.T / n_steps
        f, g = self.sde(x, t)
        return f * dt, g * math.sqrt(dt)

    def corrector_alpha(self, t, n_steps: int) -> float:
        """α in the Langevin corrector's step ε = 2α(r‖z‖/‖s‖)² (score_sde's code form; the
        corrector takes the paper-form a = 2ε): 1 for VE, 1 − β_i for VP/sub-VP."""
        return 1.0

    # -- reverse-time ------------------------------------------------------------------------
    def reverse_drift(self, x, t, score, probability_flow: bool = False):
        """f − g²·s (reverse SDE) or f − ½ g²·s (probability-flow ODE)."""
        f, g = self.sde(x, t)
        return f - (0.5 if probability_flow else 1.0) * g**2 * score

    def transition(self, x: torch.Tensor, t_from: float, t_to: float, generator=None) -> torch.Tensor:
        """One draw of x(t_to) | x(t_from) for t_to > t_from (every SDE here is linear):
        mean (m(t_to)/m(t_from))·x, variance std(t_to)² − (m(t_to)/m(t_from))² std(t_from)²."""
        ratio = float(self.mean_coef(torch.tensor(t_to))) / float(self.mean_coef(torch.tensor(t_from)))
        var = float(self.std(torch.tensor(t_to))) ** 2 - ratio**2 * float(self.std(torch.tensor(t_from))) ** 2
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        return ratio * x + math.sqrt(max(var, 0.0)) * z

    def forward_sample(self, x0: torch.Tensor, t, generator=None) -> torch.Tensor:
        """x(t) = m(t) x0 + std(t) z, one draw from the perturbation kernel."""
        mean, std = self.marginal_prob(x0, t)
        return mean + std * torch.randn(x0.shape, generator=generator, dtype=x0.dtype)


@dataclass(frozen=True)
class VESDE(SDE):
    """Variance exploding: σ(t) = σ_min (σ_max/σ_min)^t, f = 0, g = σ(t) √(2 ln(σ_max/σ_min)),
    x(t) | x(0) ~ N(x(0), σ(t)² I); prior N(0, σ_max² I)."""

    sigma_min: float = 0.01
    sigma_max: float = 20.0
    eps: float = 1e-5

    name = "ve"

    def __post_init__(self):
        if not (0 < self.sigma_min < self.sigma_max) or not math.isfinite(self.sigma_max):
            raise SDEError(f"VE needs 0 < σ_min < σ_max; got σ_min = {self.sigma_min:g}, "
                           f"σ_max = {self.sigma_max:g}.")

    @property
    def log_ratio(self) -> float:
        return math.log(self.sigma_max / self.sigma_min)

    def sigma(self, t):
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def drift_coef(self, t):
        return torch.zeros_like(t) if torch.is_tensor(t) else 0.0

    def diffusion(self, t):
        return self.sigma(t) * math.sqrt(2 * self.log_ratio)

    def mean_coef(self, t):
        return torch.ones_like(t) if torch.is_tensor(t) else 1.0

    def std(self, t):
        return self.sigma(t)

    @property
    def prior_std(self) -> float:
        return self.sigma_max

    def describe(self) -> dict:
        return {"sde": "ve", "sigma_min": self.sigma_min, "sigma_max": self.sigma_max}


@dataclass(frozen=True)
class VPSDE(SDE):
    """Variance preserving: β(t) linear, f = −½ β(t) x, g = √β(t); prior N(0, I)."""

    beta_min: float = 0.1
    beta_max: float = 20.0
    eps: float = 1e-3

    name = "vp"

    def __post_init__(self):
        if not (0 <= self.beta_min < self.beta_max) or not math.isfinite(self.beta_max):
            raise SDEError(f"VP needs 0 ≤ β_min < β_max; got β_min = {self.beta_min:g}, "
                           f"β_max = {self.beta_max:g}.")

    def beta(self, t):
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def log_mean_coef(self, t):
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def drift_coef(self, t):
        return -0.5 * self.beta(t)

    def diffusion(self, t):
        b = self.beta(t)
        return torch.sqrt(b) if torch.is_tensor(b) else math.sqrt(b)

    def mean_coef(self, t):
        lmc = self.log_mean_coef(t)
        return torch.exp(lmc) if torch.is_tensor(lmc) else math.exp(lmc)

    def std(self, t):
        lmc = self.log_mean_coef(t)
        if torch.is_tensor(lmc):
            return torch.sqrt(-torch.expm1(2 * lmc))
        return math.sqrt(-math.expm1(2 * lmc))

    @property
    def prior_std(self) -> float:
        return 1.0

    def corrector_alpha(self, t, n_steps: int) -> float:
        """α_i = 1 − β_i with β_i = β(t)/N (score_sde's discrete betas). With fewer steps than
        β_max the formula goes negative at large t; it is clamped at 0 (no corrector step there)."""
        return max(0.0, 1.0 - float(self.beta(float(t))) / n_steps)

    def describe(self) -> dict:
        return {"sde": self.name, "beta_min": self.beta_min, "beta_max": self.beta_max}


@dataclass(frozen=True)
class SubVPSDE(VPSDE):
    name = "subvp"

    def diffusion(self, t):
        if torch.is_tensor(t):
            disc = -torch.expm1(-2 * self.beta_min * t - (self.beta_max - self.beta_min) * t**2)
            return torch.sqrt(self.beta(t) * disc)
        disc = -math.expm1(-2 * self.beta_min * t - (self.beta_max - self.beta_min) * t**2)
        return math.sqrt(self.beta(t) * disc)

    def std(self, t):
        lmc = self.log_mean_coef(t)
        return -torch.expm1(2 * lmc) if torch.is_tensor(lmc) else -math.expm1(2 * lmc)


@dataclass(frozen=True)
class TutorialVESDE(SDE):
    """The MNIST tutorial's VE SDE dx = σ^t dw (σ = 25): std(t) = √((σ^{2t} − 1)/(2 ln σ)),
    g(t) = σ^t, mean x(0), prior N(0, std(1)² I). The one definition of this SDE: the MNIST
    tutorial U-Net (engine.models.unet, "tutorial_unet") divides its output by this std(t)."""

    sigma: float = 25.0
    eps: float = 1e-3

    name = "ve_tutorial"

    def __post_init__(self):
        if not self.sigma > 1:
            raise SDEError(f"The tutorial VE SDE needs σ > 1; got {self.sigma:g}.")

    def drift_coef(self, t):
        return torch.zeros_like(t) if torch.is_tensor(t) else 0.0

    def diffusion(self, t):
        return self.sigma ** t

    def mean_coef(self, t):
        return torch.ones_like(t) if torch.is_tensor(t) else 1.0

    def std(self, t):
        v = (self.sigma ** (2 * t) - 1.0) / (2 * math.log(self.sigma))
        return torch.sqrt(v) if torch.is_tensor(v) else math.sqrt(v)

    @property
    def prior_std(self) -> float:
        return float(self.std(1.0))

    def describe(self) -> dict:
        return {"sde": "ve_tutorial", "sigma": self.sigma}


@dataclass(frozen=True)
class SDEOptions:
    """The forward-SDE fields a config shares (each a flag) and the SDE they name."""
    sde: str = option("ve", "the forward SDE: variance exploding, variance preserving or sub-VP",
                      choices=("ve", "vp", "subvp"))
    sigma_min: float = option(0.01, "VE: σ_min", low=0, low_open=True, label="σ_min")
    sigma_max: float = option(50.0, "VE: σ_max", low=0, low_open=True, label="σ_max")
    beta_min: float = option(0.1, "VP / sub-VP: β_min", low=0, low_open=True)
    beta_max: float = option(20.0, "VP / sub-VP: β_max", low=0, low_open=True)

    def make_sde(self) -> SDE:
        return make_sde(self.sde, self.sigma_min, self.sigma_max, self.beta_min, self.beta_max)


def make_sde(name: str, sigma_min: float = 0.01, sigma_max: float = 20.0, beta_min: float = 0.1,
             beta_max: float = 20.0, eps: float | None = None) -> SDE:
    """Build an SDE by name with its parameters (ignored ones are those of the other family)."""
    name = (name or "").lower().replace("-", "").replace("_", "")
    if name == "ve":
        return VESDE(sigma_min, sigma_max, 1e-5 if eps is None else eps)
    if name == "vp":
        return VPSDE(beta_min, beta_max, 1e-3 if eps is None else eps)
    if name == "subvp":
        return SubVPSDE(beta_min, beta_max, 1e-3 if eps is None else eps)
    if name == "vetutorial":
        return TutorialVESDE(sigma_max, 1e-3 if eps is None else eps)
    raise SDEError(f"Unknown SDE {name!r}; choose ve, vp or subvp.")


def sde_from_dict(d: dict) -> SDE:
    d = dict(d)
    kind = d.pop("sde")
    if kind == "ve_tutorial":
        return TutorialVESDE(float(d.get("sigma", 25.0)), float(d.get("eps", 1e-3)))
    return make_sde(kind, **{k: v for k, v in d.items()
                             if k in ("sigma_min", "sigma_max", "beta_min", "beta_max", "eps")})


# -- exact marginals of a Gaussian mixture ------------------------------------------------------

def _mixture_terms(mixture: GaussianMixture, sde: SDE, x: torch.Tensor, t):
    """(diff/var, logits) of the mixture p_t with means m μ_k and variances m² s_k² + std²."""
    means, log_w, var0 = mixture.tensors(x.device, x.dtype)
    if torch.is_tensor(t) and t.dim() > 0:
        tt = t.to(x.dtype).reshape(-1, 1, 1)                      # (N, 1, 1)
    else:
        tt = torch.tensor(float(t), dtype=x.dtype, device=x.device)
    m = sde.mean_coef(tt)
    s = sde.std(tt)
    m = torch.as_tensor(m, dtype=x.dtype, device=x.device)
    s = torch.as_tensor(s, dtype=x.dtype, device=x.device)
    var = m**2 * var0 + s**2                                      # (K, d) or (N, K, d)
    diff = x.unsqueeze(-2) - m * means                            # (N, K, d)
    scaled = diff / var
    logits = log_w - 0.5 * (torch.log(var).sum(-1) + (diff * scaled).sum(-1)
                            + mixture.dim * LOG_2PI)
    return scaled, logits


def mixture_log_prob(mixture: GaussianMixture, sde: SDE, x: torch.Tensor, t) -> torch.Tensor:
    """log p_t(x) of the forward marginal, closed form: (N,)."""
    _, logits = _mixture_terms(mixture, sde, x, t)
    return torch.logsumexp(logits, dim=-1)


def mixture_score(mixture: GaussianMixture, sde: SDE, x: torch.Tensor, t) -> torch.Tensor:
    """∇_x log p_t(x) = −Σ_k r_k(x) (x − m μ_k)/(m² s_k² + std²): (N, d)."""
    scaled, logits = _mixture_terms(mixture, sde, x, t)
    resp = torch.softmax(logits, dim=-1)
    return -(resp.unsqueeze(-1) * scaled).sum(-2)


def mixture_at(mixture: GaussianMixture, sde: SDE, t: float) -> GaussianMixture:
    """The forward marginal p_t as a GaussianMixture object (for sampling and plotting)."""
    m = float(sde.mean_coef(float(t)))
    s = float(sde.std(float(t)))
    means = [tuple(m * v for v in mu) for mu in mixture.means]
    stds = [tuple(math.sqrt(m * m * v * v + s * s) for v in sd) for sd in mixture.stds]
    return GaussianMixture.create(means, mixture.weights, stds)


def exact_score_fn(mixture: GaussianMixture, sde: SDE):
    """score_fn(x, t) for the samplers: the exact score of the mixture's forward marginal."""
    def score_fn(x, t):
        return mixture_score(mixture, sde, x, t)
    return score_fn

