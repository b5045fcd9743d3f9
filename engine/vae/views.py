"""What the Latent scores page shows of one VAE checkpoint, as arrays and numbers (no Streamlit):
its summary, the stored bound (written by `python -m engine vae ship`), the ELBO terms
over training, reconstructions, prior samples and, for a 2D latent, the posterior map of a digit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.store.checkpoints import load_model
from engine.store.runs import read_metrics
from engine.vae.data import test_digits
from engine.vae.evaluate import (LatentMap, evaluate_bound, latent_map, prior_samples,
                                 reconstructions)

TERMS = ("reconstruction", "prior", "entropy", "elbo")


@dataclass(frozen=True)
class VAEView:
    summary: dict              # encoder, latent, steps, wall time, score objective
    bound: dict                # the stored evaluation ({} when none): bound, standard_error, k, digits
    history: list[dict]        # {"step", "reconstruction", "prior", "entropy", "elbo"} over training
    digits: np.ndarray         # (n, 28, 28) binarised test digits
    reconstructions: np.ndarray  # (n, 28, 28) Bernoulli means of p(x|z), z ~ q(z|x)
    samples: np.ndarray        # (n, 28, 28) Bernoulli means of p(x|z), z ~ N(0, I)


def term_history(path) -> list[dict]:
    """The ELBO-term records of a checkpoint: its run folder's metrics (RUN_DIR/model), else the
    history stored in a shipped checkpoint's meta."""
    path = Path(path)
    if path.name == "model":
        return [{k: r[k] for k in ("step", *TERMS)} for r in read_metrics(path.parent)
                if all(k in r for k in TERMS)]
    from engine.store.checkpoints import read_meta
    return list(read_meta(path).get("history") or [])


def summary_of(meta: dict) -> dict:
    return {"encoder": meta.get("encoder"), "latent": meta.get("latent"), "steps": meta.get("steps"),
            "wall_time": meta.get("wall_time"), "state": meta.get("state"),
            "objective": meta.get("objective")}


def vae_view(path, n: int = 16, seed: int = 0) -> VAEView:
    model, meta = load_model(path)
    if meta.get("task") != "vae":
        raise ValueError(f"{Path(path).name} is not a VAE checkpoint.")
    x = test_digits(n)
    digits, recon = reconstructions(model, x, seed)
    return VAEView(summary_of(meta), dict(meta.get("evaluation") or {}), term_history(path),
                   digits, recon, prior_samples(model, n, seed))


def quick_bound(path, k: int = 100, digits: int = 200, seed: int = 0) -> dict:
    """The importance-sampled bound on fewer digits and samples than the README's (seconds)."""
    model, _ = load_model(path)
    return evaluate_bound(model, test_digits(digits), k=k, seed=seed).to_dict()


def digit_map(path, index: int, n: int = 500, seed: int = 0) -> tuple[np.ndarray, LatentMap]:
    """(the binarised test digit, its posterior samples and score field); latent size 2 only."""
    model, _ = load_model(path)
    x = test_digits(index + 1)[index]
    return x.reshape(28, 28).numpy(), latent_map(model, x, n=n, seed=seed)
