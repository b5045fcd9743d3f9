"""2D score networks: the forward(x, sigma) contract, conditioning, and checkpoint round trips."""

import json

import pytest
import torch

from engine.store.checkpoints import CheckpointError, load_model, load_score_fn, save_model
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


def test_load_score_fn_keeps_dtype_and_clamps_sigma_to_the_trained_range(tmp_path):
    torch.manual_seed(5)
    net = NoiseConditionalMLP(hidden=8)
    save_model(tmp_path / "m", net, {"model": net.spec(), "sigmas": [4.0, 2.0, 1.0]})
    fn = load_score_fn(tmp_path / "m.json")
    x = torch.randn(4, 2, dtype=torch.float64)
    out = fn(x, 0.0)
    assert out.dtype == torch.float64 and out.shape == (4, 2)
    torch.testing.assert_close(out, fn(x, 1.0))               # σ = 0 → smallest trained σ
    torch.testing.assert_close(fn(x, 2.0).float(), net(x.float(), 2.0).detach())
    with pytest.raises(ValueError, match="dimensions"):
        fn(torch.zeros(3, 5), 1.0)


def test_load_score_fn_refuses_non_score_and_corrupt_checkpoints(tmp_path):
    net = ScoreMLP(hidden=4)
    save_model(tmp_path / "ok", net, {"model": net.spec()})
    # Truncated weights.
    data = (tmp_path / "ok.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 3])
    (tmp_path / "cut.json").write_text((tmp_path / "ok.json").read_text())
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_score_fn(tmp_path / "cut")
    # A JSON sidecar that is not JSON.
    (tmp_path / "bad.safetensors").write_bytes(data)
    (tmp_path / "bad.json").write_text('{"format": "scorelab-check')
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_score_fn(tmp_path / "bad")
    # Another model kind (a shape the 2D loader cannot use).
    meta = json.loads((tmp_path / "ok.json").read_text())
    meta["model"] = {"kind": "mlp2d", "dim": 2, "hidden": 64}
    (tmp_path / "shape.safetensors").write_bytes(data)
    (tmp_path / "shape.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="different shape"):
        load_score_fn(tmp_path / "shape")
    with pytest.raises(CheckpointError, match="No checkpoint"):
        load_score_fn(tmp_path / "missing")
