"""Exponential moving average of a model's weights (what the training loop checkpoints and samples).

    θ_ema ← d θ_ema + (1 − d) θ,   d = min(decay, (1 + n)/(10 + n)) at update n = 0, 1, …

The warm-up of d is score_sde's: early averages forget the random initialisation quickly.
Buffers that are not floating point (counters) are copied, not averaged.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class Ema:
    """`ema.model` holds θ_ema (a frozen copy in eval mode); `update(model)` after each step."""

    def __init__(self, model: nn.Module, decay: float = 0.999):
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        self.updates += 1
        for e, p in zip(self.model.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.mul_(d).add_(p.detach(), alpha=1 - d)
            else:
                e.copy_(p)

    def state_dict(self) -> dict:
        """{"updates": n, "weights": θ_ema} — enough to continue the average exactly."""
        return {"updates": self.updates, "weights": self.model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["weights"])
        self.updates = int(state["updates"])
