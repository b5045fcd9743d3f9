"""The mixing experiment as one pure function of a frozen config: used by the pages, the CLI and
the tests, so the same sliders, flags or arguments give the same particles."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from engine import metrics
from engine.samplers.schedules import ScheduleError
from engine.device import small_tensor_threads
from engine.samplers import mixture_kernel
from engine.samplers.langevin import (FrameRecorder, SampleResult, SamplerDiverged,
                                      annealed_schedule, init_particles, kernel_noise,
                                      langevin_dynamics, mixture_langevin_chains, plain_schedule)
from engine.targets import GaussianMixture
from engine.training.flags import check_fields, option

LANGEVIN_SAMPLERS = ("langevin", "annealed")


@dataclass(frozen=True)
class MixConfig:
    means: tuple[tuple[float, ...], ...] = ((5.0, 5.0), (-5.0, -5.0))
    weights: tuple[float, ...] = (0.8, 0.2)
    stds: tuple[float, ...] | None = None      # one isotropic std per component (1 if omitted)
    sampler: str = option("annealed", choices=LANGEVIN_SAMPLERS)
    particles: int = option(1000, low=1, high=100_000, label="number of particles")
    steps: int = option(100, "total (langevin) or per level (annealed)",
                        low=1, high=100_000, label="number of steps")
    step_size: float = option(0.1, "ε: α for plain, α_i = ε σ_i²/σ_L² for annealed",
                              low=0, low_open=True, label="step size ε")
    sigma_max: float = option(20.0, low=0, low_open=True, label="σ_max")
    sigma_min: float = option(1.0, low=0, low_open=True, label="σ_min")
    levels: int = option(10, low=1, high=1000, label="number of noise levels")
    init: str = "uniform:-8,8"
    seed: int = option(0, "seed of the initial particles and the noise", low=0, high=2**32 - 1)
    denoise: bool = False
    record_every: int = option(0, "keep every k-th state (0: none)", low=0, high=100_000)
    record_particles: int = option(0, "particles kept per frame (0: all)", low=0, high=100_000)
    checkpoint: str | None = None              # learned score instead of the exact one

    @property
    def mixture(self) -> GaussianMixture:
        return GaussianMixture.create(self.means, self.weights, self.stds)

    def validate(self) -> None:
        """Raise ValueError with one sentence for impossible values (engine.training.flags) and
        combinations."""
        check_fields(self)
        if self.sampler == "annealed":
            if self.levels > 1 and self.sigma_max <= self.sigma_min:
                raise ScheduleError(f"σ_max ({self.sigma_max:g}, --sigma-max) must be larger than "
                                    f"σ_min ({self.sigma_min:g}, --sigma-min) for annealing.")
        self.mixture  # noqa: B018 — validates means/weights/stds


@dataclass
class MixResult:
    config: MixConfig
    init: torch.Tensor
    sample: SampleResult
    mode_weights: list[float]
    target_weights: list[float]
    weight_error: float
    sliced_wasserstein: float
    seconds: float

    def summary(self) -> dict:
        return {
            "sampler": self.config.sampler,
            "mode_weights": [round(w, 4) for w in self.mode_weights],
            "target_weights": [round(w, 4) for w in self.target_weights],
            "weight_error": round(self.weight_error, 4),
            "sliced_wasserstein": round(self.sliced_wasserstein, 4),
            "nfe": self.sample.nfe,
            "particles": self.config.particles,
            "seconds": round(self.seconds, 4),
            "score": self.config.checkpoint or "exact",
        }


def schedule_for(config: MixConfig, learned: bool = False):
    if config.sampler == "langevin":
        # The exact score of the clean density is σ = 0; a noise-conditional net is asked at σ_L.
        return plain_schedule(config.step_size, config.steps,
                              sigma=config.sigma_min if learned else 0.0, denoise=config.denoise)
    return annealed_schedule(config.step_size, config.steps, config.sigma_max, config.sigma_min,
                             config.levels, denoise=config.denoise)


def recorder_for(config: MixConfig) -> FrameRecorder:
    return FrameRecorder(config.record_every, config.record_particles)


def initial_particles(config: MixConfig) -> torch.Tensor:
    g = torch.Generator().manual_seed(config.seed)
    return init_particles(config.init, config.particles, config.mixture.dim, generator=g)


def run_mix(config: MixConfig, score_fn=None) -> MixResult:
    """Sample the mixture with the configured sampler; score_fn defaults to the exact score."""
    config.validate()
    if score_fn is None:  # the exact score works on tiny tensors: one thread is fastest
        with small_tensor_threads(config.particles * config.mixture.dim):
            return _run_mix(config, None)
    return _run_mix(config, score_fn)


def _run_mix(config: MixConfig, score_fn) -> MixResult:
    learned = score_fn is not None
    x0 = initial_particles(config)
    recorder = recorder_for(config)
    start = time.perf_counter()
    with torch.no_grad():
        if learned:  # the fused kernel's noise where the exact score runs there: same draws
            shared = mixture_kernel.available and x0.shape[1] == 2
            gen = noise_generator(config)
            result = langevin_dynamics(score_fn, x0, schedule_for(config, learned), gen,
                                       callback=recorder, noise=kernel_noise(gen) if shared else None)
        else:  # the exact score: the fused kernel (its own noise stream, see mixture_langevin_chains)
            result, = mixture_langevin_chains(config.mixture, [x0], [schedule_for(config)],
                                              [noise_generator(config)], [recorder])
    seconds = time.perf_counter() - start
    return summarise(config, x0, recorder.langevin_result(result), seconds)


def noise_generator(config) -> torch.Generator:
    """The sampler's noise stream: separate from the initial particles' (seed), so that both
    samplers of one config start from identical particles."""
    return torch.Generator().manual_seed(config.seed + 1_000_003)


def summarise(config, x0: torch.Tensor, result, seconds: float, result_type=MixResult,
              **extra) -> MixResult:
    """The figures of one run (recovered weights, TV error, sliced W₂ to exact samples) as a
    `result_type` (MixResult, or SDEMixResult with extra=sde)."""
    mixture = config.mixture
    weights = metrics.mode_weights(result.x, mixture)
    target = torch.tensor(mixture.weights, dtype=torch.float64)
    reference = mixture.sample(min(config.particles, 2000) if config.particles > 1 else 2,
                               generator=torch.Generator().manual_seed(config.seed + 7))
    return result_type(
        config=config, init=x0, sample=result,
        mode_weights=weights.tolist(), target_weights=target.tolist(),
        weight_error=metrics.total_variation(weights, target),
        sliced_wasserstein=metrics.sliced_wasserstein(result.x, reference, seed=config.seed),
        seconds=seconds, **extra,
    )


def run_mixes(configs) -> list:
    """run_mix for several exact-score configs at once: a MixResult, or the exception run_mix
    would raise (SamplerDiverged, ValueError …), for each config, in order.

    Configs that share the mixture, initial particles, seed and total number of steps (e.g. plain
    Langevin with L·T steps next to annealed Langevin with L levels of T) run as one batched
    chain (`mixture_langevin_chains`): the same particles as run_mix, in about half the time for
    two. Each result's `seconds` is the batch's wall time.
    """
    results: list = [None] * len(configs)
    groups: dict = {}
    for i, config in enumerate(configs):
        try:
            config.validate()
        except ValueError as err:
            results[i] = err
            continue
        if config.checkpoint:
            results[i] = ValueError("run_mixes uses the exact score; use run_mix for a checkpoint.")
            continue
        key = (config.means, config.weights, config.stds, config.init, config.particles,
               config.seed, schedule_for(config).total_steps)
        groups.setdefault(key, []).append(i)
    for members in groups.values():
        batch = [configs[i] for i in members]
        try:
            with small_tensor_threads(batch[0].particles * batch[0].mixture.dim):
                x0 = initial_particles(batch[0])
                recorders = [recorder_for(c) for c in batch]
                start = time.perf_counter()
                with torch.inference_mode():  # no autograd bookkeeping per op (~10 % here)
                    outs = mixture_langevin_chains(batch[0].mixture, [x0] * len(batch),
                                                   [schedule_for(c) for c in batch],
                                                   [noise_generator(c) for c in batch], recorders)
                seconds = time.perf_counter() - start
                for i, c, out, rec in zip(members, batch, outs, recorders):
                    results[i] = summarise(c, x0, rec.langevin_result(out), seconds)
        except SamplerDiverged:
            # One chain blew up: run each on its own, so every config gets its own answer.
            for i in members:
                try:
                    results[i] = run_mix(configs[i])
                except (SamplerDiverged, ValueError) as err:
                    results[i] = err
    return results


def seeds_defaults(sampler: str) -> MixConfig:
    """The seeds'/ncsn toy run: plain ε = 0.1 × 1000 steps; annealed σ 20→1, L = 10, 100 steps."""
    if sampler == "langevin":
        return MixConfig(sampler="langevin", steps=1000, step_size=0.1)
    return MixConfig(sampler="annealed", steps=100, step_size=0.1)

