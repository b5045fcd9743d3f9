"""MNIST sample quality through the shipped classifier: class histogram, mean confidence, and the
Fréchet distance between Gaussians fitted to classifier features of the samples and of real test
digits:  FD = ‖μ_a − μ_b‖² + tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2}).

FD from N samples is biased upwards for small N; compare figures at the same N (`real_reference`
gives real test digits' own FD at that N).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import linalg

from engine.paths import CHECKPOINTS

CLASSIFIER = CHECKPOINTS / "mnist_classifier"


def frechet_distance(mu_a, cov_a, mu_b, cov_b) -> float:
    """tr((Σ_a Σ_b)^{1/2}) is computed as Σ √λ of the symmetric PSD Σ_a^{1/2} Σ_b Σ_a^{1/2}
    (same eigenvalues), which stays stable when N is smaller than the feature dimension."""
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    cov_a, cov_b = np.asarray(cov_a, np.float64), np.asarray(cov_b, np.float64)
    w, v = linalg.eigh((cov_a + cov_a.T) / 2)
    half = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = half @ cov_b @ half
    lam = linalg.eigvalsh((inner + inner.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(lam, 0, None)).sum())
    diff = mu_a - mu_b
    return float(max(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_covmean, 0.0))


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, np.float64)
    return f.mean(0), np.cov(f, rowvar=False)


@lru_cache(maxsize=2)
def load_classifier(path: str = str(CLASSIFIER)):
    from engine.store.checkpoints import load_model
    model, meta = load_model(path)
    return model, meta


@lru_cache(maxsize=2)
def real_test_stats(path: str = str(CLASSIFIER)):
    """(μ, Σ, features) of the 10,000 real test digits."""
    from engine.models.classifier import predict
    from engine.mnist.data import load_mnist, to_float
    model, _ = load_classifier(path)
    data = load_mnist()
    _, feats = predict(model, to_float(data.test_images))
    mu, cov = gaussian_stats(feats)
    return mu, cov, feats


def evaluate_samples(images: np.ndarray, classifier_path: str = str(CLASSIFIER)) -> dict:
    """Quality figures of images (N, 28, 28) in [0, 1]: class histogram, mean confidence, FD."""
    from engine.models.classifier import predict
    a = np.asarray(images, dtype=np.float32)
    if a.ndim == 4:
        a = a[:, 0]
    if a.ndim != 3 or a.shape[1:] != (28, 28):
        raise ValueError(f"Samples must have shape (N, 28, 28); got {tuple(a.shape)}.")
    if len(a) < 2:
        raise ValueError("At least two samples are needed for the quality figures.")
    if not np.isfinite(a).all():
        raise ValueError("The samples contain NaN or infinite values.")
    a = np.clip(a, 0.0, 1.0)
    model, _ = load_classifier(classifier_path)
    probs, feats = predict(model, a)
    mu_r, cov_r, _ = real_test_stats(classifier_path)
    mu, cov = gaussian_stats(feats)
    counts = np.bincount(probs.argmax(1), minlength=10)
    return {
        "n": int(len(a)),
        "class_counts": counts.tolist(),
        "classes_present": int((counts > 0).sum()),
        "mean_confidence": float(probs.max(1).mean()),
        "frechet_distance": frechet_distance(mu, cov, mu_r, cov_r),
        "class_balance_tv": float(0.5 * np.abs(counts / counts.sum() - 0.1).sum()),
    }


def real_reference(n: int, seed: int = 0, classifier_path: str = str(CLASSIFIER)) -> dict:
    """The same figures for n random real test digits (what a perfect sampler would score at n)."""
    from engine.mnist.data import load_mnist
    data = load_mnist()
    idx = np.random.default_rng(seed).choice(len(data.test_images), n, replace=False)
    return evaluate_samples(data.test_images[idx].astype(np.float32) / 255.0, classifier_path)
