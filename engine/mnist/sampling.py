"""Sampling MNIST score models, three ways:
- "annealed": annealed Langevin over the checkpoint's L levels (engine.samplers.langevin,
  paper form x ← x + (α/2)s + √α z, α_i = ε σ_i²/σ_L², T steps per level, Tweedie at the end);
- "plain": Langevin at the last σ with the same budget (the single-σ baseline's only sampler);
- "heun": the probability-flow ODE dx/dσ = −σ s_θ(x, σ) by Heun's method on a Karras σ grid
  (engine.samplers.pf_ode), for models trained on continuous σ: 2n − 1 evaluations for n levels.

"auto" takes the checkpoint's own choice (meta["sampler"], written by training), else annealed for an
NCSN and plain for the baseline. An image checkpoint's JSON holds "schedule": {"sigmas", "gamma",
"steps_per_level", "step_size" (paper form ε), "sigma_min", "sigma_max", "noise", ...} and
"objective": "ncsn" | "dsm".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from engine.models.score import score_fn_of
from engine.samplers.langevin import FrameRecorder, LangevinSchedule, SampleResult, langevin_dynamics
from engine.samplers.pf_ode import heun_sampler
from engine.samplers.schedules import annealed_step_sizes, karras_sigmas, ncsnv2_step_size
from engine.training.flags import check_fields, option


DEFAULT_ODE_STEPS = 18   # Heun levels (35 evaluations); FD on MNIST flat from 12 to 60 levels


@dataclass(frozen=True)
class SampleConfig:
    n: int = option(64, "number of images", low=1, high=4096, label="number of images")
    steps_per_level: int | None = option(None, "T (default: the checkpoint's)", low=1, high=10_000)
    step_size: float | None = option(None, "ε, paper form (default: the step-size rule for T)",
                                     low=0, low_open=True, label="step size ε")
    denoise: bool = option(True, "skip the final Tweedie step x + σ_L² s(x, σ_L)")  # --no-denoise
    mode: str = option("auto", "heun (probability-flow ODE) | annealed | plain | auto (the "
                       "checkpoint's own choice)", choices=("auto", "heun", "annealed", "plain"))
    ode_steps: int | None = option(None, "noise levels of the heun sampler (2n − 1 network "
                                   "evaluations; default: the checkpoint's)", low=2, high=10_000)
    seed: int = option(0, "seed of the starting images and the noise", low=0, high=2**32 - 1)
    frames: int = option(16, "grids kept along the way (one per level, subsampled)", low=1, high=1000)
    init: str = option("uniform", "where the chains start: x_0 ~ U[0, 1] (NCSN's images start)",
                       choices=("uniform",))

    def validate(self) -> None:
        check_fields(self)


@dataclass
class ImageSamples:
    images: np.ndarray               # (N, 28, 28) float32 in [0, 1] (clipped)
    raw: np.ndarray                  # (N, 28, 28) the sampler's output before clipping
    frames: np.ndarray               # (F, N, 28, 28) clipped images after selected levels
    frame_levels: list[int]          # level index (0-based) of each frame
    frame_sigmas: list[float]
    seconds: float
    nfe: int
    cpu_seconds: float = 0.0             # CPU time of this process while sampling
    schedule: dict = field(default_factory=dict)


def rule_step_size(meta: dict, steps_per_level: int) -> float:
    """ε (paper form) for T steps per level: the checkpoint's own ε when T is the T it was saved
    with, else the NCSNv2 step-size rule at its σ_L and γ."""
    sch = meta.get("schedule", {})
    if steps_per_level == int(sch.get("steps_per_level", -1)) and "step_size" in sch:
        return float(sch["step_size"])
    sigmas = sch.get("sigmas") or []
    if not sigmas:
        raise ValueError("The checkpoint has no noise schedule.")
    return ncsnv2_step_size(float(sigmas[-1]), float(sch.get("gamma", 1.08)), steps_per_level)


def chosen_mode(meta: dict, cfg: SampleConfig) -> str:
    if cfg.mode != "auto":
        return cfg.mode
    own = (meta.get("sampler") or {}).get("mode")
    if own in ("heun", "annealed", "plain"):
        return own
    return "plain" if meta.get("objective", "ncsn") == "dsm" else "annealed"


def planned(meta: dict, cfg: SampleConfig) -> dict:
    """What sample_images will run for this checkpoint and config: mode, levels, total_steps …"""
    build = build_ode_sigmas if chosen_mode(meta, cfg) == "heun" else build_schedule
    return build(meta, cfg)[1]


def build_ode_sigmas(meta: dict, cfg: SampleConfig) -> tuple[tuple[float, ...], dict]:
    """The Heun sampler's σ grid over the checkpoint's trained range (with what was chosen)."""
    sch = meta.get("schedule", {})
    if meta.get("objective", "ncsn") == "dsm" or sch.get("noise") != "continuous":
        raise ValueError("The ODE sampler needs a model trained on continuous σ (--noise continuous); "
                         "sample this checkpoint with annealed or plain Langevin.")
    n = int(cfg.ode_steps or (meta.get("sampler") or {}).get("ode_steps", DEFAULT_ODE_STEPS))
    sigmas = karras_sigmas(n, float(sch["sigma_min"]), float(sch["sigma_max"]))
    info = {"mode": "heun", "ode_steps": n, "levels": n, "sigma_max": sigmas[0],
            "sigma_min": sigmas[-2], "denoise": True, "total_steps": n}
    return sigmas, info


def build_schedule(meta: dict, cfg: SampleConfig) -> tuple[LangevinSchedule, dict]:
    """The Langevin schedule for a checkpoint and a sampling config (with what was chosen)."""
    sch = meta.get("schedule", {})
    objective = meta.get("objective", "ncsn")
    mode = chosen_mode(meta, cfg)
    if mode == "heun":
        mode = "annealed"   # a Langevin schedule was asked for: the model's levels
    T = int(cfg.steps_per_level or sch.get("steps_per_level", 5))
    if T < 1:
        raise ValueError("Steps per level must be at least 1.")
    sigmas = [float(s) for s in sch.get("sigmas", [])]
    if not sigmas:
        raise ValueError("The checkpoint has no noise schedule.")
    sigma_last = sigmas[-1]
    eps = float(cfg.step_size) if cfg.step_size is not None else rule_step_size(meta, T)
    if not eps > 0:
        raise ValueError("The step size ε must be positive.")
    if mode == "annealed":
        if objective == "dsm":
            raise ValueError("A single-σ model cannot be sampled by annealed Langevin; use plain.")
        used = tuple(sigmas)
        steps = T
    else:
        # Plain Langevin at the last (for DSM: the only) σ, same total budget as annealing.
        budget_levels = int(sch.get("budget_levels", len(sigmas)))
        used = (sigma_last,)
        steps = T * budget_levels
    schedule = LangevinSchedule(used, annealed_step_sizes(eps, used), steps, denoise=cfg.denoise,
                                blowup_radius=1e4)
    info = {"mode": mode, "steps_per_level": steps, "levels": len(used), "step_size": eps,
            "sigma_max": used[0], "sigma_min": sigma_last, "denoise": cfg.denoise,
            "total_steps": steps * len(used)}
    return schedule, info


def sample_images(model: torch.nn.Module, meta: dict, cfg: SampleConfig, device="cpu",
                  progress=None) -> ImageSamples:
    """Run the sampler; `progress(done, total, images)` is called after each noise level with the
    current images ((N, 28, 28) float32 in [0, 1], for a live grid; for the ODE sampler the
    current denoised estimate x + σ² s, which sharpens as σ falls)."""
    cfg.validate()
    model = model.to(device).eval()
    g = torch.Generator(device="cpu").manual_seed(int(cfg.seed))
    t0, c0 = time.perf_counter(), time.process_time()
    if chosen_mode(meta, cfg) == "heun":
        result, sigmas, info = _run_heun(model, meta, cfg, g, device, progress)
    else:
        result, sigmas, info = _run_langevin(model, meta, cfg, g, device, progress)
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    raw = result.x.detach().cpu().numpy()[:, 0]
    frames = result.frames.detach().cpu().numpy()[:, :, 0] if result.frames is not None else raw[None]
    levels = list(result.frame_levels)
    # Frame 0 is the initial state; then one per level (the last: the denoised images).
    keep = _spread(len(frames), cfg.frames)
    sig = [sigmas[min(levels[i], len(sigmas) - 1)] for i in keep]
    return ImageSamples(images=np.clip(raw, 0, 1).astype(np.float32), raw=raw.astype(np.float32),
                        frames=np.clip(frames[keep], 0, 1).astype(np.float32),
                        frame_levels=[levels[i] for i in keep], frame_sigmas=sig,
                        seconds=seconds, nfe=result.nfe, schedule=info, cpu_seconds=cpu_seconds)


def _run_langevin(model, meta, cfg, g, device, progress):
    schedule, info = build_schedule(meta, cfg)
    x0 = torch.rand(cfg.n, 1, 28, 28, generator=g)          # NCSN's start: uniform noise
    L, T = len(schedule.sigmas), schedule.steps_per_level
    recorder = FrameRecorder(every=T)  # the start, the end of each level, the denoised images

    def callback(step_info):
        recorder(step_info)
        if progress is not None and step_info["step"] and step_info["step"] % T == 0 \
                and not step_info.get("final"):
            progress(step_info["step"] // T, L, _as_images(step_info["x"]))

    result = langevin_dynamics(score_fn_of(model, meta), x0.to(device), schedule,
                               rng=g if str(device) == "cpu" else None, callback=callback)
    return recorder.langevin_result(result), schedule.sigmas, info


def _run_heun(model, meta, cfg, g, device, progress):
    sigmas, info = build_ode_sigmas(meta, cfg)
    x0 = sigmas[0] * torch.randn(cfg.n, 1, 28, 28, generator=g)   # the VE prior N(0, σ_max² I)
    n = len(sigmas) - 1
    frames, labels = [], []

    def callback(step_info):
        # Frames show the denoised estimate x + σ² s (the start: the noise; the end: the images).
        first, last = step_info["step"] == 0, step_info.get("final")
        shown = step_info["x"] if first or last else step_info["denoised"]
        frames.append(shown.detach().clone())
        labels.append(step_info["level"])
        if progress is not None and not first:
            progress(step_info["step"], n, _as_images(shown))

    result = heun_sampler(score_fn_of(model, meta), x0.to(device), sigmas, callback=callback)
    return SampleResult(x=result.x, frames=torch.stack(frames), frame_levels=labels, nfe=result.nfe), \
        sigmas, info


def _as_images(x: torch.Tensor) -> np.ndarray:
    return np.clip(x.detach().cpu().numpy()[:, 0], 0, 1).astype(np.float32)


def _spread(total: int, k: int) -> list[int]:
    if total <= k:
        return list(range(total))
    return sorted(set(int(round(v)) for v in np.linspace(0, total - 1, k)))
