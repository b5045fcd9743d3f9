"""The mixing experiment for the SDE samplers, as one pure function of a frozen config.

Same summary JSON as engine.lab.mixing.run_mix (sampler, mode_weights, target_weights,
weight_error, sliced_wasserstein, nfe, particles, seconds, score) plus the SDE's description.
Particles start from the SDE's prior (that is what the reverse process assumes), not from a box.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from engine.lab.mixing import MixResult, noise_generator, summarise
from engine.sde.sdes import SDE, SDEOptions, exact_score_fn
from engine.samplers.reverse import SDE_SAMPLERS, SDESamplerConfig, sample
from engine.targets import GaussianMixture
from engine.training.flags import check_fields, option


@dataclass(frozen=True)
class SDEMixConfig(SDEOptions):
    # VE: p_1 must be close to N(0, σ_max² I). Data centred at c ≠ 0 shift p_1 by c, a weight bias
    # of about 0.3·|c|/σ_max (0.8/0.2 at ±(5,5): c = (3,3), ≈ 0.025 at σ_max = 50, ≈ 0.012 at 100)
    sigma_max: float = option(100.0, "VE: σ_max", low=0, low_open=True, label="σ_max")
    means: tuple[tuple[float, ...], ...] = ((5.0, 5.0), (-5.0, -5.0))
    weights: tuple[float, ...] = (0.8, 0.2)
    stds: tuple[float, ...] | None = None
    sampler: str = option("pc", choices=SDE_SAMPLERS)
    particles: int = option(1000, low=1, high=100_000, label="number of particles")
    steps: int = 500               # N for sde / pc (range: SDESamplerConfig's)
    snr: float = 0.16
    corrector_steps: int = 1
    rtol: float = 1e-5
    atol: float = 1e-5
    seed: int = option(0, "seed of the initial particles and the noise", low=0, high=2**32 - 1)
    record_every: int = 0
    record_particles: int = 0
    checkpoint: str | None = None

    @property
    def mixture(self) -> GaussianMixture:
        return GaussianMixture.create(self.means, self.weights, self.stds)

    def sampler_config(self) -> SDESamplerConfig:
        return SDESamplerConfig(sampler=self.sampler, steps=self.steps, snr=self.snr,
                                corrector_steps=self.corrector_steps, rtol=self.rtol,
                                atol=self.atol, record_every=self.record_every,
                                record_particles=self.record_particles)

    def validate(self) -> None:
        check_fields(self)
        self.sampler_config().validate()   # the sampler, steps, snr, tolerances
        self.make_sde()
        self.mixture  # noqa: B018 — validates means/weights/stds


@dataclass
class SDEMixResult(MixResult):
    """A mixture experiment with an SDE sampler: MixResult's figures plus the SDE."""

    sde: SDE | None = None

    def summary(self) -> dict:
        out = super().summary()
        return {"sampler": out.pop("sampler"), "sde": self.sde.describe(), **out}


def prior_particles(config: SDEMixConfig, sde: SDE) -> torch.Tensor:
    g = torch.Generator().manual_seed(config.seed)
    return sde.prior_sampling((config.particles, config.mixture.dim), generator=g)


def run_sde_mix(config: SDEMixConfig, score_fn=None, sde: SDE | None = None) -> SDEMixResult:
    """Sample the mixture by reversing the SDE; the exact marginal score unless score_fn is given
    (then `sde` must be the SDE that score model was trained with)."""
    config.validate()
    mixture = config.mixture
    if sde is None:
        sde = config.make_sde()
    if score_fn is None:
        score_fn = exact_score_fn(mixture, sde)
    x0 = prior_particles(config, sde)
    start = time.perf_counter()
    result = sample(score_fn, x0, sde, config.sampler_config(), noise_generator(config))
    seconds = time.perf_counter() - start
    return summarise(config, x0, result, seconds, SDEMixResult, sde=sde)


# -- views for the SDE page (pure functions of their arguments) ----------------------------------

def forward_paths(mixture: GaussianMixture, sde: SDE, particles: int, steps: int = 200,
                  record: int = 50, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Simulate the forward SDE from exact data samples with Euler–Maruyama (N = steps):
    (times (F,), positions (F, particles, d)) at about `record` evenly spaced times, t = 0 … 1."""
    g = torch.Generator().manual_seed(seed)
    x = mixture.sample(particles, generator=g, dtype=torch.float64)
    every = max(1, steps // record)
    times, frames = [0.0], [x.clone()]
    for i in range(steps):
        f, G = sde.discretize(x, i / steps, steps)
        x = x + f + G * torch.randn(x.shape, generator=g, dtype=x.dtype)
        if (i + 1) % every == 0 or i == steps - 1:
            times.append((i + 1) / steps)
            frames.append(x.clone())
    return torch.tensor(times), torch.stack(frames)


def projected_log_density(mixture: GaussianMixture, sde: SDE, ts, us) -> torch.Tensor:
    """log-density of u = (x₁ + x₂)/√2 under p_t, closed form (a 1-D mixture): (len(ts), len(us))."""
    means, log_w, var0 = mixture.tensors(dtype=torch.float64)
    dirn = torch.tensor([1.0, 1.0], dtype=torch.float64) / 2 ** 0.5
    mu_u = means @ dirn                                    # (K,)
    var_u = var0 @ (dirn**2)                               # (K,)
    ts = torch.as_tensor(ts, dtype=torch.float64)
    us = torch.as_tensor(us, dtype=torch.float64)
    m = torch.as_tensor(sde.mean_coef(ts), dtype=torch.float64).reshape(-1, 1, 1)
    s = torch.as_tensor(sde.std(ts), dtype=torch.float64).reshape(-1, 1, 1)
    var = m**2 * var_u + s**2                              # (T, 1, K)
    diff = us.reshape(1, -1, 1) - m * mu_u                 # (T, U, K)
    logits = log_w - 0.5 * (diff**2 / var + torch.log(2 * torch.pi * var))
    return torch.logsumexp(logits, dim=-1)


def marginal_grid(mixture: GaussianMixture, sde: SDE, t: float, lo: float, hi: float, n: int = 60):
    """(grid (n,), log p_t on the n×n grid) in closed form."""
    from engine.sde.sdes import mixture_log_prob

    g = torch.linspace(lo, hi, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(g, g, indexing="xy")
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    return g, mixture_log_prob(mixture, sde, pts, float(t)).reshape(n, n)


def likelihood_maps(score_fn, sde: SDE, mixture: GaussianMixture, lo: float, hi: float,
                    n: int = 32, rtol: float = 1e-5, atol: float = 1e-5, progress=None) -> dict:
    """ODE log-density of a (learned) score model on an n×n grid next to the exact log p
    (progress: ode_log_likelihood's, the share of the time range integrated)."""
    from engine.sde.likelihood import ode_log_likelihood

    g = torch.linspace(lo, hi, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(g, g, indexing="xy")
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    start = time.perf_counter()
    res = ode_log_likelihood(score_fn, pts, sde, exact_trace=True, rtol=rtol, atol=atol,
                             progress=progress)
    return {"grid": g, "ode": res.log_p.reshape(n, n), "exact": mixture.log_prob(pts).reshape(n, n),
            "nfe": res.nfe, "seconds": time.perf_counter() - start}
