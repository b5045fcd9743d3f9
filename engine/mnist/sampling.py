"""Sampling MNIST score models: annealed Langevin for the NCSN, plain Langevin for the single-σ
baseline, both through engine.samplers.langevin.langevin_dynamics (paper form x ← x + (α/2)s + √α z).

An image checkpoint's JSON holds "schedule": {"sigmas", "gamma", "steps_per_level",
"step_size" (paper form ε, α_i = ε σ_i²/σ_L²), ...} and "objective": "ncsn" | "dsm".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from engine.models.score import score_fn_of
from engine.samplers.langevin import FrameRecorder, LangevinSchedule, langevin_dynamics
from engine.samplers.schedules import annealed_step_sizes, ncsnv2_step_size
from engine.training.flags import check_fields, option


@dataclass(frozen=True)
class SampleConfig:
    n: int = option(64, "number of images", low=1, high=4096, label="number of images")
    steps_per_level: int | None = option(None, "T (default: the checkpoint's)", low=1, high=10_000)
    step_size: float | None = option(None, "ε, paper form (default: the step-size rule for T)",
                                     low=0, low_open=True, label="step size ε")
    denoise: bool = True                 # final Tweedie step x + σ_L² s(x, σ_L)
    mode: str = option("auto", "annealed | plain | auto (by the objective)",
                       choices=("auto", "annealed", "plain"))
    seed: int = option(0, low=0, high=2**32 - 1)
    frames: int = option(16, "grids kept along the way (one per level, subsampled)", low=1, high=1000)
    init: str = "uniform"                # x_0 ~ U[0, 1] (NCSN's images start)

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


def build_schedule(meta: dict, cfg: SampleConfig) -> tuple[LangevinSchedule, dict]:
    """The Langevin schedule for a checkpoint and a sampling config (with what was chosen)."""
    sch = meta.get("schedule", {})
    objective = meta.get("objective", "ncsn")
    mode = cfg.mode if cfg.mode != "auto" else ("plain" if objective == "dsm" else "annealed")
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
    current images ((N, 28, 28) float32 in [0, 1], for a live grid)."""
    cfg.validate()
    schedule, info = build_schedule(meta, cfg)
    g = torch.Generator(device="cpu").manual_seed(int(cfg.seed))
    x0 = torch.rand(cfg.n, 1, 28, 28, generator=g)
    model = model.to(device).eval()
    L, T = len(schedule.sigmas), schedule.steps_per_level
    recorder = FrameRecorder(every=T)  # the start, the end of each level, the denoised images

    def callback(info):
        recorder(info)
        if progress is not None and info["step"] and info["step"] % T == 0 and not info.get("final"):
            progress(info["step"] // T, L, _as_images(info["x"]))

    t0, c0 = time.perf_counter(), time.process_time()
    result = langevin_dynamics(score_fn_of(model, meta), x0.to(device), schedule,
                               rng=g if str(device) == "cpu" else None, callback=callback)
    result = recorder.langevin_result(result)
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    raw = result.x.detach().cpu().numpy()[:, 0]
    frames = result.frames.detach().cpu().numpy()[:, :, 0] if result.frames is not None else raw[None]
    levels = list(result.frame_levels)
    # Frame 0 is the initial state; then one per level (and the denoised one at the end).
    keep = _spread(len(frames), cfg.frames)
    sig = [schedule.sigmas[min(levels[i], L - 1)] for i in keep]
    return ImageSamples(images=np.clip(raw, 0, 1).astype(np.float32), raw=raw.astype(np.float32),
                        frames=np.clip(frames[keep], 0, 1).astype(np.float32),
                        frame_levels=[levels[i] for i in keep], frame_sigmas=sig,
                        seconds=seconds, nfe=result.nfe, schedule=info, cpu_seconds=cpu_seconds)


def _as_images(x: torch.Tensor) -> np.ndarray:
    return np.clip(x.detach().cpu().numpy()[:, 0], 0, 1).astype(np.float32)


def _spread(total: int, k: int) -> list[int]:
    if total <= k:
        return list(range(total))
    return sorted(set(int(round(v)) for v in np.linspace(0, total - 1, k)))
