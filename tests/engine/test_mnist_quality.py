"""Quality figures: the Fréchet distance against its closed form, the shipped classifier on real
test digits, and `python -m engine eval` on real digits vs noise."""

import json

import numpy as np
import pytest

from engine.mnist.quality import CLASSIFIER, frechet_distance

needs_classifier = pytest.mark.skipif(not CLASSIFIER.with_suffix(".json").exists(),
                                      reason="the shipped classifier is missing")


def test_frechet_distance_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(0)
    mu_a, mu_b = rng.normal(size=6), rng.normal(size=6)
    va, vb = rng.uniform(0.5, 3, 6), rng.uniform(0.5, 3, 6)
    expect = ((mu_a - mu_b) ** 2).sum() + ((np.sqrt(va) - np.sqrt(vb)) ** 2).sum()
    assert frechet_distance(mu_a, np.diag(va), mu_b, np.diag(vb)) == pytest.approx(expect, rel=1e-9)
    # rotation invariance: the same pair of Gaussians in another basis
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    got = frechet_distance(q @ mu_a, q @ np.diag(va) @ q.T, q @ mu_b, q @ np.diag(vb) @ q.T)
    assert got == pytest.approx(expect, rel=1e-7)
    assert frechet_distance(mu_a, np.diag(va), mu_a, np.diag(va)) == pytest.approx(0, abs=1e-9)


@needs_classifier
def test_shipped_classifier_is_accurate_on_real_test_digits():
    from engine.models.classifier import accuracy
    from engine.mnist.quality import load_classifier
    from engine.mnist.data import load_mnist, to_float
    model, meta = load_classifier()
    d = load_mnist()
    assert accuracy(model, to_float(d.test_images[:2000]), d.test_labels[:2000]) > 0.95
    assert meta["metrics"]["test_accuracy"] > 0.95


@needs_classifier
def test_eval_cli_real_digits_beat_noise(tmp_path, capsys):
    from engine.cli.main import main
    from engine.mnist.data import load_mnist
    d = load_mnist()
    real = d.test_images[:200].astype(np.float32) / 255
    noise = np.random.default_rng(0).uniform(0, 1, (200, 28, 28)).astype(np.float32)
    np.save(tmp_path / "real.npy", real)
    np.save(tmp_path / "noise.npy", noise)
    assert main(["eval", "--samples", str(tmp_path / "real.npy")]) == 0
    r = json.loads(capsys.readouterr().out)
    assert main(["eval", "--samples", str(tmp_path / "noise.npy")]) == 0
    n = json.loads(capsys.readouterr().out)
    assert sum(r["class_counts"]) == 200 and r["classes_present"] == 10
    assert r["frechet_distance"] < n["frechet_distance"] / 5
    assert r["mean_confidence"] > 0.9
    assert main(["eval", "--samples", str(tmp_path / "missing.npy")]) == 2
