"""2D score networks: the forward(x, sigma) contract, conditioning, and checkpoint round trips."""

import json

import pytest
import torch

from engine.models.score import load_score, score_fn_of
from engine.store.checkpoints import CheckpointError, load_model, save_model
from engine.models.registry import build_model
from engine.models.mlp import NoiseConditionalMLP, ScoreMLP, make_score_net


def test_mlp_ignores_sigma_and_has_the_requested_shape():
    torch.manual_seed(0)
    net = ScoreMLP(dim=2, hidden=16, depth=3)
    x = torch.randn(7, 2)
    assert net(x, 0.0).shape == (7, 2)
    torch.testing.assert_close(net(x, 0.0), net(x, torch.full((7,), 3.0)))
    assert sum(isinstance(m, torch.nn.Linear) for m in net.modules()) == 4


@pytest.mark.parametrize("conditioning", ["divide", "embed"])
def test_per_example_sigma_equals_one_call_per_sigma(conditioning):
    torch.manual_seed(1)
    net = NoiseConditionalMLP(hidden=16, conditioning=conditioning, data_scale=2.0)
    x = torch.randn(6, 2)
    sig = torch.tensor([0.1, 0.5, 1.0, 2.0, 5.0, 20.0])
    batched = net(x, sig)
    for i in range(6):
        torch.testing.assert_close(batched[i], net(x[i:i + 1], float(sig[i]))[0])
    torch.testing.assert_close(net(x, sig.unsqueeze(-1)), batched)
    torch.testing.assert_close(net(x, torch.tensor(0.5)), net(x, 0.5))


def test_divide_conditioning_is_f_of_x_over_sigma():
    """The seeds' s_θ(x, σ) = f_θ(x)/σ: σ·s_θ(x, σ) does not depend on σ."""
    torch.manual_seed(2)
    net = NoiseConditionalMLP(hidden=16, conditioning="divide")
    x = torch.randn(5, 2)
    torch.testing.assert_close(0.3 * net(x, 0.3), 7.0 * net(x, 7.0))


def test_embed_conditioning_depends_on_sigma_beyond_the_scaling():
    torch.manual_seed(3)
    net = NoiseConditionalMLP(hidden=16, conditioning="embed")
    x = torch.randn(5, 2)
    assert not torch.allclose(0.3 * net(x, 0.3), 7.0 * net(x, 7.0), atol=1e-3)


def test_unknown_conditioning_and_bad_sizes_are_one_sentence_errors():
    with pytest.raises(ValueError, match="conditioning"):
        NoiseConditionalMLP(conditioning="film")
    with pytest.raises(ValueError):
        ScoreMLP(hidden=0)
    with pytest.raises(ValueError, match="activation"):
        ScoreMLP(activation="relu6")


@pytest.mark.parametrize("objective,kind", [("ncsn", "ncsn2d"), ("dsm", "mlp2d"), ("ssm", "mlp2d")])
def test_spec_rebuilds_the_same_network_through_a_checkpoint(tmp_path, objective, kind):
    torch.manual_seed(4)
    net = make_score_net(objective, hidden=8, data_scale=3.0)
    assert net.spec()["kind"] == kind
    meta = {"model": net.spec(), "sigmas": [2.0, 1.0] if objective == "ncsn" else []}
    save_model(tmp_path / "m", net, meta)
    loaded, _ = load_model(tmp_path / "m")
    x = torch.randn(9, 2)
    torch.testing.assert_close(loaded(x, 1.5), net(x, 1.5))
    assert type(build_model(net.spec())) is type(net)


def test_load_score_keeps_dtype_and_clamps_sigma_to_the_trained_range(tmp_path):
    torch.manual_seed(5)
    net = NoiseConditionalMLP(hidden=8)
    save_model(tmp_path / "m", net, {"model": net.spec(), "sigmas": [4.0, 2.0, 1.0]})
    loaded = load_score(tmp_path / "m.json")
    fn = loaded.score_fn
    assert loaded.sde is None and loaded.meta["sigmas"] == [4.0, 2.0, 1.0]
    x = torch.randn(4, 2, dtype=torch.float64)
    out = fn(x, 0.0)
    assert out.dtype == torch.float64 and out.shape == (4, 2)
    torch.testing.assert_close(out, fn(x, 1.0))               # σ = 0 → smallest trained σ
    torch.testing.assert_close(fn(x, 2.0).float(), net(x.float(), 2.0).detach())
    with pytest.raises(ValueError, match="dimensions"):
        fn(torch.zeros(3, 5), 1.0)


def test_load_score_refuses_non_score_and_corrupt_checkpoints(tmp_path):
    net = ScoreMLP(hidden=4)
    save_model(tmp_path / "ok", net, {"model": net.spec()})
    # Truncated weights.
    data = (tmp_path / "ok.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 3])
    (tmp_path / "cut.json").write_text((tmp_path / "ok.json").read_text())
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_score(tmp_path / "cut")
    # A JSON sidecar that is not JSON.
    (tmp_path / "bad.safetensors").write_bytes(data)
    (tmp_path / "bad.json").write_text('{"format": "scorelab-check')
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_score(tmp_path / "bad")
    # Another model kind (a shape the 2D loader cannot use).
    meta = json.loads((tmp_path / "ok.json").read_text())
    meta["model"] = {"kind": "mlp2d", "dim": 2, "hidden": 64}
    (tmp_path / "shape.safetensors").write_bytes(data)
    (tmp_path / "shape.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="different shape"):
        load_score(tmp_path / "shape")
    with pytest.raises(CheckpointError, match="No checkpoint"):
        load_score(tmp_path / "missing")


def test_sigma_reading_runs_without_gradients_and_refuses_time_models(tmp_path):
    from engine.models.time_mlp import TimeScoreMLP

    net = NoiseConditionalMLP(hidden=8)
    fn = score_fn_of(net, {"model": net.spec(), "sigmas": [1.0]})
    x = torch.randn(3, 2, requires_grad=True)
    assert not fn(x, 1.0).requires_grad
    sde_spec = {"sde": "ve", "sigma_min": 0.01, "sigma_max": 10.0}
    tnet = TimeScoreMLP(sde_spec, hidden=8)
    meta = {"model": {"kind": "sde_mlp2d", "sde": sde_spec, "dim": 2}, "sde": sde_spec}
    with pytest.raises(CheckpointError, match="time-conditional"):
        score_fn_of(tnet, meta)
    with pytest.raises(CheckpointError, match="which SDE"):       # a σ-net has no time reading
        score_fn_of(net, {"model": net.spec(), "sigmas": [1.0]}, reading="time")


def test_time_reading_keeps_autograd_and_brings_the_training_sde(tmp_path):
    from engine.models.time_mlp import TimeScoreMLP
    from engine.sde.sdes import VESDE

    torch.manual_seed(6)
    sde_spec = {"sde": "ve", "sigma_min": 0.01, "sigma_max": 10.0}
    net = TimeScoreMLP(sde_spec, hidden=8)
    save_model(tmp_path / "t", net, {"model": {"kind": "sde_mlp2d", "sde": sde_spec, "dim": 2, "hidden": 8},
                                     "sde": sde_spec})
    loaded = load_score(tmp_path / "t", reading="time")
    assert loaded.sde == VESDE(0.01, 10.0)
    x = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    out = loaded.score_fn(x, 0.3)
    assert out.dtype == torch.float64 and out.requires_grad       # the likelihood differentiates it
    torch.testing.assert_close(out.detach().float(), net(x.detach().float(), 0.3).detach())
    with pytest.raises(ValueError, match="dimensions"):
        loaded.score_fn(torch.zeros(2, 3), 0.3)


def test_ncsn_unet_as_a_ve_sde_is_the_net_at_sigma_of_t():
    """An NCSN read as the VE SDE over its trained range: s(x, t) = s_θ(x, σ(t)) with
    σ(t) = σ_min (σ_max/σ_min)^t, for a float t and for one t per image."""
    import math

    torch.manual_seed(7)
    spec = {"kind": "ncsn_unet", "channels": [8, 16, 16, 32], "embed_dim": 16}
    net = build_model(spec).eval()
    meta = {"model": spec, "schedule": {"sigmas": [5.0, 1.0, 0.2], "sigma_min": 0.2, "sigma_max": 5.0}}
    fn = score_fn_of(net, meta, reading="time")
    x = torch.rand(2, 1, 28, 28)
    sigma_half = 0.2 * (5.0 / 0.2) ** 0.5
    assert sigma_half == pytest.approx(math.sqrt(5.0 * 0.2))
    with torch.no_grad():
        torch.testing.assert_close(fn(x, 0.5), net(x, sigma_half))
        t = torch.tensor([0.0, 1.0])
        torch.testing.assert_close(fn(x, t), net(x, torch.tensor([0.2, 5.0])))
        torch.testing.assert_close(score_fn_of(net, meta)(x, 1.0), net(x, 1.0))   # σ reading
    with pytest.raises(ValueError, match="784 dimensions, not 2"):
        fn(torch.zeros(3, 2), 0.5)


def test_tutorial_unet_reads_as_its_tutorial_sde():
    from engine.sde.sdes import TutorialVESDE
    from engine.models.score import sde_of

    spec = {"kind": "tutorial_unet", "channels": [8, 16, 16, 32], "embed_dim": 16, "sigma": 25.0}
    assert sde_of({"model": spec}) == TutorialVESDE(25.0)
    net = build_model(spec).eval()
    fn = score_fn_of(net, {"model": spec}, reading="time")
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(fn(x, 0.4), net(x, 0.4))


def test_res_unet_starts_as_the_score_of_a_gaussian_and_keeps_its_preconditioning():
    """ResUNet's last convolution starts at zero (F = 0), so a fresh net is exactly the score of
    N(0.5, (σ_d² + σ²) I), whatever σ; after a change of F, s = −x_c/(σ² + σ_d²) + σ_d F/(σ√(σ²+σ_d²))."""
    from engine.models.registry import build_model

    net = build_model({"kind": "ncsn_unet", "arch": "res", "channels": [4, 8, 8], "blocks": 1,
                       "embed_dim": 16, "fourier_scale": 1.0})
    x = torch.rand(3, 1, 28, 28)
    for sigma in (0.002, 0.5, 16.0):
        want = -(x - 0.5) / (sigma**2 + 0.25)
        torch.testing.assert_close(net(x, sigma), want)
    torch.nn.init.constant_(net.out.bias, 1.0)            # F ≡ 1 now wherever the features vanish
    torch.nn.init.zeros_(net.out.weight)
    sigma = torch.tensor([0.1, 1.0, 10.0])
    s = sigma[:, None, None, None]
    want = -(x - 0.5) / (s**2 + 0.25) + 0.5 / (s * torch.sqrt(s**2 + 0.25))
    torch.testing.assert_close(net(x, sigma), want)
