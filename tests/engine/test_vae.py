"""The score-based VAE's maths (engine.vae): closed forms, the bound, and the entropy-gradient check."""

from __future__ import annotations

import math

import pytest
import torch

from engine.device import one_thread
from engine.vae.check import entropy_gradient_check
from engine.vae.evaluate import importance_bound, latent_map
from engine.vae.models import LatentVAE
from engine.vae.objective import (bernoulli_log_likelihood, elbo_terms, entropy_surrogate,
                                  gaussian_entropy, gaussian_kl_to_prior, knn_entropy,
                                  score_matching_terms, standard_normal_log_prob)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():  # small MLPs on a shared machine
        yield


def test_entropy_gradient_matches_the_analytic_one_after_the_score_net_trains():
    result = entropy_gradient_check(score_steps=600)
    for group in ("trunk", "log_std_head", "all"):
        assert result[group]["cosine"] >= 0.95, (group, result[group])
        assert result[group]["relative_error"] <= 0.3, (group, result[group])
    assert result["mean_head"]["exact_norm"] == 0.0           # H does not depend on μ
    assert result["mean_head"]["score_norm_relative"] < 0.1


def test_entropy_gradient_check_fails_with_an_untrained_score_net():
    assert entropy_gradient_check(score_steps=0)["all"]["cosine"] < 0.5


def test_gaussian_closed_forms():
    g = torch.Generator().manual_seed(0)
    mean, log_std = torch.randn(5, 3, generator=g), 0.5 * torch.randn(5, 3, generator=g)
    q = torch.distributions.Normal(mean, log_std.exp())
    prior = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    assert torch.allclose(gaussian_entropy(log_std), q.entropy().sum(-1), atol=1e-5)
    assert torch.allclose(gaussian_kl_to_prior(mean, log_std),
                          torch.distributions.kl_divergence(q, prior).sum(-1), atol=1e-5)
    z = torch.randn(4, 3, generator=g)
    assert torch.allclose(standard_normal_log_prob(z), prior.log_prob(z).sum(-1), atol=1e-5)
    logits, x = torch.randn(4, 6, generator=g), torch.randint(0, 2, (4, 6), generator=g).float()
    ref = torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1)
    assert torch.allclose(bernoulli_log_likelihood(logits, x), ref, atol=1e-5)


def test_surrogate_gradient_is_the_entropy_gradient_with_the_exact_score():
    """z = μ + σε, s = −(z − μ)/σ²: ∇_{μ,log σ} E[−sᵀz] = ∇ H = (0, 1) per dimension."""
    g = torch.Generator().manual_seed(1)
    mean = torch.tensor([0.3, -1.0], requires_grad=True)
    log_std = torch.tensor([-0.5, 0.7], requires_grad=True)
    eps = torch.randn(200_000, 2, generator=g)
    z = mean + log_std.exp() * eps
    entropy_surrogate(-(z - mean) / (2 * log_std).exp(), z).mean().backward()
    assert torch.allclose(log_std.grad, torch.ones(2), atol=0.02)
    assert torch.allclose(mean.grad, torch.zeros(2), atol=0.02)


@pytest.mark.parametrize("d", [2, 4])
def test_knn_entropy_of_a_gaussian(d):
    g = torch.Generator().manual_seed(d)
    std = torch.linspace(0.2, 1.5, d)
    samples = torch.randn(3000, d, generator=g) * std
    assert abs(float(knn_entropy(samples)) - float(gaussian_entropy(std.log()))) < 0.1


def test_elbo_terms_match_the_analytic_kl_and_each_other():
    torch.manual_seed(0)
    model = LatentVAE("gaussian", latent=3, hidden=16, data_dim=10)
    x = torch.randint(0, 2, (4, 10)).float().repeat(20000, 1)
    terms = elbo_terms(model, x, torch.Generator().manual_seed(0))
    assert torch.allclose(terms["loss"], -(terms["reconstruction"] + terms["prior"] + terms["entropy"]))
    mean, log_std = model.encoder(x[:4])
    neg_kl = (terms["prior"] + terms["entropy"]).reshape(20000, 4).mean(0)
    assert torch.allclose(neg_kl, -gaussian_kl_to_prior(mean, log_std), atol=0.05)


def _exact_log_p(model, x, half_width=7.0, n=281):
    """log p(x) = log ∫ p(x|z) p(z) dz by a Riemann sum over a 2D latent grid."""
    t = torch.linspace(-half_width, half_width, n)
    grid = torch.stack(torch.meshgrid(t, t, indexing="xy"), -1).reshape(-1, 2)
    with torch.no_grad():
        logits = model.decoder(grid)
        out = []
        for xi in x:
            lj = bernoulli_log_likelihood(logits, xi.expand_as(logits)) + standard_normal_log_prob(grid)
            out.append(torch.logsumexp(lj.double(), 0) + 2 * math.log(float(t[1] - t[0])))
    return torch.stack(out)


@pytest.mark.parametrize("encoder", ["gaussian", "implicit"])
def test_importance_bound_is_below_log_p_and_grows_with_k(encoder):
    torch.manual_seed(3)
    model = LatentVAE(encoder, latent=2, hidden=16, noise_dim=2, score_hidden=8, data_dim=12)
    x = torch.randint(0, 2, (30, 12), generator=torch.Generator().manual_seed(0)).float()
    log_p = _exact_log_p(model, x)
    b1 = importance_bound(model, x, k=1)
    b10 = importance_bound(model, x, k=10)
    b1000 = importance_bound(model, x, k=1000)
    assert float(b1.mean()) < float(b10.mean()) < float(b1000.mean())
    assert float(b1000.mean()) <= float(log_p.mean()) + 1e-3
    if encoder == "gaussian":   # a broad proposal: K = 1000 nearly closes the gap
        assert float(b1000.mean()) > float(log_p.mean()) - 0.5


def test_score_and_elbo_terms_train_disjoint_parameters():
    torch.manual_seed(0)
    model = LatentVAE("implicit", latent=2, hidden=8, noise_dim=2, score_hidden=8, data_dim=6)
    x = torch.randint(0, 2, (5, 6)).float()
    score_matching_terms(model, x).mean().backward()
    assert all(p.grad is None for p in [*model.encoder.parameters(), *model.decoder.parameters()])
    assert all(p.grad is not None for p in model.score.parameters())
    model.zero_grad(set_to_none=True)
    elbo_terms(model, x)["loss"].mean().backward()
    assert all(p.grad is None for p in model.score.parameters())
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_latent_map_needs_a_2d_latent_and_gives_the_score_on_a_grid():
    torch.manual_seed(0)
    model = LatentVAE("gaussian", latent=2, hidden=8, data_dim=784)
    m = latent_map(model, torch.zeros(784), n=50, grid=5)
    assert m.samples.shape == (50, 2) and m.scores.shape == (25, 2) and not m.learned
    with pytest.raises(ValueError):
        latent_map(LatentVAE("gaussian", latent=3, hidden=8), torch.zeros(784))


def test_score_particles_average_the_ssm_term_per_digit():
    from engine.vae.training import VAEConfig, batch_loss_terms

    torch.manual_seed(0)
    model = LatentVAE("implicit", latent=2, hidden=8, noise_dim=2, score_hidden=8, data_dim=784)
    x = torch.bernoulli(torch.full((5, 784), 0.3))
    assert batch_loss_terms(model, x, VAEConfig(particles=3), None).shape == (5,)
    with pytest.raises(ValueError):
        VAEConfig(particles=0).validate()


def test_stein_ratio_is_one_for_the_exact_gaussian_score():
    from engine.vae.evaluate import posterior_samples, stein_ratio

    torch.manual_seed(0)
    model = LatentVAE("gaussian", latent=3, hidden=8, data_dim=10)
    x = torch.randint(0, 2, (6, 10)).float()
    samples = posterior_samples(model, x, 4000, torch.Generator().manual_seed(0))
    assert abs(stein_ratio(model, x, samples) - 1.0) < 0.03
