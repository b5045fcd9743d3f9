"""Run folders written by the first version (tests/fixtures/runs_v1: a 2D NCSN, a 2D SDE model and
an MNIST NCSN, each with its own metric field names) still open: state, metrics, checkpoints, and
the CLI samples from each."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.store.checkpoints import load_model
from engine.store.runs import read_metrics, read_run

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "runs_v1"
RUNS = sorted(p.name for p in FIXTURES.iterdir())


@pytest.fixture
def runs(tmp_path):
    dst = tmp_path / "runs"
    shutil.copytree(FIXTURES, dst)
    return dst


@pytest.mark.parametrize("name", RUNS)
def test_old_run_reads_with_its_state_metrics_and_checkpoint(runs, name):
    info = read_run(runs / name)
    assert info.state == "finished"
    assert info.step > 0 and info.progress == 1.0
    records = read_metrics(runs / name)
    assert records and all("step" in r for r in records) and any("loss" in r for r in records)
    model, meta = load_model(runs / name / "model")
    assert sum(p.numel() for p in model.parameters()) > 0 and meta["model"]["kind"]


def _engine(*argv):
    return subprocess.run([sys.executable, "-m", "engine", *map(str, argv)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_cli_samples_from_every_old_run(runs, tmp_path):
    ncsn2d, sde2d, mnist = (runs / n / "model" for n in RUNS)
    out = _engine("mix", "--checkpoint", ncsn2d, "--particles", "100", "--steps", "20")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["target_weights"] == [0.8, 0.2]
    out = _engine("mix", "--sampler", "pc", "--steps", "20", "--particles", "100", "--checkpoint", sde2d)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)["mode_weights"]) == 2
    npy = tmp_path / "s.npy"
    out = _engine("sample", "--checkpoint", mnist, "--n", "2", "--steps-per-level", "1",
                  "--out", tmp_path / "g.png", "--npy", npy)
    assert out.returncode == 0, out.stderr
    assert npy.exists()
