"""Registry of model builders, so a checkpoint's JSON `model` spec rebuilds its network without
unpickling anything: {"kind": "mlp2d", ...kwargs} → nn.Module."""

from __future__ import annotations

import importlib

from torch import nn

BUILDERS: dict = {}

# Modules that register builders on import (loaded lazily: a missing one is simply skipped).
_MODULES = ("engine.models.mlp", "engine.models.unet", "engine.models.classifier", "engine.models.time_mlp",
            "engine.vae.models")


def register(kind: str):
    def deco(builder):
        BUILDERS[kind] = builder
        return builder
    return deco


def _load_all() -> None:
    for name in _MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise


def build_model(spec: dict) -> nn.Module:
    """Build a network from its JSON spec; ValueError (one sentence) for an unknown kind."""
    _load_all()
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind not in BUILDERS:
        raise ValueError(f"Unknown model kind {kind!r} in the checkpoint; this version knows "
                         f"{', '.join(sorted(BUILDERS)) or 'none'}.")
    return BUILDERS[kind](**spec)
