"""The one score adapter: a trained network and its checkpoint meta → score_fn for the samplers.

A score model is read one of two ways, named by what the sampler passes as the second argument:

  reading "sigma"  score_fn(x, σ) ≈ ∇_x log p_σ(x)   Langevin / annealed Langevin, metrics
  reading "time"   score_fn(x, t) ≈ ∇_x log p_t(x)   reverse SDE, PC, ODE, likelihood, with its SDE

  kind           sigma                                   time
  mlp2d, ncsn2d  s_θ(x, σ), σ raised to the smallest      —
                 trained σ (plain Langevin asks σ = 0)
  ncsn_unet      s_θ(x, σ)                               the VE SDE σ(t) = σ_min (σ_max/σ_min)^t over
                                                         its trained range: s_θ(x, σ(t))
  sde_mlp2d      —                                       s_θ(x, t) of the SDE in meta['sde']
  tutorial_unet  —                                       s_θ(x, t) of the tutorial VE SDE (σ = 25)

The σ reading runs without gradients; the time reading keeps autograd (the likelihood's divergence
needs it; the SDE samplers switch it off themselves). Inputs are cast to the model's device and
dtype and the score comes back in the caller's (the likelihood works in float64), and a batch of
the wrong data shape is refused in one sentence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from engine.sde.sdes import SDE, VESDE, sde_from_dict
from engine.store.checkpoints import CheckpointError, load_model

ScoreFn = Callable[[torch.Tensor, float], torch.Tensor]
READINGS = ("sigma", "time")
SIGMA_NETS = ("mlp2d", "ncsn2d", "ncsn_unet")
TIME_NETS = ("sde_mlp2d", "tutorial_unet")
IMAGE_SHAPE = (1, 28, 28)


@dataclass(frozen=True)
class LoadedScore:
    score_fn: ScoreFn
    meta: dict
    sde: SDE | None          # the SDE of the time reading; None for the σ reading
    model: nn.Module


def trained_sigmas(meta: dict) -> list[float]:
    """The noise levels a σ-conditional model was trained at (2D: meta['sigmas']; MNIST: the
    schedule's)."""
    sigmas = meta.get("sigmas") or (meta.get("schedule") or {}).get("sigmas") or []
    return [float(s) for s in sigmas]


def sde_of(meta: dict) -> SDE:
    """The SDE a checkpoint's time reading belongs to (see the module docstring)."""
    spec = meta.get("model") or {}
    kind = spec.get("kind")
    if kind == "tutorial_unet":
        return sde_from_dict(meta.get("sde") or {"sde": "ve_tutorial", "sigma": spec.get("sigma", 25.0)})
    if kind == "ncsn_unet":
        schedule = meta.get("schedule") or {}
        return VESDE(float(schedule["sigma_min"]), float(schedule["sigma_max"]), eps=1e-5)
    if not isinstance(meta.get("sde"), dict):
        raise CheckpointError("This checkpoint does not say which SDE it was trained with, so it "
                              "cannot be used by the SDE samplers.")
    return sde_from_dict(meta["sde"])


def score_fn_of(model: nn.Module, meta: dict, reading: str = "sigma") -> ScoreFn:
    """score_fn(x, σ) or score_fn(x, t) of a model rebuilt from meta['model'] (see above)."""
    kind = (meta.get("model") or {}).get("kind")
    if reading not in READINGS:
        raise ValueError(f"Unknown reading {reading!r}; choose sigma or time.")
    if kind not in SIGMA_NETS + TIME_NETS:
        raise CheckpointError(f"A {kind!r} model is not a score model.")
    if reading == "sigma" and kind not in SIGMA_NETS:
        raise CheckpointError(f"A {kind!r} model is a time-conditional score s(x, t); sample it with "
                              f"the SDE samplers (sde, pc or ode), not with Langevin.")
    param = next(model.parameters(), None)   # None: a parameterless model runs on x as it is
    device, dtype = (param.device, param.dtype) if param is not None else (None, None)
    shape = IMAGE_SHAPE if kind.endswith("_unet") else (int(meta["model"].get("dim", 2)),)

    def run(x: torch.Tensor, cond) -> torch.Tensor:
        if tuple(x.shape[1:]) != shape:
            raise ValueError(f"The checkpoint's model works in {math.prod(shape)} dimensions, not "
                             f"{math.prod(x.shape[1:])}.")
        out = model(x.to(device=device, dtype=dtype), cond)
        return out.to(device=x.device, dtype=x.dtype)

    if reading == "sigma":
        sigmas = trained_sigmas(meta)
        floor = min(sigmas) if sigmas else 0.0
        conditional = bool(getattr(model, "noise_conditional", True))

        def sigma_score(x, sigma=0.0):
            if conditional and not torch.is_tensor(sigma):
                sigma = max(float(sigma), floor)
            with torch.no_grad():
                return run(x, sigma)
        return sigma_score
    if kind == "ncsn_unet":
        sde = sde_of(meta)

        def ncsn_time_score(x, t):
            scalar = not torch.is_tensor(t) or t.dim() == 0
            return run(x, float(sde.sigma(float(t))) if scalar else sde.sigma(t))
        return ncsn_time_score
    sde_of(meta)  # a time reading needs the SDE: refuse a checkpoint that does not name it
    return run


def load_score(path, device="cpu", reading: str = "sigma") -> LoadedScore:
    """Read a checkpoint (safetensors + JSON, no pickle) and adapt it: the score_fn, the meta and,
    for the time reading, the SDE. CheckpointError (one sentence) for anything unusable."""
    model, meta = load_model(path, device)
    score_fn = score_fn_of(model, meta, reading)
    return LoadedScore(score_fn=score_fn, meta=meta, model=model,
                       sde=sde_of(meta) if reading == "time" else None)
