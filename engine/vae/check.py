"""The correctness check of the score-based entropy gradient (SEEDS.md §6).

Take an encoder that is in fact Gaussian, z = μ_φ(x) + σ_φ(x)·ε, so ∇_φ H is known in closed form
(H = Σ log σ_φ(x) + const). Train a score net s_ψ(z, x) by SSM-VR on its samples only (the encoder
stays fixed), then compare, per parameter group,

    analytic      ∇_φ E_x[H(q_φ(·|x))]
    score-based   ∇_φ E_x E_ε[−stopgrad(s_ψ(z, x))ᵀ z]      (engine.vae.objective.entropy_surrogate)

by cosine similarity and relative error ‖g_score − g_exact‖/‖g_exact‖. The mean head's exact
gradient is zero (H does not depend on μ): for it the score-based gradient's norm is reported
relative to the norm of the whole exact gradient.
"""

from __future__ import annotations

import torch

from engine.vae.data import test_digits
from engine.vae.models import ConditionalScore, LatentVAE
from engine.vae.objective import entropy_surrogate, gaussian_entropy, score_matching_terms


def _flat_grad(loss, params) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                      for g, p in zip(grads, params)])


def entropy_gradient_check(score_steps: int = 1500, seed: int = 0, digits: int = 8, latent: int = 2,
                           hidden: int = 32, score_hidden: int = 128, train_samples: int = 32,
                           eval_samples: int = 2048, lr: float = 2e-3, progress=None) -> dict:
    """Per group {"cosine", "relative_error", "exact_norm", "score_norm"} (see the module docstring).
    progress(step, score_steps) after every score-net step."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    x = test_digits(digits, seed)
    vae = LatentVAE("gaussian", latent=latent, hidden=hidden)
    vae.score = ConditionalScore(x.shape[1], latent, score_hidden)
    for p in vae.encoder.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(vae.score.parameters(), lr=lr)
    x_train = x.repeat(train_samples, 1)
    loss = None
    for step in range(score_steps):
        loss = score_matching_terms(vae, x_train, g, variance_reduced=True).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None:
            progress(step + 1, score_steps)
    for p in vae.encoder.parameters():
        p.requires_grad_(True)

    groups = {"trunk": list(vae.encoder.trunk.parameters()),
              "log_std_head": list(vae.encoder.log_std.parameters()),
              "mean_head": list(vae.encoder.mean.parameters())}
    params = [p for ps in groups.values() for p in ps]
    exact = _flat_grad(gaussian_entropy(vae.encoder(x)[1]).mean(), params)
    x_eval = x.repeat(eval_samples, 1)
    z = vae.encoder.sample(x_eval, generator=g)
    score = _flat_grad(entropy_surrogate(vae.learned_score(z, x_eval), z).mean(), params)

    out = {"score_steps": score_steps, "final_ssm_loss": float(loss.detach()) if score_steps else None}
    start = 0
    sizes = {name: sum(p.numel() for p in ps) for name, ps in groups.items()}
    for name in (*groups, "all"):
        n = sizes.get(name, exact.numel())
        a, b = (exact, score) if name == "all" else (exact[start:start + n], score[start:start + n])
        if name != "all":
            start += n
        entry = {"exact_norm": float(a.norm()), "score_norm": float(b.norm())}
        if name == "mean_head":
            entry["score_norm_relative"] = float(b.norm() / exact.norm())
        else:
            entry["cosine"] = float(torch.nn.functional.cosine_similarity(a, b, dim=0))
            entry["relative_error"] = float((b - a).norm() / a.norm())
        out[name] = entry
    return out
