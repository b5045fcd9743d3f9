"""Device choice: CUDA when present, then Apple MPS, else CPU ('auto'); an explicit device that
is not there is an error (DeviceUnavailable), never a silent fall-back."""

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


class DeviceUnavailable(ValueError):
    """An explicitly requested device this machine does not have (one sentence)."""


def pick_device(preference: str = "auto") -> torch.device:
    """'auto' → the best available; an explicit choice must be available (DeviceUnavailable)."""
    devices = available_devices()
    if preference == "auto":
        return torch.device(devices[0])
    if preference not in devices:
        raise DeviceUnavailable(f"--device {preference} was asked for, but this machine has no "
                                f"{preference.upper()} (available: {', '.join(devices)}); use "
                                f"--device auto or cpu.")
    return torch.device(preference)
