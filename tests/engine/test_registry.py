"""engine.store.registry: the one place the pages list checkpoints (shipped and from runs, by model
kind), the runs a page started, and what a run folder holds for display."""

from __future__ import annotations

import json
import shutil

import pytest

from engine.paths import CHECKPOINTS
from engine.store import registry
from engine.store.runs import RunInfo

SHIPPED = {"ncsn_unet": {"ncsn_mnist", "dsm_mnist_baseline"}, "sde_mlp2d": {"sde2d_seeds_ve", "sde2d_seeds_vp"},
           "tutorial_unet": {"sde_mnist_tutorial", "tutorial_mnist"}}


@pytest.mark.parametrize("kind", list(SHIPPED))
def test_shipped_checkpoints_by_kind(kind):
    found = registry.shipped(kind)
    if not found:
        pytest.skip("shipped checkpoints missing")
    assert {c.path.rsplit("/", 1)[-1] for c in found} == SHIPPED[kind]
    assert all(c.shipped and c.kind == kind and c.label for c in found)


def test_labels_and_sde_views_of_the_shipped_models():
    if not registry.shipped("ncsn_unet"):
        pytest.skip("shipped checkpoints missing")
    by_name = {c.path.rsplit("/", 1)[-1]: c for c in registry.shipped("ncsn_unet")}
    assert by_name["ncsn_mnist"].label == "NCSN on MNIST (shipped; probability-flow ODE or annealed Langevin)"   # manifest
    assert by_name["ncsn_mnist"].objective == "ncsn" and by_name["dsm_mnist_baseline"].objective == "dsm"
    # The SDE page reads the NCSN first (the default SDE model), then the tutorial models (not the
    # DSM baseline).
    labels = list(registry.sde_mnist_models())
    assert labels[0] == "ncsn_mnist (NCSN U-Net read as a VE SDE)"
    assert any(label.startswith("sde_mnist_tutorial") for label in labels)
    assert not any("dsm" in label for label in labels)
    assert all(label.endswith("seeds' mixture 0.8/0.2") for label in registry.sde2d_models())
    measured = registry.sde_mnist_measurements(CHECKPOINTS / "ncsn_mnist")
    assert {"bpd", "inpaint", "cost"} <= set(measured)
    assert registry.sde_mnist_measurements("nothing_measured") == {}
    assert registry.example_png(CHECKPOINTS / "ncsn_mnist")[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_checkpoint_dropped_in_the_folder_is_listed_without_a_manifest_entry(tmp_path):
    src = CHECKPOINTS / "sde2d_seeds_ve"
    if not src.with_suffix(".json").exists():
        pytest.skip("shipped checkpoints missing")
    for suffix in (".json", ".safetensors"):
        shutil.copy(src.with_suffix(suffix), tmp_path / f"mine{suffix}")
    (tmp_path / "notes.json").write_text(json.dumps({"not": "a checkpoint"}))
    found = registry.shipped("sde_mlp2d", tmp_path)
    assert [c.path for c in found] == [str(tmp_path / "mine")]
    assert registry.modified(tmp_path / "mine") > 0 and registry.modified(tmp_path / "absent") == 0


def test_runs_started_with_a_command_and_their_records(tmp_path):
    def run(name, argv):
        d = tmp_path / name
        d.mkdir()
        return RunInfo(dir=d, name=name, state="finished", step=0, total=0, message="", created=0.0,
                       config={"argv": argv}, status={})

    runs = [run("a", ["train2d", "--data", "mixture"]), run("b", ["train", "mnist"]), run("c", [])]
    assert [r.name for r in registry.runs_started_with(runs, "train2d")] == ["a"]
    assert [r.name for r in registry.runs_started_with(runs, "train", "mnist")] == ["b"]
    (tmp_path / "a" / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n{"step": 2}\n{"step": 3, "lo')
    assert registry.loss_records(tmp_path / "a") == [{"step": 1, "loss": 2.0}]
    assert registry.preview_png(tmp_path / "a") is None
    assert registry.score2d_runs(tmp_path) == {} and registry.image_runs(tmp_path) == []
