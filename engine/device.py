"""Device choice: CUDA when present, then Apple MPS, else CPU."""

from __future__ import annotations

import torch


def available_devices() -> list[str]:
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    found.append("cpu")
    return found


def pick_device(preference: str = "auto") -> torch.device:
    """'auto' → the best available; an unavailable explicit choice falls back to CPU."""
    devices = available_devices()
    if preference == "auto":
        return torch.device(devices[0])
    return torch.device(preference if preference in devices else "cpu")
