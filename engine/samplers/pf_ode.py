"""Deterministic sampling of a noise-conditional score model s(x, σ) by its probability-flow ODE.

For the VE SDE, with the noise level σ itself as the time variable (Karras et al. 2022, eq. 4
with s(t) = 1, σ(t) = t), the ODE that carries p_σmax to p_σ for every σ is
    dx/dσ = −σ ∇_x log p_σ(x)  ≈ −σ s_θ(x, σ).
`heun_sampler` solves it on a σ grid (schedules.karras_sigmas: σ_0 = σ_max > … > σ_{n−1} = σ_min,
then 0) with Heun's second-order method, and takes the last step to σ = 0 with Euler, which is
exactly Tweedie's denoising x + σ² s(x, σ) (the final denoising step of NCSNv2). 2n − 1 score
evaluations for n noise levels.
"""

from __future__ import annotations

import torch

from engine.samplers.langevin import SampleResult, SamplerDiverged, ScoreFn


def heun_sampler(score_fn: ScoreFn, x_init: torch.Tensor, sigmas, callback=None,
                 blowup_radius: float = 1e4) -> SampleResult:
    """Integrate dx/dσ = −σ s(x, σ) along `sigmas` (decreasing, last 0). callback(info) sees
    {"x", "step", "sigma", "denoised"} at step 0 and after every step ("final": True on the last);
    "denoised" is the current Tweedie estimate x + σ² s of the clean image."""
    x = x_init.clone()
    notify = callback or (lambda info: None)
    nfe = 0
    steps = len(sigmas) - 1
    notify({"x": x, "step": 0, "level": 0, "sigma": float(sigmas[0]), "denoised": None})
    for i in range(steps):
        sigma, nxt = float(sigmas[i]), float(sigmas[i + 1])
        score = score_fn(x, sigma)
        slope = -sigma * score                                   # dx/dσ at (x, σ)
        denoised = x + sigma**2 * score
        x_next = x + (nxt - sigma) * slope                       # Euler
        nfe += 1
        if nxt > 0:                                              # Heun's correction
            slope_next = -nxt * score_fn(x_next, nxt)
            x_next = x + (nxt - sigma) * (slope + slope_next) / 2
            nfe += 1
        x = x_next
        if not torch.isfinite(x).all() or x.abs().max() > blowup_radius:
            raise SamplerDiverged(f"The ODE sampler diverged at σ = {nxt:.3g} (step {i + 1} of {steps}); "
                                  f"use more steps, or check that the model is a noise-conditional "
                                  f"score model.", step=i + 1, level=i)
        notify({"x": x, "step": i + 1, "level": i, "sigma": nxt, "denoised": denoised,
                "final": i == steps - 1})
    return SampleResult(x=x, nfe=nfe)
