"""Which MNIST score checkpoints exist: the shipped ones (checkpoints/manifest.json) and finished
or running training runs (run folders holding an image model)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from engine.store.checkpoints import CheckpointError, read_meta
from engine.store.runs import run_checkpoints

from engine.paths import PROJECT_ROOT  # noqa: E402
CHECKPOINTS = PROJECT_ROOT / "checkpoints"
MANIFEST = CHECKPOINTS / "manifest.json"


@dataclass(frozen=True)
class ImageCheckpoint:
    label: str
    path: str          # NAME (without suffix)
    objective: str     # "ncsn" | "dsm"
    shipped: bool


def read_manifest(path: Path | None = None) -> dict:
    path = MANIFEST if path is None else path
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return {"checkpoints": {}}
    if not isinstance(data, dict) or not isinstance(data.get("checkpoints"), dict):
        return {"checkpoints": {}}
    return data


def shipped_image_checkpoints(path: Path | None = None) -> list[ImageCheckpoint]:
    path = MANIFEST if path is None else path
    out = []
    for name, entry in read_manifest(path)["checkpoints"].items():
        if entry.get("kind") != "ncsn_unet":
            continue
        ckpt = str(Path(path).parent / entry.get("file", name))
        try:
            meta = read_meta(ckpt)
        except CheckpointError:
            continue
        out.append(ImageCheckpoint(entry.get("title", name), ckpt, meta.get("objective", "ncsn"), True))
    return out


def run_image_checkpoints(runs_root) -> list[ImageCheckpoint]:
    out = []
    for d, meta in run_checkpoints(runs_root):
        if meta.get("model", {}).get("kind") != "ncsn_unet":
            continue
        out.append(ImageCheckpoint(f"run {d.name} (step {meta.get('step', '?')}, {meta.get('objective')})",
                                   str(d / "model"), meta.get("objective", "ncsn"), False))
    return out
