"""Exponential moving average of the weights (Polyak averaging; the "EMA" of timm and of the
EfficientNet paper's training recipe, decay 0.9999 per step there).

``ema = decay * ema + (1 - decay) * w`` after every optimizer step, for the floating-point parameters
and buffers; integer buffers (BatchNorm's ``num_batches_tracked``) are copied.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEma:
    """A frozen copy of ``model`` that follows its weights with ``decay`` per optimizer step."""

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_sd = self.module.state_dict()
        for name, value in model.state_dict().items():
            target = ema_sd[name]
            if target.dtype.is_floating_point:
                target.mul_(self.decay).add_(value.detach().to(target.dtype), alpha=1.0 - self.decay)
            else:
                target.copy_(value)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(sd)
