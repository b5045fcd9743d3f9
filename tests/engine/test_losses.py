"""Score-matching objectives against closed forms.

Data p = N(μ, Σ) in 2D and a linear score model s(x) = A x + b: then every objective is a quadratic
in (A, b) with a known minimiser (−Σ⁻¹ for the clean objectives, −(Σ + σ²I)⁻¹ for DSM), ISM is
ESM − ½ tr Σ⁻¹, and the Jacobian trace is tr A exactly.
"""

import itertools
import math

import pytest
import torch
from torch import nn

from engine import losses
from engine.models.mlp import ScoreMLP

MU = torch.tensor([1.0, -2.0], dtype=torch.float64)
COV = torch.tensor([[2.0, 0.6], [0.6, 1.0]], dtype=torch.float64)
PREC = torch.linalg.inv(COV)


class Linear(nn.Module):
    def __init__(self, A=None, b=None):
        super().__init__()
        self.A = nn.Parameter(torch.zeros(2, 2, dtype=torch.float64) if A is None else A.clone())
        self.b = nn.Parameter(torch.zeros(2, dtype=torch.float64) if b is None else b.clone())

    def forward(self, x, sigma=None):
        return x @ self.A.T + self.b


def gaussian_sample(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    L = torch.linalg.cholesky(COV)
    return MU + torch.randn(n, 2, generator=g, dtype=torch.float64) @ L.T


def exact_score(x, sigma=0.0):
    return -(x - MU) @ torch.linalg.inv(COV + sigma**2 * torch.eye(2, dtype=torch.float64)).T


def closed_esm(A, b):
    M = A + PREC
    c = b - PREC @ MU
    return 0.5 * (torch.trace(M @ COV @ M.T) + ((M @ MU + c) ** 2).sum())


def closed_ism(A, b):
    return torch.trace(A) + 0.5 * (torch.trace(A @ COV @ A.T) + ((A @ MU + b) ** 2).sum())


THETAS = [
    (torch.tensor([[0.3, -0.2], [0.1, -1.5]], dtype=torch.float64), torch.tensor([0.5, 1.0], dtype=torch.float64)),
    (torch.tensor([[-1.0, 0.4], [0.0, 0.7]], dtype=torch.float64), torch.tensor([-2.0, 0.2], dtype=torch.float64)),
]


def test_ism_trace_is_exact_for_a_linear_model():
    x = gaussian_sample(50)
    A, b = THETAS[0]
    per = losses.ism_loss(Linear(A, b), x, reduce=False)
    expected = torch.trace(A) + 0.5 * ((x @ A.T + b) ** 2).sum(-1)
    torch.testing.assert_close(per, expected)


def test_jacobian_trace_matches_autograd_jacobian_for_an_mlp():
    torch.manual_seed(0)
    net = ScoreMLP(dim=3, hidden=16).double()
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    trace = losses.jacobian_trace(net(x), x).detach()
    for i in range(5):
        J = torch.autograd.functional.jacobian(lambda y: net(y.unsqueeze(0))[0], x[i].detach())
        assert float(trace[i]) == pytest.approx(float(torch.trace(J)), rel=1e-10, abs=1e-12)


def test_esm_and_ism_match_their_closed_forms_and_differ_by_half_trace_precision():
    x = gaussian_sample(400_000, seed=1)
    const = 0.5 * torch.trace(PREC)  # ½ E||∇log p||², independent of θ
    for A, b in THETAS:
        model = Linear(A, b)
        esm = losses.esm_loss(model, x, exact_score).detach()
        ism = losses.ism_loss(model, x).detach()
        assert float(esm) == pytest.approx(float(closed_esm(A, b)), rel=0.02)
        assert float(ism) == pytest.approx(float(closed_ism(A, b)), rel=0.02, abs=0.02)
        # The closed forms differ by exactly the constant ½ tr Σ⁻¹ …
        assert float(closed_esm(A, b) - closed_ism(A, b)) == pytest.approx(float(const), rel=1e-10)
        # … and so do the Monte Carlo losses, up to sampling error.
        assert float(esm - ism) == pytest.approx(float(const), abs=0.03)


def all_sign_vectors(n):
    """Every Rademacher direction in 2D, each repeated for the n points (the ssm_loss layout)."""
    signs = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=2)), dtype=torch.float64)
    return signs.repeat_interleave(n, dim=0), len(signs)


@pytest.mark.parametrize("variance_reduced", [False, True])
def test_ssm_averaged_over_all_rademacher_directions_equals_ism_exactly(variance_reduced):
    torch.manual_seed(1)
    net = ScoreMLP(dim=2, hidden=32).double()
    x = torch.randn(20, 2, dtype=torch.float64) * 2
    v, k = all_sign_vectors(len(x))
    ssm = losses.ssm_loss(net, x, n_projections=k, v=v, variance_reduced=variance_reduced, reduce=False)
    ism = losses.ism_loss(net, x, reduce=False)
    torch.testing.assert_close(ssm, ism)


def test_ssm_with_many_gaussian_projections_approaches_ism():
    torch.manual_seed(2)
    net = ScoreMLP(dim=2, hidden=32).double()
    x = torch.randn(4, 2, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    ssm = losses.ssm_loss(net, x, n_projections=20_000, projection="gaussian", generator=g, reduce=False)
    ism = losses.ism_loss(net, x, reduce=False)
    scale = float(ism.detach().abs().max()) + 1.0
    assert torch.allclose(ssm, ism, atol=0.05 * scale)


def test_rademacher_projections_are_signs():
    v = losses.projections((1000, 3), "rademacher", torch.Generator().manual_seed(0))
    assert set(v.unique().tolist()) == {-1.0, 1.0}
    with pytest.raises(ValueError):
        losses.projections((2, 2), "uniform")


def fit_linear(loss_fn, steps=25):
    """Minimise a (quadratic) loss over a linear model with L-BFGS on a fixed sample."""
    model = Linear()
    opt = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = loss_fn(model)
        loss.backward()
        return loss

    opt.step(closure)
    return model.A.detach(), model.b.detach()


@pytest.mark.parametrize("objective", ["esm", "ism", "ssm", "ssm-vr"])
def test_clean_objectives_are_minimised_by_the_data_score(objective):
    x = gaussian_sample(12_000, seed=4)
    g = torch.Generator().manual_seed(5)
    if objective == "esm":
        fn = lambda m: losses.esm_loss(m, x, exact_score)  # noqa: E731
    elif objective == "ism":
        fn = lambda m: losses.ism_loss(m, x)  # noqa: E731
    else:
        v = losses.projections((len(x), 2), "gaussian", g, torch.float64)
        fn = lambda m: losses.ssm_loss(m, x, v=v, variance_reduced=(objective == "ssm-vr"))  # noqa: E731
    A, b = fit_linear(fn)
    torch.testing.assert_close(A, -PREC, atol=0.06, rtol=0)
    torch.testing.assert_close(b, PREC @ MU, atol=0.1, rtol=0)


def test_dsm_minimiser_is_the_noisy_score_not_the_clean_one():
    sigma = 1.5
    x = gaussian_sample(20_000, seed=6)
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    A, b = fit_linear(lambda m: losses.dsm_loss(m, x, sigma, z=z))
    noisy_prec = torch.linalg.inv(COV + sigma**2 * torch.eye(2, dtype=torch.float64))
    torch.testing.assert_close(A, -noisy_prec, atol=0.03, rtol=0)
    torch.testing.assert_close(b, noisy_prec @ MU, atol=0.05, rtol=0)
    assert float((A + PREC).abs().max()) > 0.3  # clearly not the clean-data score


def test_ncsn_loss_is_sigma_squared_times_dsm_per_level():
    torch.manual_seed(3)
    net = ScoreMLP(dim=2, hidden=16).double()
    x = torch.randn(64, 2, dtype=torch.float64)
    z = torch.randn(64, 2, dtype=torch.float64)
    sigmas = (4.0, 2.0, 0.5)
    levels = torch.arange(64) % 3
    per, lv = losses.ncsn_loss(net, x, sigmas, levels=levels, z=z, reduce=False)
    for i, s in enumerate(sigmas):
        mask = levels == i
        dsm = losses.dsm_loss(net, x[mask], s, z=z[mask], reduce=False)
        torch.testing.assert_close(per[mask], s**2 * dsm)
    means = losses.per_level_means(per, lv, 4)
    assert means[3] is None
    assert means[0] == pytest.approx(float(per[levels == 0].mean().detach()))


def test_ncsn_draws_every_level_uniformly():
    net = ScoreMLP(dim=2, hidden=8)
    g = torch.Generator().manual_seed(0)
    _, levels = losses.ncsn_loss(net, torch.zeros(30_000, 2), (3.0, 2.0, 1.0, 0.5), generator=g, reduce=False)
    freq = torch.bincount(levels, minlength=4).double() / 30_000
    assert torch.allclose(freq, torch.full((4,), 0.25, dtype=torch.float64), atol=0.015)


# -- any shape: images are reduced over every non-batch dimension ----------------------------------

class Flat(nn.Module):
    """Wraps a model of flat (N, d) data as one of (N, 1, h, w) images: the same numbers."""

    def __init__(self, net, shape):
        super().__init__()
        self.net, self.shape = net, shape

    def forward(self, x, sigma=None):
        return self.net(x.flatten(1), sigma).reshape(x.shape[0], *self.shape)


def test_every_loss_on_images_equals_the_loss_on_the_flattened_data():
    torch.manual_seed(4)
    net = ScoreMLP(dim=4, hidden=16).double()
    img = Flat(net, (1, 2, 2))
    x = torch.randn(30, 4, dtype=torch.float64)
    xi = x.reshape(30, 1, 2, 2)
    z = torch.randn(30, 4, dtype=torch.float64)
    v = torch.randn(60, 4, dtype=torch.float64)
    levels = torch.arange(30) % 3
    pairs = [
        (losses.esm_loss(net, x, lambda y, s: -y, reduce=False),
         losses.esm_loss(img, xi, lambda y, s: -y, reduce=False)),
        (losses.ism_loss(net, x, reduce=False), losses.ism_loss(img, xi, reduce=False)),
        (losses.ssm_loss(net, x, n_projections=2, v=v, reduce=False),
         losses.ssm_loss(img, xi, n_projections=2, v=v.reshape(60, 1, 2, 2), reduce=False)),
        (losses.dsm_loss(net, x, 0.7, z=z, reduce=False),
         losses.dsm_loss(img, xi, 0.7, z=z.reshape(xi.shape), reduce=False)),
        (losses.ncsn_loss(net, x, (3.0, 1.0, 0.3), levels=levels, z=z, reduce=False)[0],
         losses.ncsn_loss(img, xi, (3.0, 1.0, 0.3), levels=levels, z=z.reshape(xi.shape), reduce=False)[0]),
    ]
    for flat, image in pairs:
        assert flat.shape == image.shape == (30,)
        torch.testing.assert_close(image, flat)


def test_ncsn_loss_on_images_is_half_the_squared_epsilon_error_summed_over_pixels():
    """The MNIST training's per-example term ½‖σ s_θ(x + σz, σ) + z‖² over 784 pixels, written out."""
    from engine.models.registry import build_model

    torch.manual_seed(0)
    model = build_model({"kind": "ncsn_unet", "channels": [8, 16, 16, 32], "embed_dim": 16})
    g = torch.Generator().manual_seed(1)
    x = torch.rand(6, 1, 28, 28, generator=g)
    z = torch.randn(x.shape, generator=g)
    sigmas = torch.tensor([5.0, 1.0, 0.2])
    levels = torch.tensor([0, 1, 2, 2, 1, 0])
    per, _ = losses.ncsn_loss(model, x, sigmas, levels=levels, z=z, reduce=False)
    sigma = sigmas[levels][:, None, None, None]
    expect = 0.5 * ((sigma * model(x + sigma * z, sigmas[levels]) + z) ** 2).sum((1, 2, 3))
    torch.testing.assert_close(per, expect)


def test_sde_loss_closed_forms():
    """Data at one point x0: the exact score −(x − m x0)/std² gives loss 0 under both weightings;
    a zero score gives ½E‖z‖² = d/2 (default) and, for VE where g²/std² = 2 ln(σ_max/σ_min) is
    constant, ½·d·2 ln(σ_max/σ_min) (likelihood weighting). (The first version had no ½: 2 and
    2·2 ln 5000 here.)"""
    from engine.sde.sdes import make_sde

    sde = make_sde("ve", 0.01, 50.0)
    x0 = torch.full((20000, 2), 3.0, dtype=torch.float64)

    def exact(x, t):
        mean, std = sde.marginal_prob(x0[: len(x)], t)
        return -(x - mean) / std**2

    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    g = torch.Generator().manual_seed(0)
    for weighting in ("default", "likelihood"):
        assert float(losses.sde_loss(exact, sde, x0, g, weighting)) == pytest.approx(0.0, abs=1e-9)
    assert float(losses.sde_loss(zero, sde, x0, g)) == pytest.approx(1.0, rel=0.03)
    expect = 0.5 * 2 * 2 * math.log(5000)
    assert float(losses.sde_loss(zero, sde, x0, g, "likelihood")) == pytest.approx(expect, rel=0.03)
    with pytest.raises(ValueError, match="weighting"):
        losses.sde_loss(zero, sde, x0, g, "uniform")


def test_sde_loss_on_images_draws_t_then_z_and_sums_over_pixels():
    from engine.sde.sdes import TutorialVESDE

    sde = TutorialVESDE(25.0)
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    zero = lambda y, t: torch.zeros_like(y)  # noqa: E731
    per = losses.sde_loss(zero, sde, x, torch.Generator().manual_seed(3), reduce=False)
    g = torch.Generator().manual_seed(3)
    torch.rand(4, generator=g)
    z = torch.randn(x.shape, generator=g)
    torch.testing.assert_close(per, 0.5 * (z**2).sum((1, 2, 3)))
