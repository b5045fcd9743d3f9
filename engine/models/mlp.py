"""Small score networks for 2D (or low-dimensional) data.

Every score model has the same call: ``model(x, sigma)`` with x of shape (N, d) and sigma a float or
a tensor of per-example σ (shape (N,) or (N, 1)); it returns s_θ(x, σ) ≈ ∇_x log p_σ(x), shape (N, d).

* ``mlp2d`` — ScoreMLP: s_θ(x), σ is ignored. Trained with ESM / ISM / SSM / SSM-VR (score of the
  clean data) or single-σ DSM (score of the data perturbed at that one σ).
* ``ncsn2d`` — NoiseConditionalMLP: s_θ(x, σ) for many noise levels, two conditionings:
    - ``"divide"``: the seeds' (000) and NCSNv2's choice  s_θ(x, σ) = f_θ(x) / σ  — the network never
      sees σ, only the output is rescaled.
    - ``"embed"``: a learned embedding of log σ (random Fourier features → linear) is added to every
      hidden layer, and the output is divided by σ as well (score_sde's ``scale_by_sigma``), so
      f_θ(x, σ) = σ·s_θ(x, σ) ≈ −z stays of order one at every level. The input is also scaled by
      1/√(c² + σ²) (c = ``data_scale``, the data's std) so x + σz reaches the first layer at unit size.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from engine.models.registry import register

ACTIVATIONS = {"softplus": nn.Softplus, "silu": nn.SiLU, "elu": nn.ELU, "tanh": nn.Tanh}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}.")
    return ACTIVATIONS[name]()


def sigma_column(sigma, x: torch.Tensor) -> torch.Tensor:
    """σ as an (N, 1) tensor on x's device/dtype, from a float or a (N,) / (N, 1) / 0-d tensor."""
    if isinstance(sigma, torch.Tensor):
        s = sigma.to(device=x.device, dtype=x.dtype)
        if s.dim() == 0:
            return s.expand(x.shape[0]).unsqueeze(-1)
        return s.reshape(x.shape[0], 1)
    return torch.full((x.shape[0], 1), float(sigma), device=x.device, dtype=x.dtype)


class ScoreMLP(nn.Module):
    """s_θ(x): d → hidden ×depth → d (the ncsn toy net is 2→128→128→2 with Softplus)."""

    noise_conditional = False

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 2, activation: str = "softplus"):
        super().__init__()
        if dim < 1 or hidden < 1 or depth < 1:
            raise ValueError("dim, hidden and depth must be positive.")
        self.dim, self.hidden, self.depth, self.activation = dim, hidden, depth, activation
        layers: list[nn.Module] = []
        width = dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), _activation(activation)]
            width = hidden
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)

    def spec(self) -> dict:
        return {"kind": "mlp2d", "dim": self.dim, "hidden": self.hidden, "depth": self.depth,
                "activation": self.activation}

    def forward(self, x: torch.Tensor, sigma=None) -> torch.Tensor:  # σ ignored
        return self.net(x)


class NoiseConditionalMLP(nn.Module):
    """s_θ(x, σ) with conditioning "divide" (f_θ(x)/σ) or "embed" (learned σ embedding, then /σ)."""

    noise_conditional = True

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 2, activation: str = "softplus",
                 conditioning: str = "embed", embed_dim: int = 32, data_scale: float = 1.0):
        super().__init__()
        if conditioning not in ("divide", "embed"):
            raise ValueError(f"Unknown conditioning {conditioning!r}; choose divide or embed.")
        if dim < 1 or hidden < 1 or depth < 1:
            raise ValueError("dim, hidden and depth must be positive.")
        self.dim, self.hidden, self.depth, self.activation = dim, hidden, depth, activation
        self.conditioning, self.embed_dim, self.data_scale = conditioning, embed_dim, float(data_scale)
        self.inputs = nn.ModuleList()
        self.acts = nn.ModuleList()
        width = dim
        for _ in range(depth):
            self.inputs.append(nn.Linear(width, hidden))
            self.acts.append(_activation(activation))
            width = hidden
        self.out = nn.Linear(width, dim)
        if conditioning == "embed":
            # Fixed random Fourier frequencies (a buffer, saved with the weights) on log σ.
            g = torch.Generator().manual_seed(0)
            self.register_buffer("freqs", torch.randn(embed_dim // 2, generator=g) * 2.0)
            self.embeds = nn.ModuleList(nn.Linear(2 * (embed_dim // 2), hidden) for _ in range(depth))

    def spec(self) -> dict:
        return {"kind": "ncsn2d", "dim": self.dim, "hidden": self.hidden, "depth": self.depth,
                "activation": self.activation, "conditioning": self.conditioning,
                "embed_dim": self.embed_dim, "data_scale": self.data_scale}

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        s = sigma_column(sigma, x)
        h = x
        if self.conditioning == "embed":
            h = x / torch.sqrt(self.data_scale**2 + s**2)
            angles = torch.log(s) * self.freqs * (2 * math.pi)
            emb = torch.cat([torch.sin(angles), torch.cos(angles)], -1)
            for lin, act, e in zip(self.inputs, self.acts, self.embeds):
                h = act(lin(h) + e(emb))
        else:
            for lin, act in zip(self.inputs, self.acts):
                h = act(lin(h))
        return self.out(h) / s


@register("mlp2d")
def build_mlp2d(**kw) -> ScoreMLP:
    return ScoreMLP(**kw)


@register("ncsn2d")
def build_ncsn2d(**kw) -> NoiseConditionalMLP:
    return NoiseConditionalMLP(**kw)


def make_score_net(objective: str, dim: int = 2, hidden: int = 128, depth: int = 2,
                   activation: str = "softplus", conditioning: str = "embed",
                   data_scale: float = 1.0) -> nn.Module:
    """The network an objective trains: noise-conditional for NCSN, a plain MLP otherwise."""
    if objective == "ncsn":
        return NoiseConditionalMLP(dim, hidden, depth, activation, conditioning, data_scale=data_scale)
    return ScoreMLP(dim, hidden, depth, activation)
