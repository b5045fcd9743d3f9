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
    version = meta.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise CheckpointError(f"{meta_path.name} has a format version {version!r} that is not a "
                              f"whole number.")
    if version > VERSION:
        raise CheckpointError(f"{meta_path.name} was written by a newer Score Lab (format "
                              f"{version}); update to load it.")
    problem = meta_type_problem(meta)
    if problem:
        raise CheckpointError(f"{meta_path.name} is damaged: {problem}.")
    return meta


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _numbers(v) -> bool:
    return isinstance(v, list) and all(_is_number(x) or (isinstance(x, list) and all(map(_is_number, x)))
                                       for x in v)


# Fields the pages and samplers read from a sidecar, and what each must hold when present.
META_TYPES = {
    "model": (lambda v: isinstance(v, dict) and isinstance(v.get("kind", ""), str), "an object naming its kind"),
    "step": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
    "steps": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
    "objective": (lambda v: isinstance(v, str), "a text"),
    "title": (lambda v: isinstance(v, str), "a text"),
    "state": (lambda v: isinstance(v, str), "a text"),
    "task": (lambda v: isinstance(v, str), "a text"),
    "sigmas": (_numbers, "a list of numbers"),
    "schedule": (lambda v: isinstance(v, dict) and _numbers(v.get("sigmas", [])) and all(
        _is_number(v[k]) for k in ("sigma_max", "sigma_min", "gamma", "step_size", "steps_per_level")
        if v.get(k) is not None), "an object of numbers"),
    "metrics": (lambda v: isinstance(v, dict), "an object"),
    "target": (lambda v: isinstance(v, dict) and all(_numbers(v.get(k, [])) for k in ("means", "weights", "stds")),
               "an object with numeric means, weights and stds"),
    "data": (lambda v: isinstance(v, dict), "an object"),
    "sde": (lambda v: isinstance(v, dict), "an object"),
}


def meta_type_problem(meta: dict) -> str:
    """'' when every known field of a sidecar has the type the readers expect, else why not."""
    for key, (ok, what) in META_TYPES.items():
        if key in meta and meta[key] is not None and not ok(meta[key]):
            return f"its {key!r} should be {what}, not {meta[key]!r:.60}"
    mixture = (meta.get("data") or {}).get("mixture")
    if mixture is not None and not (isinstance(mixture, dict) and all(
            _numbers(mixture.get(k, [])) for k in ("means", "weights", "stds"))):
        return "its data mixture should hold numeric means, weights and stds"
    return ""


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
        model = build_model(spec)   # sizes checked against sane bounds before allocating
    except (ValueError, TypeError, RuntimeError, OverflowError, KeyError) as err:
        raise CheckpointError(f"{path} describes a model this version cannot build "
                              f"({' '.join(str(err).split())[:200]}).") from None
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError:
        raise CheckpointError(f"{path} holds weights of a different shape than its model "
                              f"description.") from None
    return model.to(device).eval(), meta
