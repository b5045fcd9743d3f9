"""Time-conditional score models s_θ(x, t) for the SDE view, and the continuous training objective.

2D ("sde_mlp2d"): an MLP on [x / c_in(t), Fourier(t)] whose output is divided by std(t) (the
tutorial's parametrisation: the net predicts −z), where c_in(t) = √(m(t)² a² + std(t)²) keeps the
input at unit scale (a = the data's scale). The SDE is part of the model spec, so a checkpoint
knows which marginal std it divides by.

MNIST: engine.models.unet' "tutorial_unet" (Yang Song's tutorial U-Net, VE SDE dx = 25^t dw) with
engine.sde.sdes.TutorialVESDE, whose std(t) is exactly the one that net divides by.

Objective (per example, summed over dimensions, averaged over the batch), t ~ U(eps_train, 1),
x(t) = m(t) x(0) + std(t) z:
    default    λ(t) = std(t)² ∝ 1/E‖∇log p(x(t)|x(0))‖²:   ‖std(t)·s_θ(x(t), t) + z‖²
    likelihood λ(t) = g(t)²:   g(t)² ‖s_θ + z/std(t)‖² = (g(t)/std(t))² ‖std(t)·s_θ + z‖²
(score_sde halves it; we do not — the minimiser is the same.)
"""

from __future__ import annotations

import torch
from torch import nn

from engine.models.unet import GaussianFourier as Fourier  # the same time embedding as the U-Nets
from engine.models.registry import register
from engine.sde.sdes import SDE, sde_from_dict

WEIGHTINGS = ("default", "likelihood")


class TimeScoreMLP(nn.Module):
    """s_θ(x, t) = MLP([x/c_in(t), Fourier(t)]) / std(t) for low-dimensional data."""

    def __init__(self, sde: dict, dim: int = 2, hidden: int = 128, layers: int = 3,
                 embed: int = 32, fourier_scale: float = 8.0, data_scale: float = 1.0):
        super().__init__()
        self.sde_spec = dict(sde)
        self.sde: SDE = sde_from_dict(sde)
        self.data_scale = float(data_scale)
        self.embed = Fourier(embed, fourier_scale)
        mods: list[nn.Module] = [nn.Linear(dim + embed, hidden), nn.SiLU()]
        for _ in range(layers - 1):
            mods += [nn.Linear(hidden, hidden), nn.SiLU()]
        mods.append(nn.Linear(hidden, dim))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        m = torch.as_tensor(self.sde.mean_coef(t), dtype=x.dtype)
        std = torch.as_tensor(self.sde.std(t), dtype=x.dtype)
        c_in = torch.sqrt(m**2 * self.data_scale**2 + std**2)
        h = torch.cat([x / c_in[:, None], self.embed(t)], dim=-1)
        return self.net(h) / std[:, None]


@register("sde_mlp2d")
def build_sde_mlp2d(sde: dict, dim: int = 2, hidden: int = 128, layers: int = 3, embed: int = 32,
                    fourier_scale: float = 8.0, data_scale: float = 1.0) -> TimeScoreMLP:
    return TimeScoreMLP(sde, dim, hidden, layers, embed, fourier_scale, data_scale)


def continuous_loss(model, sde: SDE, x0: torch.Tensor, generator: torch.Generator | None = None,
                    weighting: str = "default", eps: float = 1e-5) -> torch.Tensor:
    """The continuous-time DSM objective (see the module docstring), a scalar."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"Unknown weighting {weighting!r}; choose default or likelihood.")
    n = x0.shape[0]
    t = eps + (1 - eps) * torch.rand(n, generator=generator, dtype=x0.dtype)
    z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
    mean, std = sde.marginal_prob(x0, t)
    xt = mean + std * z
    s = model(xt, t)
    per = ((std * s + z) ** 2).flatten(1).sum(1)
    if weighting == "likelihood":
        g = torch.as_tensor(sde.diffusion(t), dtype=x0.dtype)
        per = per * (g / std.flatten()) ** 2
    return per.mean()


def score_fn_of(model: nn.Module):
    """score_fn(x, t) for the samplers and the likelihood (keeps autograd if the caller wants);
    inputs of another dtype (the likelihood works in float64) are cast to the model's and back."""
    dtype = next(model.parameters()).dtype

    def score_fn(x, t):
        if x.dtype == dtype:
            return model(x, t)
        return model(x.to(dtype), t).to(x.dtype)
    return score_fn


def sde_of_checkpoint(meta: dict) -> SDE:
    """The SDE a checkpoint was trained with (meta['sde'])."""
    spec = meta.get("sde")
    if not isinstance(spec, dict):
        raise ValueError("This checkpoint does not say which SDE it was trained with, so it cannot "
                         "be used by the SDE samplers.")
    return sde_from_dict(spec)
