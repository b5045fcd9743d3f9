"""Copy trained MNIST models into checkpoints/ and record them in checkpoints/manifest.json.

    python -m engine ship --ncsn RUN_DIR [--baseline RUN_DIR] [--tutorial RUN_DIR] [--n 64] [--seed 0]

For each model: the EMA weights and their JSON (config, schedule, data, steps, wall time), an
example grid (64 images, default settings, seed 0) next to it, and the classifier figures of those
samples with the sampling time. The classifier entry is added when checkpoints/mnist_classifier
exists. Other entries of the manifest are kept.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from engine.store.checkpoints import atomic_write_json, read_meta
from engine.paths import CHECKPOINTS, MANIFEST
from engine.store.registry import read_manifest


def copy_checkpoint(run_dir: str, name: str) -> Path:
    """RUN_DIR/model.{safetensors,json} → checkpoints/NAME.{…} (each file replaced atomically)."""
    src = Path(run_dir) / "model"
    dst = CHECKPOINTS / name
    read_meta(src)                                   # refuse a run folder without a readable model
    CHECKPOINTS.mkdir(exist_ok=True)
    for suffix in (".safetensors", ".json"):
        shutil.copyfile(src.with_suffix(suffix), dst.with_suffix(suffix + ".tmp"))
        dst.with_suffix(suffix + ".tmp").replace(dst.with_suffix(suffix))
    return dst


def ship_tutorial(run_dir: str, command: str | None) -> dict:
    """The score-SDE tutorial's model (a `train-sde mnist` run) as checkpoints/tutorial_mnist: the
    reference `bench mnist --tutorial-checkpoint` judges the NCSN against."""
    dst = copy_checkpoint(run_dir, "tutorial_mnist")
    meta = read_meta(dst)
    return {"file": "tutorial_mnist", "kind": meta["model"]["kind"],
            "title": "Score-SDE tutorial model on MNIST (reference for bench mnist)",
            "model": meta["model"], "sde": meta.get("sde"), "config": meta.get("train"),
            "steps": meta.get("steps"), "trained_on": meta.get("device", "cpu"),
            "size_bytes": dst.with_suffix(".safetensors").stat().st_size, "trained_with": command,
            "shipped": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def ship(run_dir: str, name: str, title: str, n: int, seed: int, command: str | None) -> dict:
    import torch
    from engine.store.checkpoints import load_model
    from engine.mnist.quality import evaluate_samples
    from engine.mnist.sampling import SampleConfig, sample_images
    from engine.render.images import grid_png

    dst = copy_checkpoint(run_dir, name)
    model, meta = load_model(dst)
    out = sample_images(model, meta, SampleConfig(n=n, seed=seed))
    Path(str(dst) + ".example.png").write_bytes(grid_png(out.images))
    metrics = evaluate_samples(out.images)
    entry = {
        "file": name, "kind": meta["model"]["kind"], "title": title, "objective": meta.get("objective"),
        "model": meta["model"], "schedule": {k: v for k, v in meta["schedule"].items() if k != "sigmas"},
        "data": meta.get("data"), "config": meta.get("config"), "steps": meta.get("step"),
        "wall_seconds": round(float(meta.get("wall_seconds", 0.0)), 1),
        "cpu_seconds": meta.get("cpu_seconds"),
        "trained_on": meta.get("device", "cpu"),
        "size_bytes": dst.with_suffix(".safetensors").stat().st_size,
        "metrics": {**metrics, "sampler": out.schedule, "sample_seconds": round(out.seconds, 2),
                    "sample_cpu_seconds": round(out.cpu_seconds, 2),
                    "sample_threads": torch.get_num_threads(), "n": n, "seed": seed},
        "trained_with": command,
        "shipped": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    return entry


def ship_models(ncsn: str | None, baseline: str | None, n: int = 64, seed: int = 0,
                ncsn_command: str | None = None, baseline_command: str | None = None,
                log=print, tutorial: str | None = None, tutorial_command: str | None = None) -> dict:
    """Ship the given runs (and the classifier's entry) into checkpoints/; returns the manifest."""
    manifest = read_manifest()
    entries = manifest["checkpoints"]
    if ncsn:
        entries["ncsn_mnist"] = ship(ncsn, "ncsn_mnist", "NCSN on MNIST (shipped; probability-flow "
                                     "ODE or annealed Langevin)", n, seed, ncsn_command)
        log(json.dumps(entries["ncsn_mnist"]["metrics"]))
    if baseline:
        entries["dsm_mnist_baseline"] = ship(baseline, "dsm_mnist_baseline",
                                             "Single-σ DSM baseline (shipped, plain Langevin)",
                                             n, seed, baseline_command)
        log(json.dumps(entries["dsm_mnist_baseline"]["metrics"]))
    if tutorial:
        entries["tutorial_mnist"] = ship_tutorial(tutorial, tutorial_command)
    clf = CHECKPOINTS / "mnist_classifier"
    if clf.with_suffix(".json").exists():
        meta = read_meta(clf)
        from engine.mnist.quality import real_reference
        entries["mnist_classifier"] = {
            "file": "mnist_classifier", "kind": meta["model"]["kind"],
            "title": "MNIST classifier for sample quality figures", "model": meta["model"],
            "data": meta.get("data"), "config": meta.get("config"), "metrics": meta.get("metrics"),
            "size_bytes": clf.with_suffix(".safetensors").stat().st_size,
            "real_test_digits_64": real_reference(64, seed=0),
        }
    manifest["checkpoints"] = entries
    atomic_write_json(MANIFEST, manifest)
    log(f"wrote {MANIFEST}")
    return manifest
