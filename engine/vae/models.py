"""The networks of the score-based VAE (SEEDS.md §6), MLPs on flattened binarised MNIST.

* `GaussianEncoder`: q_φ(z|x) = N(μ_φ(x), diag σ_φ(x)²), sampled as z = μ + σ·ε (reparameterised);
* `ImplicitEncoder`: z = g_φ(x, ε), ε ~ N(0, I_noise) concatenated to the input — no density formula;
* `BernoulliDecoder`: p_θ(x|z) = Π Bernoulli(x_i; sigmoid(logit_i(z)));
* `ConditionalScore`: s_ψ(z, x) ≈ ∇_z log q_φ(z|x), an MLP on [x, z] (Softplus: SSM differentiates
  it twice), fed z relative to the encoder's noise-free output (`LatentVAE.learned_score`);
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
    """z = g_φ(x, ε) = MLP(tanh(A x + B ε + b)), ε ~ N(0, I): the first layer of an MLP on the
    concatenation [x, ε], written as two linear maps so that each is initialised at its own fan-in.
    With one layer over [x, ε] (fan-in 784 + noise) ε starts almost unheard: the posterior of a
    digit starts 0.02 wide and the score net cannot follow it (see README)."""

    def __init__(self, data_dim: int, latent: int, hidden: int, noise_dim: int):
        super().__init__()
        self.latent, self.noise_dim = latent, noise_dim
        self.data_in = nn.Linear(data_dim, hidden)
        self.noise_in = nn.Linear(noise_dim, hidden, bias=False)
        self.net = nn.Sequential(nn.Tanh(), mlp([hidden, hidden, latent], nn.Tanh))

    def sample(self, x, eps: torch.Tensor | None = None, generator=None) -> torch.Tensor:
        x = _flat(x)
        if eps is None:
            eps = torch.randn((x.shape[0], self.noise_dim), generator=generator, dtype=x.dtype)
        return self.net(self.data_in(x) + self.noise_in(eps))


class BernoulliDecoder(nn.Module):
    def __init__(self, data_dim: int, latent: int, hidden: int):
        super().__init__()
        self.net = mlp([latent, hidden, hidden, data_dim], nn.Tanh)

    def forward(self, z):
        """The logits of p_θ(x|z)."""
        return self.net(z)


class ConditionalScore(nn.Module):
    """s_ψ(z, x) = e^b ⊙ MLP(softplus(A x + C (e^a ⊙ z) + c)): an MLP on [x, z] (first layer as two
    maps, each initialised at its own fan-in) with learned log-gains a, b per latent dimension. A
    posterior of width σ has a score of size 1/σ that changes over a distance σ; the gains reach
    those scales exponentially fast under Adam, where the weights alone grow only linearly and the
    score net falls behind a narrowing posterior (see README)."""

    def __init__(self, data_dim: int, latent: int, hidden: int):
        super().__init__()
        self.data_in = nn.Linear(data_dim, hidden)
        self.z_in = nn.Linear(latent, hidden, bias=False)
        self.net = nn.Sequential(nn.Softplus(), mlp([hidden, hidden, latent], nn.Softplus))
        self.log_gain_in = nn.Parameter(torch.zeros(latent))
        self.log_gain_out = nn.Parameter(torch.zeros(latent))

    def forward(self, z, x):
        """s_ψ(z, x) ≈ ∇_z log q(z|x); x is repeated when z holds several samples per x."""
        x = _flat(x)
        if z.shape[0] != x.shape[0]:
            x = x.repeat(z.shape[0] // x.shape[0], 1)
        h = self.data_in(x) + self.z_in(z * self.log_gain_in.exp())
        return self.net(h) * self.log_gain_out.exp()


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

    def learned_score(self, z, x) -> torch.Tensor:
        """s_ψ(z, x), given z relative to the encoder's noise-free output c(x) = g_φ(x, 0): a
        function of (z, x) like any other (c is detached; the score's SSM minimiser is still
        ∇_z log q(z|x)), which spares the score net re-learning the encoder to find the posterior."""
        with torch.no_grad():
            xf = _flat(x)
            centre = self.encoder.sample(xf, eps=torch.zeros((xf.shape[0], self.encoder.noise_dim),
                                                              dtype=xf.dtype))
        if z.shape[0] != centre.shape[0]:
            centre = centre.repeat(z.shape[0] // centre.shape[0], 1)
        return self.score(z - centre, x)

    def posterior_score(self, z, x) -> torch.Tensor:
        """∇_z log q(z|x): the score net when there is one (implicit encoder), else the Gaussian's."""
        if self.score is not None:
            return self.learned_score(z, x)
        mean, log_std = self.encoder(x)
        if z.shape[0] != mean.shape[0]:
            reps = z.shape[0] // mean.shape[0]
            mean, log_std = mean.repeat(reps, 1), log_std.repeat(reps, 1)
        return -(z - mean) / (2 * log_std).exp()


@register("vae_mnist")
def _build(**spec) -> LatentVAE:
    return LatentVAE(**spec)
