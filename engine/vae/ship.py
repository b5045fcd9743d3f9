"""Ship a trained VAE run into checkpoints/: NAME.safetensors (the weights) and NAME.json (its meta
plus a title, the ELBO-term history of the run and the importance-sampled bound on the binarised
test digits), and an entry in checkpoints/manifest.json (other entries kept)."""

from __future__ import annotations

import time
from pathlib import Path

from engine.paths import CHECKPOINTS, MANIFEST
from engine.store.checkpoints import (atomic_write_json, load_checkpoint, load_model, read_meta,
                                      save_checkpoint)
from engine.store.registry import read_manifest
from engine.vae.data import test_digits
from engine.vae.evaluate import evaluate_bound
from engine.vae.views import term_history


def ship_vae(run_dir, name: str, title: str, command: str, k: int = 1000, digits: int = 1000,
             seed: int = 0) -> dict:
    src, dst = Path(run_dir) / "model", CHECKPOINTS / name
    model, meta = load_model(src)
    evaluation = {**evaluate_bound(model, test_digits(digits), k=k, seed=seed).to_dict(),
                  "command": f"python -m engine vae eval --checkpoint checkpoints/{name} --k {k} "
                             f"--digits {digits} --seed {seed}"}
    meta = {key: v for key, v in read_meta(src).items() if key not in ("format", "version")}
    meta.update(title=title, trained_with=command, history=term_history(src), evaluation=evaluation)
    save_checkpoint(dst, load_checkpoint(src)[0], meta)
    manifest = read_manifest()
    manifest["checkpoints"][name] = {
        "file": name, "kind": "vae_mnist", "title": title, "model": meta["model"],
        "encoder": meta["encoder"], "latent": meta["latent"], "steps": meta["steps"],
        "wall_seconds": meta["wall_time"], "evaluation": evaluation, "trained_with": command,
        "size_bytes": dst.with_suffix(".safetensors").stat().st_size,
        "shipped": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    atomic_write_json(MANIFEST, manifest)
    return manifest["checkpoints"][name]
