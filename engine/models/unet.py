"""Image score networks sized for a CPU.

One U-Net layout (`SmallUNet`, 28 → 26 → 12 → 5 → 2 and back, as in the score-SDE MNIST tutorial),
two conditionings:
- "ncsn_unet": the noise-conditional score net. Conditioning follows the NCSNv2 rule
  s_θ(x, σ) = f_θ(x, log σ)/σ (the output is divided by σ, so f_θ predicts −z, the
  ε-parametrisation); by default f_θ also sees log σ through a Fourier embedding added to every
  layer (`sigma_embed=False` gives the pure NCSNv2 net f_θ(x)/σ). Shipped with channels
  16/32/64/128 (374k parameters) so that it trains and samples on a 2-core CPU.
  `arch="res"` is the larger NCSN shipped since round 2 (`ResUNet`): padded residual blocks at
  28/14/7 pixels with self-attention at 7×7, and the EDM preconditioning of its input and output
  (Karras et al. 2022) so that one network covers σ from 0.002 to σ_max; still one net
  s_θ(x, σ) conditioned on the noise level, trained by the NCSN loss.
- "tutorial_unet": the model of Yang Song's MNIST score-SDE tutorial, for the benchmark and the
  SDE pages: VE SDE with σ = 25, channels 32/64/128/256, a Gaussian Fourier time embedding
  (scale 30), GroupNorm and SiLU, output divided by std(t) = √((σ^{2t} − 1)/(2 ln σ)).
"""

from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

from engine.models.registry import register
from engine.sde.sdes import TutorialVESDE


# -- shared pieces ---------------------------------------------------------------------------------

class GaussianFourier(nn.Module):
    """[sin(2π W t), cos(2π W t)] with fixed random W ~ N(0, scale²) (a buffer, saved with weights)."""

    def __init__(self, dim: int, scale: float = 30.0, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("W", torch.randn(dim // 2, generator=g) * scale)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        proj = t[:, None] * self.W[None, :] * (2 * math.pi)
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)


def _gn(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(32 if ch % 32 == 0 else _groups(ch), ch)


def _groups(ch: int) -> int:
    for g in (8, 4, 2):
        if ch % g == 0:
            return g
    return 1


# -- the networks ---------------------------------------------------------------------------------

class SmallUNet(nn.Module):
    """A CPU-sized U-Net for 28×28 images: 28 → 26 → 12 → 5 → 2 and back (unpadded convolutions,
    channels c1..c4), a Fourier embedding of the conditioning variable added to every layer,
    GroupNorm and SiLU. The layout is that of the score-SDE MNIST tutorial.

    cond = "sigma": the NCSN net, conditioned on log σ; s_θ(x, σ) = f_θ(x, log σ)/σ (NCSNv2 rule;
                    sigma_embed=False drops the embedding: s_θ(x, σ) = f_θ(x)/σ exactly).
    cond = "ve_time": the tutorial's net, conditioned on t ∈ (0, 1]; s_θ(x, t) = f_θ(x, t)/std(t)
                    with std(t) of engine.sde.sdes.TutorialVESDE (dx = σ^t dw, σ = `sigma`).
    """

    def __init__(self, channels=(32, 64, 128, 256), embed_dim: int = 256, cond: str = "sigma",
                 sigma_embed: bool = True, sigma: float = 25.0, fourier_scale: float | None = None):
        super().__init__()
        if cond not in ("sigma", "ve_time"):
            raise ValueError(f"Unknown conditioning {cond!r}; use 'sigma' or 've_time'.")
        scale = fourier_scale if fourier_scale is not None else (4.0 if cond == "sigma" else 30.0)
        self.config = {"channels": list(channels), "embed_dim": embed_dim, "cond": cond,
                       "sigma_embed": sigma_embed, "sigma": sigma, "fourier_scale": scale}
        self.use_embed = cond == "ve_time" or sigma_embed
        self.sde = TutorialVESDE(sigma) if cond == "ve_time" else None
        c1, c2, c3, c4 = channels
        E = embed_dim
        if self.use_embed:
            self.embed = nn.Sequential(GaussianFourier(E, scale=scale), nn.Linear(E, E))
        self.conv1 = nn.Conv2d(1, c1, 3, stride=1, bias=False)      # 28 → 26
        self.gn1 = nn.GroupNorm(4, c1)
        self.conv2 = nn.Conv2d(c1, c2, 3, stride=2, bias=False)     # 26 → 12
        self.gn2 = _gn(c2)
        self.conv3 = nn.Conv2d(c2, c3, 3, stride=2, bias=False)     # 12 → 5
        self.gn3 = _gn(c3)
        self.conv4 = nn.Conv2d(c3, c4, 3, stride=2, bias=False)     # 5 → 2
        self.gn4 = _gn(c4)
        self.tconv4 = nn.ConvTranspose2d(c4, c3, 3, stride=2, bias=False)                        # 2 → 5
        self.tgn4 = _gn(c3)
        self.tconv3 = nn.ConvTranspose2d(2 * c3, c2, 3, stride=2, output_padding=1, bias=False)  # 5 → 12
        self.tgn3 = _gn(c2)
        self.tconv2 = nn.ConvTranspose2d(2 * c2, c1, 3, stride=2, output_padding=1, bias=False)  # 12 → 26
        self.tgn2 = _gn(c1)
        self.tconv1 = nn.ConvTranspose2d(2 * c1, 1, 3, stride=1)                                 # 26 → 28
        if self.use_embed:
            self.dense = nn.ModuleList(nn.Linear(E, c) for c in (c1, c2, c3, c4, c3, c2, c1))

    def forward(self, x: torch.Tensor, cond) -> torch.Tensor:
        c = torch.as_tensor(cond, dtype=x.dtype, device=x.device)
        if c.ndim == 0:
            c = c.expand(x.shape[0])
        if self.config["cond"] == "sigma":
            scale = c
            emb_in = torch.log(c)
        else:
            scale = self.sde.std(c)
            emb_in = c
        if self.use_embed:
            emb = F.silu(self.embed(emb_in))
            add = [d(emb)[:, :, None, None] for d in self.dense]
        else:
            add = [0.0] * 7
        h1 = F.silu(self.gn1(self.conv1(x) + add[0]))
        h2 = F.silu(self.gn2(self.conv2(h1) + add[1]))
        h3 = F.silu(self.gn3(self.conv3(h2) + add[2]))
        h4 = F.silu(self.gn4(self.conv4(h3) + add[3]))
        h = F.silu(self.tgn4(self.tconv4(h4) + add[4]))
        h = F.silu(self.tgn3(self.tconv3(torch.cat([h, h3], 1)) + add[5]))
        h = F.silu(self.tgn2(self.tconv2(torch.cat([h, h2], 1)) + add[6]))
        h = self.tconv1(torch.cat([h, h1], 1))
        return h / scale[:, None, None, None]


def _norm(ch: int) -> nn.GroupNorm:
    """GroupNorm with groups of (at least) four channels, at most 32 groups."""
    groups = max(1, min(32, ch // 4))
    while ch % groups:
        groups -= 1
    return nn.GroupNorm(groups, ch)


class ResBlock(nn.Module):
    """GN → SiLU → conv → (+ σ embedding) → GN → SiLU → conv, plus a (1×1) skip; the last conv
    starts at zero so that each block starts as the identity."""

    def __init__(self, cin: int, cout: int, embed_dim: int):
        super().__init__()
        self.norm1, self.conv1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(embed_dim, cout)
        self.norm2, self.conv2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.emb(emb)[:, :, None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class SelfAttention(nn.Module):
    """One-head self-attention over the pixels of a (small) feature map, residual."""

    def __init__(self, ch: int):
        super().__init__()
        self.norm, self.qkv, self.out = _norm(ch), nn.Conv2d(ch, 3 * ch, 1), nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, h * w).transpose(-1, -2).unbind(1)
        a = F.scaled_dot_product_attention(q, k, v)            # (n, hw, c)
        return x + self.out(a.transpose(-1, -2).reshape(n, c, h, w))


class ResUNet(nn.Module):
    """The NCSN score net s_θ(x, σ) for 28×28 images, in [0, 1].

    A U-Net F over 28 → 14 → 7 pixels (channels c1, c2, c3; `blocks` residual blocks per
    resolution, self-attention at 7×7; each block sees an embedding of log σ) inside the EDM
    preconditioning with σ_d = 0.5 around the mid-grey 0.5 (x_c = x − 0.5):
        D(x, σ) = 0.5 + c_skip x_c + c_out F(c_in x_c, log σ),
        c_in = 1/√(σ² + σ_d²),  c_skip = σ_d²/(σ² + σ_d²),  c_out = σ σ_d/√(σ² + σ_d²),
    and the score by Tweedie, s_θ = (D − x)/σ², written without cancellation:
        s_θ(x, σ) = −x_c/(σ² + σ_d²) + σ_d F/(σ √(σ² + σ_d²)).
    F's input and target have unit scale at every σ, which is what lets one net cover σ from
    0.002 (for likelihoods) to σ_max ≈ 16.
    """

    SIGMA_DATA = 0.5

    def __init__(self, channels=(32, 64, 128), blocks: int = 2, embed_dim: int = 128,
                 fourier_scale: float = 1.0):
        super().__init__()
        self.config = {"arch": "res", "channels": list(channels), "blocks": blocks,
                       "embed_dim": embed_dim, "fourier_scale": fourier_scale}
        E = embed_dim
        self.embed = nn.Sequential(GaussianFourier(E, scale=fourier_scale), nn.Linear(E, E), nn.SiLU(),
                                   nn.Linear(E, E))
        self.stem = nn.Conv2d(1, channels[0], 3, padding=1)
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        ch, skips = channels[0], []
        for i, c in enumerate(channels):
            level = nn.ModuleList()
            for _ in range(blocks):
                level.append(ResBlock(ch, c, E))
                ch = c
            self.down.append(level)
            skips.append(ch)
            if i < len(channels) - 1:
                self.downsample.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))   # 28 → 14 → 7
        self.mid1, self.attn, self.mid2 = ResBlock(ch, ch, E), SelfAttention(ch), ResBlock(ch, ch, E)
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i, c in reversed(list(enumerate(channels))):
            level = nn.ModuleList([ResBlock(ch + skips[i], c, E)])
            level.extend(ResBlock(c, c, E) for _ in range(blocks - 1))
            self.up.append(level)
            ch = c
            if i > 0:
                self.upsample.append(nn.Conv2d(ch, ch, 3, padding=1))
        self.out_norm, self.out = _norm(ch), nn.Conv2d(ch, 1, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        if sigma.ndim == 0:
            sigma = sigma.expand(x.shape[0])
        s = sigma[:, None, None, None]
        var = s**2 + self.SIGMA_DATA**2
        xc = x - 0.5
        f = self.denoiser_residual(xc * torch.rsqrt(var), torch.log(sigma))
        return -xc / var + self.SIGMA_DATA * f / (s * torch.sqrt(var))

    def denoiser_residual(self, h: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
        """F(c_in x_c, log σ): the U-Net itself."""
        emb = self.embed(log_sigma)
        h = self.stem(h)
        skips = []
        for i, level in enumerate(self.down):
            for block in level:
                h = block(h, emb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid2(self.attn(self.mid1(h, emb)), emb)
        for j, level in enumerate(self.up):
            h = torch.cat([h, skips.pop()], 1)
            for block in level:
                h = block(h, emb)
            if j < len(self.upsample):
                h = self.upsample[j](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.out(F.silu(self.out_norm(h)))


@register("ncsn_unet")
def build_ncsn_unet(channels=(32, 64, 128, 256), embed_dim: int = 256, sigma_embed: bool = True,
                    fourier_scale: float = 4.0, arch: str = "small", blocks: int = 2) -> nn.Module:
    """The NCSN score net s_θ(x, σ): arch "small" (SmallUNet, the first version's) or "res"
    (ResUNet)."""
    if arch == "res":
        return ResUNet(channels, blocks=blocks, embed_dim=embed_dim, fourier_scale=fourier_scale)
    if arch != "small":
        raise ValueError(f"Unknown U-Net layout {arch!r}; use 'small' or 'res'.")
    return SmallUNet(channels, embed_dim, cond="sigma", sigma_embed=sigma_embed,
                     fourier_scale=fourier_scale)


@register("tutorial_unet")
def build_tutorial_unet(channels=(32, 64, 128, 256), embed_dim: int = 256,
                        sigma: float = 25.0) -> SmallUNet:
    """The score-SDE tutorial's net s_θ(x, t) for the VE SDE with σ = 25."""
    return SmallUNet(channels, embed_dim, cond="ve_time", sigma=sigma, fourier_scale=30.0)

