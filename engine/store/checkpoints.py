"""Safe checkpoints: weights in safetensors (no pickle: loading can never run code) and a JSON
sidecar with the model spec, noise schedule, data, steps, wall time and metrics.

A checkpoint is a pair  NAME.safetensors + NAME.json ; either path (or NAME) opens it.
Every failure to load is a CheckpointError whose message is one sentence for the user.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

FORMAT = "scorelab-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (missing, truncated, foreign, other shape)."""


def _paths(path) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_suffix(".safetensors"), p.with_suffix(".json")


def _atomic_write(path: Path, write) -> None:
    """Write to a temp file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_json(path, data: dict) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1, default=_json_default)
    _atomic_write(Path(path), write)


def _json_default(obj):
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def save_checkpoint(path, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    """Write NAME.safetensors then NAME.json (the JSON last: it marks the pair complete)."""
    weights_path, meta_path = _paths(path)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    _atomic_write(weights_path, lambda tmp: save_file(tensors, tmp))
    atomic_write_json(meta_path, {"format": FORMAT, "version": VERSION, **meta})
    return weights_path


def save_model(path, model: torch.nn.Module, meta: dict) -> Path:
    """Save a model whose JSON spec is meta['model'] (needed to rebuild it)."""
    if "model" not in meta:
        raise ValueError("meta['model'] (the builder spec) is required to reload the model.")
    return save_checkpoint(path, model.state_dict(), meta)


def read_meta(path) -> dict:
    weights_path, meta_path = _paths(path)
    if not meta_path.exists():
        if weights_path.exists():
            raise CheckpointError(f"{weights_path.name} has no {meta_path.name} beside it, so it "
                                  f"cannot be identified as a Score Lab checkpoint.")
        raise CheckpointError(f"No checkpoint found at {path}.")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CheckpointError(f"{meta_path.name} is not valid JSON (truncated or corrupt).") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path.name} is not a Score Lab checkpoint.")
    if meta.get("version", 0) > VERSION:
        raise CheckpointError(f"{meta_path.name} was written by a newer Score Lab (format "
                              f"{meta.get('version')}); update to load it.")
    return meta


def load_checkpoint(path, device="cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, meta) or CheckpointError."""
    meta = read_meta(path)
    weights_path, _ = _paths(path)
    if not weights_path.exists():
        raise CheckpointError(f"The weights file {weights_path.name} is missing.")
    try:
        tensors = load_file(str(weights_path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError):
        raise CheckpointError(f"{weights_path.name} is not a readable safetensors file "
                              f"(truncated or corrupt).") from None
    return tensors, meta


def load_model(path, device="cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild the network from meta['model'] and load its weights; CheckpointError otherwise."""
    from engine.models.registry import build_model

    tensors, meta = load_checkpoint(path, device)
    spec = meta.get("model")
    if not isinstance(spec, dict):
        raise CheckpointError(f"{path} does not say which model it holds.")
    try:
        model = build_model(spec)
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path} describes a model this version cannot build ({err}).") from None
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError:
        raise CheckpointError(f"{path} holds weights of a different shape than its model "
                              f"description.") from None
    return model.to(device).eval(), meta
