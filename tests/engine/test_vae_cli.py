"""python -m engine vae: train (on the one loop: checkpoints, resume), eval, check-entropy."""

from __future__ import annotations

import json

import pytest

from engine.cli.main import main
from engine.store.checkpoints import load_model, read_meta
from engine.store.runs import read_metrics


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("SCORELAB_THREADS", "1")


def _train(out, *extra):
    return main(["vae", "train", "--encoder", "implicit", "--latent", "2", "--hidden", "16",
                 "--score-hidden", "16", "--noise", "2", "--batch", "16", "--log-every", "2",
                 "--eval-every", "3", "--eval-digits", "8", "--quiet", "--out", str(out), *extra])


def test_train_resume_and_eval(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, "--steps", "3") == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["state"] == "finished" and first["steps"] == 3
    assert {"reconstruction", "prior", "entropy", "elbo"} <= set(first)
    assert _train(out, "--steps", "6", "--resume") == 0
    capsys.readouterr()
    meta = read_meta(out / "model")
    assert meta["task"] == "vae" and meta["steps"] == 6 and meta["model"]["kind"] == "vae_mnist"
    steps = [r["step"] for r in read_metrics(out) if "loss" in r]
    assert steps == sorted(set(steps)) and steps[-1] == 6          # no step repeats after resume
    model, _ = load_model(out / "model")
    assert model.score is not None and model.latent == 2

    assert main(["vae", "eval", "--checkpoint", str(out), "--k", "100", "--digits", "4"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["k"] == 100 and result["digits"] == 4 and result["encoder"] == "implicit"
    assert result["bound"] < 0 and result["standard_error"] > 0
    assert set(result["elbo_terms"]) == {"reconstruction", "prior", "entropy", "elbo", "score_stein"}


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["vae", "train", "--encoder", "flow", "--out", str(tmp_path / "a")]) == 2
    assert main(["vae", "train", "--steps", "0", "--out", str(tmp_path / "b")]) == 2
    assert main(["vae", "eval", "--checkpoint", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error:") for line in err)


def test_check_entropy_prints_per_group_json(capsys):
    assert main(["vae", "check-entropy", "--steps", "300"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"trunk", "log_std_head", "mean_head", "all"} <= set(result)
    assert result["all"]["cosine"] > 0.9
