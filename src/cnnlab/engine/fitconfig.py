"""The loop's settings (:class:`FitConfig`), with their units; :class:`cnnlab.workflows.train.TrainConfig`
extends it with the model, the data and the run folder."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import CnnlabError
from .optim import OPTIMIZERS, SCHEDULES

AMP_DTYPES: dict[str, torch.dtype | None] = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class FitConfig:
    epochs: int = 10
    batch_size: int = 64  # per process
    optimizer: str = "adam"  # one of OPTIMIZERS
    lr: float = 1e-3  # base learning rate (peak, after warmup)
    momentum: float = 0.9  # for momentum / nesterov
    weight_decay: float = 0.0  # L2 coefficient (decoupled for adamw)
    wd_exclude_norm_bias: bool = False  # no weight decay (and no L1) on biases and norm parameters
    l1: float = 0.0  # coefficient of sum(|w|) added to the loss
    schedule: str = "cosine"  # one of SCHEDULES, per optimizer step
    warmup: float = 0.0  # epochs of linear warmup
    step_size: float = 0.0  # epochs between decays of the "step" schedule (0: a third of the run)
    gamma: float = 0.1  # decay factor of the "step" schedule
    label_smoothing: float = 0.0
    aux_weight: float = 0.3  # weight of each auxiliary head's loss (GoogLeNet)
    amp: str = "off"  # off | bf16 | fp16 (fp16 with dynamic loss scaling)
    channels_last: bool = False
    compile: bool = False
    ema: bool = False  # evaluate and export an exponential moving average of the weights
    ema_decay: float = 0.999  # per optimizer step
    grad_clip: float = 0.0  # max global L2 norm of the gradients (0: off)
    accum_steps: int = 1  # batches per optimizer step
    early_stop: int = 0  # stop after this many epochs without a better val top-1 (0: off)
    checkpoint_every: int = 0  # optimizer steps between checkpoints, besides every epoch end (0: off)
    seed: int = 0
    sync_bn: bool = False  # SyncBatchNorm under DDP
    workers: int = 0  # DataLoader worker processes
    progress: bool = True  # tqdm bar (on a terminal, rank 0)

    def check(self) -> None:
        """Raise a one-line :class:`CnnlabError` for a value that cannot work."""
        choices = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "amp": AMP_DTYPES}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise CnnlabError(f"--{key.replace('_', '-')} {getattr(self, key)!r} is not one of "
                                  f"{', '.join(allowed)}")
        for key in ("epochs", "batch_size", "accum_steps"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                raise CnnlabError(f"--{key.replace('_', '-')} must be an integer >= 1, got {getattr(self, key)!r}")
        for key in ("lr", "weight_decay", "l1", "warmup", "grad_clip", "label_smoothing", "aux_weight",
                    "step_size", "workers", "checkpoint_every", "early_stop"):
            if getattr(self, key) < 0:
                raise CnnlabError(f"--{key.replace('_', '-')} must be >= 0, got {getattr(self, key)!r}")
        if not 0 <= self.ema_decay < 1 or self.label_smoothing >= 1:
            raise CnnlabError("--ema-decay and --label-smoothing must be in [0, 1)")
