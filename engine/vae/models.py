"""The networks of the score-based VAE (SEEDS.md §6), MLPs on flattened binarised MNIST.

* `GaussianEncoder`: q_φ(z|x) = N(μ_φ(x), diag σ_φ(x)²), sampled as z = μ + σ·ε (reparameterised);
* `ImplicitEncoder`: z = g_φ(x, ε), ε ~ N(0, I_noise) concatenated to the input — no density formula;
* `BernoulliDecoder`: p_θ(x|z) = Π Bernoulli(x_i; sigmoid(logit_i(z)));
* `ConditionalScore`: s_ψ(z, x) ≈ ∇_z log q_φ(z|x), an MLP on [x, z] (Softplus: SSM differentiates
  it twice);
* `LatentVAE`: the three together, with the JSON spec the checkpoint registry rebuilds it from
  (model kind "vae_mnist"). The score net exists for the implicit encoder only: the Gaussian one has
  its entropy in closed form.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.models.registry import register

ENCODERS = ("implicit", "gaussian")


def mlp(sizes, activation=nn.Tanh) -> nn.Sequential:
    """Linear layers of the given widths with `activation` between them (none after the last)."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


class GaussianEncoder(nn.Module):
    def __init__(self, data_dim: int, latent: int, hidden: int):
        super().__init__()
        self.latent, self.noise_dim = latent, latent
        self.trunk = mlp([data_dim, hidden, hidden], nn.Tanh)
        self.trunk.append(nn.Tanh())
        self.mean = nn.Linear(hidden, latent)
        self.log_std = nn.Linear(hidden, latent)

    def forward(self, x):
        """(μ(x), log σ(x))."""
        h = self.trunk(_flat(x))
        return self.mean(h), self.log_std(h)

    def sample(self, x, eps: torch.Tensor | None = None, generator=None) -> torch.Tensor:
        """z = μ(x) + σ(x)·ε."""
        mean, log_std = self(x)
        if eps is None:
            eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        return mean + log_std.exp() * eps


class ImplicitEncoder(nn.Module):
    def __init__(self, data_dim: int, latent: int, hidden: int, noise_dim: int):
        super().__init__()
        self.latent, self.noise_dim = latent, noise_dim
        self.net = mlp([data_dim + noise_dim, hidden, hidden, latent], nn.Tanh)

    def sample(self, x, eps: torch.Tensor | None = None, generator=None) -> torch.Tensor:
        """z = g_φ(x, ε) with ε ~ N(0, I) concatenated to the flattened x."""
        x = _flat(x)
        if eps is None:
            eps = torch.randn((x.shape[0], self.noise_dim), generator=generator, dtype=x.dtype)
        return self.net(torch.cat([x, eps], dim=-1))


class BernoulliDecoder(nn.Module):
    def __init__(self, data_dim: int, latent: int, hidden: int):
        super().__init__()
        self.net = mlp([latent, hidden, hidden, data_dim], nn.Tanh)

    def forward(self, z):
        """The logits of p_θ(x|z)."""
        return self.net(z)


class ConditionalScore(nn.Module):
    def __init__(self, data_dim: int, latent: int, hidden: int):
        super().__init__()
        self.net = mlp([data_dim + latent, hidden, hidden, latent], nn.Softplus)

    def forward(self, z, x):
        """s_ψ(z, x) ≈ ∇_z log q(z|x); x is repeated when z holds several samples per x."""
        x = _flat(x)
        if z.shape[0] != x.shape[0]:
            x = x.repeat(z.shape[0] // x.shape[0], 1)
        return self.net(torch.cat([x, z], dim=-1))


class LatentVAE(nn.Module):
    def __init__(self, encoder: str = "implicit", latent: int = 8, hidden: int = 256,
                 noise_dim: int = 8, score_hidden: int = 256, data_dim: int = 784):
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"Unknown encoder {encoder!r}; choose implicit or gaussian.")
        self.kind, self.latent, self.data_dim = encoder, latent, data_dim
        self._spec = {"kind": "vae_mnist", "encoder": encoder, "latent": latent, "hidden": hidden,
                      "noise_dim": noise_dim, "score_hidden": score_hidden, "data_dim": data_dim}
        if encoder == "gaussian":
            self.encoder = GaussianEncoder(data_dim, latent, hidden)
            self.score = None
        else:
            self.encoder = ImplicitEncoder(data_dim, latent, hidden, noise_dim)
            self.score = ConditionalScore(data_dim, latent, score_hidden)
        self.decoder = BernoulliDecoder(data_dim, latent, hidden)

    def spec(self) -> dict:
        return dict(self._spec)

    def posterior_score(self, z, x) -> torch.Tensor:
        """∇_z log q(z|x): exact for the Gaussian encoder, the score net for the implicit one."""
        if self.score is not None:
            return self.score(z, x)
        mean, log_std = self.encoder(x)
        if z.shape[0] != mean.shape[0]:
            reps = z.shape[0] // mean.shape[0]
            mean, log_std = mean.repeat(reps, 1), log_std.repeat(reps, 1)
        return -(z - mean) / (2 * log_std).exp()


@register("vae_mnist")
def _build(**spec) -> LatentVAE:
    return LatentVAE(**spec)
