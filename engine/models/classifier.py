"""A small MNIST CNN classifier, trained here and shipped, whose 128-d penultimate features give a
Fréchet distance between generated and real digits (a small-scale FID for MNIST)."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from engine.models.registry import register


class MnistClassifier(nn.Module):
    """conv(16) → pool → conv(32) → pool → fc(128) [features] → fc(10). Input (N, 1, 28, 28) in [0, 1]."""

    def __init__(self, width: int = 16, features: int = 128):
        super().__init__()
        self.config = {"width": width, "features": features}
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.fc = nn.Linear(2 * width * 7 * 7, features)
        self.head = nn.Linear(features, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.conv1(x - 0.5)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return F.relu(self.fc(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register("mnist_classifier")
def build_classifier(**kw) -> MnistClassifier:
    return MnistClassifier(**kw)


def train_classifier(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                     test_y: np.ndarray, epochs: int = 2, batch: int = 128, lr: float = 1e-3,
                     seed: int = 0, log=print) -> tuple[MnistClassifier, dict]:
    """Adam on cross-entropy with small random shifts; returns (model, {test_accuracy, …})."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = MnistClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x = torch.from_numpy(np.asarray(train_x, dtype=np.float32))
    y = torch.from_numpy(np.asarray(train_y, dtype=np.int64))
    t0 = time.time()
    for epoch in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            xb = x[idx]
            dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=g))
            xb = torch.roll(xb, shifts=(dx, dy), dims=(2, 3))
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        acc = accuracy(model, test_x, test_y)
        log(f"epoch {epoch + 1}: test accuracy {acc:.4f} ({time.time() - t0:.0f} s)")
    model.eval()
    return model, {"test_accuracy": accuracy(model, test_x, test_y), "epochs": epochs,
                   "wall_seconds": time.time() - t0}


@torch.no_grad()
def predict(model: MnistClassifier, images: np.ndarray, batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (N, 10), features (N, 128)) for images (N, 28, 28) or (N, 1, 28, 28) in [0, 1]."""
    a = np.asarray(images, dtype=np.float32)
    if a.ndim == 3:
        a = a[:, None]
    probs, feats = [], []
    model.eval()
    for i in range(0, len(a), batch):
        xb = torch.from_numpy(a[i:i + batch])
        f = model.features(xb)
        probs.append(F.softmax(model.head(f), dim=1).numpy())
        feats.append(f.numpy())
    return np.concatenate(probs), np.concatenate(feats)


def accuracy(model: MnistClassifier, images: np.ndarray, labels: np.ndarray) -> float:
    p, _ = predict(model, images)
    return float((p.argmax(1) == np.asarray(labels)).mean())
