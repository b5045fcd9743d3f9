"""Where torch computes: the device (CUDA when present, then Apple MPS, else CPU for 'auto'; an
explicit device that is not there is an error, DeviceUnavailable, never a silent fall-back) and
how many CPU threads a piece of small work gets."""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

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


SMALL_WORK = 1 << 15  # tensors up to this many elements run fastest on one intra-op thread


@contextmanager
def one_thread():
    """Run with one torch intra-op thread, then restore the configured count. For small tensors
    (a few thousand elements per op, or a small MLP) a second thread costs more than it saves, and
    on a busy machine its spin-waiting costs milliseconds per op (softmax went from 10 µs to 7 ms
    here; a 2D MLP on 1000 points was 10–25× slower on a busy 2-core machine)."""
    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def small_tensor_threads(numel: int):
    """one_thread() for a loop of ops on at most SMALL_WORK elements; larger work keeps the
    configured thread count."""
    return one_thread() if numel <= SMALL_WORK else nullcontext()
