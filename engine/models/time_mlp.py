"""Time-conditional score models s_θ(x, t) for the SDE view (trained by engine.training.sde with
the continuous objective engine.losses.sde_loss).

2D ("sde_mlp2d"): an MLP on [x / c_in(t), Fourier(t)] whose output is divided by std(t) (the
tutorial's parametrisation: the net predicts −z), where c_in(t) = √(m(t)² a² + std(t)²) keeps the
input at unit scale (a = the data's scale). The SDE is part of the model spec, so a checkpoint
knows which marginal std it divides by.

MNIST: engine.models.unet' "tutorial_unet" (Yang Song's tutorial U-Net, VE SDE dx = 25^t dw) with
engine.sde.sdes.TutorialVESDE, whose std(t) is exactly the one that net divides by.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.models.unet import GaussianFourier as Fourier  # the same time embedding as the U-Nets
from engine.models.registry import register
from engine.sde.sdes import SDE, sde_from_dict


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
