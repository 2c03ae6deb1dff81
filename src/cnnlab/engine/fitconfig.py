"""The loop's settings (:class:`FitConfig`), with their units; :class:`cnnlab.workflows.train.TrainConfig`
extends it with the model, the data and the run folder."""

from __future__ import annotations

from dataclasses import dataclass

import torch

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
    step_size: float | None = None  # epochs between decays of the "step" schedule (None: a third of the run)
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
        """Raise a one-line :class:`CnnlabError` for a value that cannot work (NaN and infinities
        included); the one place where the loop's settings are checked, for the CLI and Python alike."""
        from ..config import check_choice, check_number

        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("amp", self.amp, AMP_DTYPES)
        for key in ("epochs", "batch_size", "accum_steps"):
            check_number(key, getattr(self, key), low=1, integer=True)
        for key in ("workers", "checkpoint_every", "early_stop"):
            check_number(key, getattr(self, key), low=0, integer=True)
        check_number("seed", self.seed, low=0, high=2**63 - 1, integer=True)
        self.check_lr()
        for key in ("weight_decay", "l1", "warmup", "grad_clip", "aux_weight"):
            check_number(key, getattr(self, key), low=0)
        check_number("momentum", self.momentum, low=0, high=1, high_open=True)
        check_number("step_size", self.step_size, low=0, low_open=True, none=True)
        check_number("gamma", self.gamma, low=0, high=1, low_open=True)
        check_number("label_smoothing", self.label_smoothing, low=0, high=1, high_open=True)
        check_number("ema_decay", self.ema_decay, low=0, high=1, high_open=True)

    def check_lr(self) -> None:
        """The learning rate's check (a subclass may accept more, e.g. ``"auto"``)."""
        from ..config import check_number

        check_number("lr", self.lr, low=0, low_open=True)
