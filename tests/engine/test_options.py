"""The loop's options run together: mixed precision, channels_last, accumulation, clipping, EMA, L1,
label smoothing, warmup, early stopping, auxiliary heads."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from cnnlab.engine import FitConfig, fit


def _data(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 8, 8, generator=g)
    return TensorDataset(x, (x.mean((1, 2, 3)) > 0).long())


class WithAux(nn.Module):
    """Returns (main, aux) in training mode, like GoogLeNet."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten())
        self.main, self.aux = nn.Linear(144, 2), nn.Linear(144, 2)

    def forward(self, x):
        h = self.body(x)
        return (self.main(h), self.aux(h)) if self.training else self.main(h)


@pytest.mark.parametrize("amp", ["off", "bf16", "fp16"])
def test_options_together(amp):
    torch.manual_seed(0)
    cfg = FitConfig(
        epochs=2,
        batch_size=8,
        amp=amp,
        channels_last=True,
        accum_steps=2,
        grad_clip=1.0,
        ema=True,
        ema_decay=0.9,
        l1=1e-4,
        label_smoothing=0.1,
        warmup=0.5,
        optimizer="nesterov",
        lr=0.05,
        schedule="onecycle",
        weight_decay=1e-4,
        wd_exclude_norm_bias=True,
        progress=False,
    )
    model = WithAux()
    result = fit(model, _data(40, 0), _data(9, 1), cfg, num_classes=2)
    assert [r["epoch"] for r in result.history] == [1, 2]
    assert result.step == 2 * 3  # 5 batches of 8 per epoch, 2 per step -> 3 steps (the last one short)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_early_stop_after_patience_epochs_without_improvement():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 2))
    cfg = FitConfig(epochs=50, batch_size=8, lr=0.0, optimizer="sgd", early_stop=2, progress=False)
    result = fit(model, _data(16, 0), _data(9, 1), cfg, num_classes=2)
    assert result.stopped == "early-stop" and len(result.history) == 3  # lr 0: never improves after epoch 1
