"""Binarised real MNIST for the VAE (engine.mnist.data; no synthetic fallback): pixel intensities in
[0, 1] flattened to 784, binarised by x ~ Bernoulli(intensity) — afresh for every training batch
(dynamic binarisation), once with a fixed seed for the test digits, so log p(x) is a probability
of a binary image (nats)."""

from __future__ import annotations

import torch

from engine.mnist.data import load_mnist, to_float


def intensities(split: str = "train", n: int | None = None) -> torch.Tensor:
    """(N, 784) float32 in [0, 1]: the first n images of the split (all when n is None)."""
    images = load_mnist().images(split)
    if n is not None:
        images = images[:n]
    return torch.from_numpy(to_float(images)).reshape(len(images), -1)


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return torch.bernoulli(x, generator=generator)


def test_digits(n: int, seed: int = 0) -> torch.Tensor:
    """The first n test digits, binarised once with `seed` (the same digits for every model)."""
    return binarize(intensities("test", n), torch.Generator().manual_seed(seed))
