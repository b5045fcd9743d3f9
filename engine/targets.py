"""2D target densities with exact log-densities and scores at any noise level σ.

A Gaussian mixture p(x) = Σ_k w_k N(x; μ_k, diag(s_k²)) perturbed by N(0, σ² I) stays a mixture:
    p_σ(x) = Σ_k w_k N(x; μ_k, diag(s_k² + σ²))
so log p_σ and its score ∇_x log p_σ are closed forms at every σ ≥ 0:
    ∇_x log p_σ(x) = Σ_k r_k(x) · (−(x − μ_k) / (s_k² + σ²)),   r_k = posterior responsibility.
The non-Gaussian sets (rings, moons, …) are only sample sets, for training pages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

LOG_2PI = math.log(2 * math.pi)


class TargetError(ValueError):
    """A mixture specification that cannot describe a density (one clear sentence)."""


@dataclass(frozen=True)
class GaussianMixture:
    """Mixture of axis-aligned Gaussians in any dimension (2D for the pages).

    means: K points; weights: K positive numbers (normalised here); stds: per component either one
    number (isotropic) or one per dimension (diagonal covariance).
    """

    means: tuple[tuple[float, ...], ...]
    weights: tuple[float, ...]
    stds: tuple[tuple[float, ...], ...]

    @staticmethod
    def create(means, weights, stds=None) -> "GaussianMixture":
        means_t = tuple(tuple(float(v) for v in m) for m in means)
        if not means_t:
            raise TargetError("A mixture needs at least one component.")
        dim = len(means_t[0])
        if dim == 0 or any(len(m) != dim for m in means_t):
            raise TargetError("Every mean must have the same number of coordinates.")
        weights_t = tuple(float(w) for w in weights)
        if len(weights_t) != len(means_t):
            raise TargetError(
                f"Got {len(means_t)} means but {len(weights_t)} weights; give one weight per mean."
            )
        if any(not math.isfinite(w) or w < 0 for w in weights_t) or sum(weights_t) <= 0:
            raise TargetError("Weights must be non-negative numbers with a positive sum.")
        total = sum(weights_t)
        weights_t = tuple(w / total for w in weights_t)
        if stds is None:
            stds = [1.0] * len(means_t)
        stds_list = list(stds)
        if len(stds_list) != len(means_t):
            raise TargetError(
                f"Got {len(means_t)} means but {len(stds_list)} standard deviations."
            )
        stds_t = []
        for s in stds_list:
            s_t = (float(s),) * dim if isinstance(s, (int, float)) else tuple(float(v) for v in s)
            if len(s_t) == 1:
                s_t = s_t * dim
            if len(s_t) != dim or any(not math.isfinite(v) or v <= 0 for v in s_t):
                raise TargetError("Standard deviations must be positive, one or one per dimension.")
            stds_t.append(s_t)
        if any(not math.isfinite(v) for m in means_t for v in m):
            raise TargetError("Means must be finite numbers.")
        return GaussianMixture(means_t, weights_t, tuple(stds_t))

    @property
    def dim(self) -> int:
        return len(self.means[0])

    @property
    def n_components(self) -> int:
        return len(self.means)

    def tensors(self, device=None, dtype=torch.float32):
        """(means (K,d), log-weights (K,), variances (K,d)) as tensors (cached per dtype/device)."""
        key = (str(device), dtype)
        cache = self.__dict__.setdefault("_tensor_cache", {})
        if key not in cache:
            means = torch.tensor(self.means, device=device, dtype=dtype)
            weights = torch.tensor(self.weights, device=device, dtype=dtype)
            variances = torch.tensor(self.stds, device=device, dtype=dtype) ** 2
            cache[key] = (means, torch.log(weights), variances)
        return cache[key]

    # -- exact density and score ---------------------------------------------------------------
    def component_log_probs(self, x: torch.Tensor, sigma: float | torch.Tensor = 0.0) -> torch.Tensor:
        """log w_k + log N(x; μ_k, diag(s_k² + σ²)) for every point and component: (N, K)."""
        means, log_w, var = self.tensors(x.device, x.dtype)
        var = var + _as_sigma(sigma, x) ** 2  # perturbation adds σ² to each component's variance
        diff = x.unsqueeze(-2) - means  # (N, K, d)
        quad = (diff * diff / var).sum(-1)
        log_det = torch.log(var).sum(-1)
        return log_w - 0.5 * (quad + log_det + self.dim * LOG_2PI)

    def log_prob(self, x: torch.Tensor, sigma: float | torch.Tensor = 0.0) -> torch.Tensor:
        """log p_σ(x): (N,)."""
        return torch.logsumexp(self.component_log_probs(x, sigma), dim=-1)

    def energy(self, x: torch.Tensor, sigma: float | torch.Tensor = 0.0) -> torch.Tensor:
        """E(x) = −log p_σ(x), the energy shown in heat maps."""
        return -self.log_prob(x, sigma)

    def responsibilities(self, x: torch.Tensor, sigma: float | torch.Tensor = 0.0) -> torch.Tensor:
        """Posterior r_k(x) = p(component k | x) under p_σ: (N, K)."""
        return torch.softmax(self.component_log_probs(x, sigma), dim=-1)

    def score(self, x: torch.Tensor, sigma: float | torch.Tensor = 0.0) -> torch.Tensor:
        """Exact ∇_x log p_σ(x) = Σ_k r_k · (−(x − μ_k)/(s_k² + σ²)): (N, d)."""
        if isinstance(sigma, torch.Tensor) or x.dim() != 2:
            return self._score_general(x, sigma)
        # Fast path for a float σ (the samplers' case). Layout (K, d, N): particles along the
        # contiguous last axis, so the small reductions over d and K are vectorised over N
        # (about 1.5-2x faster than (K, N, d) for 2D particle sets; the numbers are identical).
        mean_col, neg_inv_var, const = self.score_constants(x, float(sigma))
        diff = x.T.unsqueeze(0) - mean_col                     # (K, d, N)
        scaled = diff * neg_inv_var                            # −(x − μ_k)/v_k
        logits = torch.add(const, (diff * scaled).sum(1), alpha=0.5)  # (K, N)
        resp = torch.softmax(logits, dim=0)
        return (resp.unsqueeze(1) * scaled).sum(0).T

    def _score_general(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        means, log_w, var = self.tensors(x.device, x.dtype)
        var = var + _as_sigma(sigma, x) ** 2                   # (N, K, d) or (K, d)
        diff = x.unsqueeze(-2) - means
        scaled = diff / var
        logits = log_w - 0.5 * (torch.log(var).sum(-1) + (diff * scaled).sum(-1))
        resp = torch.softmax(logits, dim=-1)
        return -(resp.unsqueeze(-1) * scaled).sum(-2)

    def score_constants(self, x: torch.Tensor, sigma: float):
        """(μ_k, −1/v_k, log w_k − ½ log|V_k|) with v_k = s_k² + σ², for a float σ: the constants of
        one noise level in the score above, shaped (K, d, 1), (K, d, 1), (K, 1) for its (K, d, N)
        layout and cached per (device, dtype, σ). The batched Langevin chains
        (engine.samplers.langevin.mixture_langevin_chains) evaluate the same score with them."""
        key = (x.device, x.dtype, sigma)
        cache = self.__dict__.setdefault("_level_cache", {})
        found = cache.get(key)
        if found is None:
            if len(cache) > 512:
                cache.clear()
            means, log_w, var = self.tensors(x.device, x.dtype)
            var = var + sigma**2
            const = log_w - 0.5 * torch.log(var).sum(-1)
            found = cache[key] = (means.unsqueeze(-1), (-1.0 / var).unsqueeze(-1), const.unsqueeze(-1))
        return found

    def sample(self, n: int, generator: torch.Generator | None = None, sigma: float = 0.0,
               dtype=torch.float32) -> torch.Tensor:
        """n exact samples of p_σ (components drawn by weight)."""
        means, log_w, var = self.tensors(dtype=dtype)
        comp = torch.multinomial(log_w.exp(), n, replacement=True, generator=generator)
        std = torch.sqrt(var[comp] + sigma**2)
        noise = torch.randn(n, self.dim, generator=generator, dtype=dtype)
        return means[comp] + std * noise

    def sample_with_labels(self, n: int, generator: torch.Generator | None = None):
        means, log_w, var = self.tensors()
        comp = torch.multinomial(log_w.exp(), n, replacement=True, generator=generator)
        noise = torch.randn(n, self.dim, generator=generator)
        return means[comp] + var[comp].sqrt() * noise, comp

    def to_dict(self) -> dict:
        return {"means": [list(m) for m in self.means], "weights": list(self.weights),
                "stds": [list(s) for s in self.stds]}

    @staticmethod
    def from_dict(d: dict) -> "GaussianMixture":
        return GaussianMixture.create(d["means"], d["weights"], d.get("stds"))


def _as_sigma(sigma, x: torch.Tensor) -> torch.Tensor:
    """σ as a tensor broadcastable against (N, K, d): a float, or one value per point (N,)."""
    if isinstance(sigma, torch.Tensor):
        sigma = sigma.to(x.dtype)
        if sigma.dim() == 0:
            return sigma
        return sigma.reshape(-1, 1, 1)
    return torch.tensor(float(sigma), dtype=x.dtype, device=x.device)


def seeds_mixture(w_major: float = 0.8) -> GaussianMixture:
    """The seeds' experiment: w·N((5,5), I) + (1−w)·N((−5,−5), I)."""
    return GaussianMixture.create([(5.0, 5.0), (-5.0, -5.0)], [w_major, 1.0 - w_major], [1.0, 1.0])


def parse_points(text: str) -> list[tuple[float, ...]]:
    """'5,5;-5,-5' → [(5,5), (-5,-5)]."""
    try:
        pts = [tuple(float(v) for v in part.split(",")) for part in text.split(";") if part.strip()]
    except ValueError:
        raise TargetError(f"Cannot read points from {text!r}; write them like '5,5;-5,-5'.") from None
    if not pts:
        raise TargetError(f"No points in {text!r}; write them like '5,5;-5,-5'.")
    return pts


def parse_numbers(text: str, what: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise TargetError(f"Cannot read {what} from {text!r}; write them like '0.8,0.2'.") from None
    if not vals:
        raise TargetError(f"No {what} in {text!r}.")
    return vals


# -- non-Gaussian 2D sample sets (no closed-form score) ------------------------------------------

def _rings(n, g):
    radius = torch.tensor([1.0, 2.0, 3.0])[torch.randint(0, 3, (n,), generator=g)]
    theta = 2 * math.pi * torch.rand(n, generator=g)
    pts = torch.stack([radius * torch.cos(theta), radius * torch.sin(theta)], -1)
    return 1.5 * pts + 0.08 * torch.randn(n, 2, generator=g)


def _moons(n, g):
    upper = torch.rand(n, generator=g) < 0.5
    theta = math.pi * torch.rand(n, generator=g)
    x = torch.where(upper, torch.cos(theta), 1 - torch.cos(theta))
    y = torch.where(upper, torch.sin(theta), 0.5 - torch.sin(theta))
    pts = torch.stack([x - 0.5, y - 0.25], -1) * 3.0
    return pts + 0.1 * torch.randn(n, 2, generator=g)


def _checkerboard(n, g):
    x1 = torch.rand(n, generator=g) * 4 - 2
    x2 = torch.rand(n, generator=g) - torch.randint(0, 2, (n,), generator=g).float() * 2
    x2 = x2 + (torch.floor(x1) % 2)
    return torch.stack([x1, x2], -1) * 2.0


def _spirals(n, g):
    t = torch.sqrt(torch.rand(n, generator=g)) * 3 * math.pi
    arm = torch.randint(0, 2, (n,), generator=g).float() * math.pi
    pts = torch.stack([t * torch.cos(t + arm), t * torch.sin(t + arm)], -1) / 2.0
    return pts + 0.15 * torch.randn(n, 2, generator=g)


def _curve(n, g):
    """Points exactly on a 1-D curve (a circle arc): the score is undefined off it."""
    theta = 2 * math.pi * torch.rand(n, generator=g)
    return torch.stack([3 * torch.cos(theta), 1.5 * torch.sin(2 * theta)], -1)


SAMPLE_SETS = {
    "rings": _rings,
    "moons": _moons,
    "checkerboard": _checkerboard,
    "spirals": _spirals,
    "curve": _curve,
}


def sample_set(name: str, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    if name not in SAMPLE_SETS:
        raise TargetError(f"Unknown data set {name!r}; choose one of {', '.join(SAMPLE_SETS)}.")
    return SAMPLE_SETS[name](n, generator)
