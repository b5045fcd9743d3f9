"""Registry of model builders, so a checkpoint's JSON `model` spec rebuilds its network without
unpickling anything: {"kind": "mlp2d", ...kwargs} → nn.Module.

A spec comes from a file a user may hand us, so its sizes are checked before anything is
allocated: every size field (SIZE_LIMITS) must be a whole number in [1, limit], and the network is
first built on torch's "meta" device (shapes only, no memory) to count its parameters against
MAX_PARAMETERS.
"""

from __future__ import annotations

import importlib

import torch
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


# Size fields of the builders' specs and their largest sane value (the shipped models use far less).
SIZE_LIMITS = {"dim": 64, "hidden": 4096, "depth": 64, "layers": 64, "embed": 4096,
               "embed_dim": 4096, "channels": 1024, "width": 1024, "features": 4096,
               "latent": 1024, "blocks": 16, "noise_dim": 1024, "score_hidden": 4096, "data_dim": 4096}
MAX_PARAMETERS = 50_000_000


def check_sizes(spec: dict) -> None:
    """ValueError (one sentence) for a size field that is not a whole number in [1, limit]."""
    for name, limit in SIZE_LIMITS.items():
        if name not in spec:
            continue
        values = spec[name] if isinstance(spec[name], (list, tuple)) else [spec[name]]
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= limit:
                raise ValueError(f"its {name} {spec[name]!r} is not a size in [1, {limit}]")


def build_model(spec: dict) -> nn.Module:
    """Build a network from its JSON spec; ValueError (one sentence) for an unknown kind, a bad
    size, or more than MAX_PARAMETERS parameters (counted before any memory is allocated)."""
    _load_all()
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if not isinstance(kind, str) or kind not in BUILDERS:
        raise ValueError(f"Unknown model kind {kind!r} in the checkpoint; this version knows "
                         f"{', '.join(sorted(BUILDERS)) or 'none'}.")
    check_sizes(spec)
    try:
        with torch.device("meta"):
            n_params = sum(p.numel() for p in BUILDERS[kind](**spec).parameters())
    except (TypeError, ValueError):
        raise
    except Exception:  # noqa: BLE001 — a builder that cannot run on "meta": the size checks stand
        n_params = 0
    if n_params > MAX_PARAMETERS:
        raise ValueError(f"it would have {n_params:,} parameters, more than the {MAX_PARAMETERS:,} "
                         f"this version builds")
    return BUILDERS[kind](**spec)
