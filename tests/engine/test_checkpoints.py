"""Checkpoints: safetensors + JSON round trip, and one clear sentence for every bad file."""

import json

import pytest
import torch
from torch import nn

from engine.models import registry as models
from engine.store.checkpoints import (CheckpointError, load_checkpoint, load_model, read_meta,
                                save_checkpoint, save_model)


@models.register("test-linear")
def _build_linear(width: int = 3):
    return nn.Linear(2, width)


def test_round_trip_tensors_and_meta(tmp_path):
    t = {"a": torch.randn(3, 4), "b": torch.arange(5)}
    save_checkpoint(tmp_path / "ck", t, {"steps": 10, "model": {"kind": "test-linear"}})
    assert (tmp_path / "ck.safetensors").exists() and (tmp_path / "ck.json").exists()
    for path in [tmp_path / "ck", tmp_path / "ck.json", tmp_path / "ck.safetensors"]:
        loaded, meta = load_checkpoint(path)
        torch.testing.assert_close(loaded["a"], t["a"])
        assert meta["steps"] == 10 and meta["format"] == "scorelab-checkpoint"
    assert not list(tmp_path.glob(".*"))  # no temp files left behind


def test_model_round_trip(tmp_path):
    net = _build_linear(width=4)
    save_model(tmp_path / "m", net, {"model": {"kind": "test-linear", "width": 4}})
    loaded, meta = load_model(tmp_path / "m.json")
    x = torch.randn(7, 2)
    torch.testing.assert_close(loaded(x), net(x))


def _assert_one_sentence(err: CheckpointError):
    msg = str(err)
    assert msg and "\n" not in msg and msg.endswith(".")


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="No checkpoint") as e:
        load_checkpoint(tmp_path / "nothing.safetensors")
    _assert_one_sentence(e.value)


def test_truncated_weights(tmp_path):
    save_model(tmp_path / "m", _build_linear(), {"model": {"kind": "test-linear"}})
    data = (tmp_path / "m.safetensors").read_bytes()
    (tmp_path / "m.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as e:
        load_model(tmp_path / "m")
    _assert_one_sentence(e.value)


def test_foreign_and_garbage_json(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(CheckpointError, match="not a Score Lab checkpoint"):
        read_meta(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_meta(tmp_path / "y")
    (tmp_path / "z.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="no z.json"):
        read_meta(tmp_path / "z.safetensors")


def test_pickle_is_never_loaded(tmp_path):
    """A torch.save pickle renamed to .safetensors is rejected without being unpickled."""
    class Boom:
        def __reduce__(self):
            return (exec, ("open(r'%s', 'w').write('ran')" % (tmp_path / "pwned"),))
    torch.save({"x": Boom()}, tmp_path / "evil.safetensors")
    (tmp_path / "evil.json").write_text(json.dumps({"format": "scorelab-checkpoint", "version": 1,
                                                    "model": {"kind": "test-linear"}}))
    with pytest.raises(CheckpointError):
        load_model(tmp_path / "evil")
    assert not (tmp_path / "pwned").exists()


def test_other_shape_and_unknown_kind(tmp_path):
    save_model(tmp_path / "m", _build_linear(width=3), {"model": {"kind": "test-linear", "width": 5}})
    with pytest.raises(CheckpointError, match="different shape"):
        load_model(tmp_path / "m")
    save_model(tmp_path / "u", _build_linear(), {"model": {"kind": "no-such-net"}})
    with pytest.raises(CheckpointError, match="cannot build"):
        load_model(tmp_path / "u")


# -- sidecars a careless or hostile user hands us (issue 13) ------------------------------------------

CALLS: list[str] = []


@models.register("test-wide")
def _build_wide(width: int = 3):
    CALLS.append(torch.empty(0).device.type)      # "meta" while counting, "cpu" when building
    return nn.Linear(width, width)


def test_a_string_version_is_one_sentence(tmp_path):
    save_model(tmp_path / "m", _build_linear(), {"model": {"kind": "test-linear"}})
    meta = json.loads((tmp_path / "m.json").read_text())
    for version in ("2", [1], None, 1.5, True):
        (tmp_path / "m.json").write_text(json.dumps({**meta, "version": version}))
        with pytest.raises(CheckpointError, match="version") as e:
            load_model(tmp_path / "m")
        _assert_one_sentence(e.value)


def test_sizes_are_checked_before_anything_is_allocated(tmp_path):
    CALLS.clear()
    save_checkpoint(tmp_path / "huge", {}, {"model": {"kind": "test-wide", "width": 1000}})
    with pytest.raises(CheckpointError, match="parameters") as e:   # 10⁶ > a cap of 10⁴
        models.MAX_PARAMETERS, old = 10_000, models.MAX_PARAMETERS
        try:
            load_model(tmp_path / "huge")
        finally:
            models.MAX_PARAMETERS = old
    _assert_one_sentence(e.value)
    assert CALLS == ["meta"]                        # counted on the meta device, never built
    for width in (-3, 0, 10**9, "wide", 2.5, True, [4]):
        save_checkpoint(tmp_path / "bad", {}, {"model": {"kind": "test-wide", "width": width}})
        with pytest.raises(CheckpointError, match="cannot build") as e:
            load_model(tmp_path / "bad")
        _assert_one_sentence(e.value)
    assert set(CALLS) == {"meta"}                   # a bad spec never reaches a real allocation


@pytest.mark.parametrize("field,value", [("step", "abc"), ("sigmas", ["a"]), ("model", ["mlp2d"]),
                                         ("target", {"weights": ["a", "b"]}), ("objective", 3),
                                         ("schedule", {"sigmas": [1.0], "sigma_max": "big"})])
def test_sidecar_fields_of_the_wrong_type_are_one_sentence(tmp_path, field, value):
    save_checkpoint(tmp_path / "m", {}, {"model": {"kind": "test-linear"}, field: value})
    with pytest.raises(CheckpointError, match=field) as e:
        read_meta(tmp_path / "m")
    _assert_one_sentence(e.value)
