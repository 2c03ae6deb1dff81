"""Optimizers, learning-rate schedules and the L1 / L2 penalties.

Names are data: :data:`OPTIMIZERS` and :data:`SCHEDULES` map a name to a builder, so the CLI's
choices and the error messages come from the same dicts.

* Weight decay is the optimizer's own ``weight_decay`` (coupled L2 for every optimizer except
  ``adamw``, where it is decoupled, Loshchilov & Hutter, arXiv:1711.05101). With
  ``exclude_norm_bias`` the 1-D parameters (biases, norm scales and shifts) get no decay.
* L1 is a penalty ``l1 * sum(|w|)`` added to the loss, over the same parameters that get decay.
* Every schedule is a per-step :class:`~torch.optim.lr_scheduler.LambdaLR` factor (a pure function
  of the optimizer step), so its state is one integer and resuming it is exact. ``warmup_steps``
  ramps the factor linearly from ``1 / (warmup_steps + 1)`` to 1 before any schedule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

from ..errors import CnnlabError

MOMENTUM = 0.9  # for "momentum" and "nesterov" (Sutskever et al. 2013)


def _sgd(params, lr, wd, momentum):
    return torch.optim.SGD(params, lr=lr, weight_decay=wd)


def _momentum(params, lr, wd, momentum):
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd)


def _nesterov(params, lr, wd, momentum):
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=True, weight_decay=wd)


def _adagrad(params, lr, wd, momentum):
    return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)


def _rmsprop(params, lr, wd, momentum):
    # alpha 0.9 and eps 1.0e-8 as in Hinton's lecture 6e and TensorFlow; torch's default alpha is 0.99
    return torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-8, weight_decay=wd)


def _adam(params, lr, wd, momentum):
    return torch.optim.Adam(params, lr=lr, weight_decay=wd)


def _adamw(params, lr, wd, momentum):
    return torch.optim.AdamW(params, lr=lr, weight_decay=wd)


OPTIMIZERS: dict[str, Callable] = {
    "sgd": _sgd, "momentum": _momentum, "nesterov": _nesterov, "adagrad": _adagrad,
    "rmsprop": _rmsprop, "adam": _adam, "adamw": _adamw,
}


def is_no_decay(name: str, param: torch.Tensor) -> bool:
    """Biases and normalisation parameters: every parameter with fewer than two dimensions."""
    return param.ndim <= 1


def param_groups(model: nn.Module, weight_decay: float, exclude_norm_bias: bool = False) -> list[dict]:
    """The trainable parameters (``requires_grad``) in one or two groups for weight decay."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if exclude_norm_bias and is_no_decay(name, p) else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay, "l1": True}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "l1": False})
    return [g for g in groups if g["params"]]


def build_optimizer(groups: Iterable[dict], name: str, lr: float, weight_decay: float = 0.0,
                    momentum: float = MOMENTUM) -> torch.optim.Optimizer:
    """An optimizer over ``groups`` (dicts with ``params`` and optional ``lr`` / ``weight_decay``).

    A group's own ``lr`` / ``weight_decay`` win over the arguments (discriminative learning rates).
    """
    if name not in OPTIMIZERS:
        raise CnnlabError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    groups = [dict(g) for g in groups]
    if not any(g["params"] for g in groups):
        raise CnnlabError("no trainable parameters: every parameter has requires_grad=False")
    return OPTIMIZERS[name](groups, lr, weight_decay, momentum)


def l1_penalty(optimizer: torch.optim.Optimizer) -> torch.Tensor | None:
    """sum(|w|) over the parameters of the groups marked ``l1`` (those that also get decay)."""
    terms = [p.abs().sum() for g in optimizer.param_groups if g.get("l1", True) for p in g["params"]]
    return torch.stack(terms).sum() if terms else None


# -- schedules: factor(step) multiplying each group's base lr -----------------------------------

def _constant(step: int, total: int, step_size: int, gamma: float) -> float:
    return 1.0


def _step(step: int, total: int, step_size: int, gamma: float) -> float:
    return gamma ** (step // max(1, step_size))


def _cosine(step: int, total: int, step_size: int, gamma: float) -> float:
    t = min(step / max(1, total), 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * t))


def _onecycle(step: int, total: int, step_size: int, gamma: float) -> float:
    """Smith & Topin (arXiv:1708.07120) as in torch's OneCycleLR: cosine up from 1/25 over 30% of the
    steps, cosine down to 1/(25 * 1e4). Deviation: the momentum is not cycled."""
    up = max(1, int(0.3 * total))
    start, end = 1 / 25, 1 / 25e4
    if step < up:
        return start + (1 - start) * 0.5 * (1 - math.cos(math.pi * step / up))
    t = min((step - up) / max(1, total - up), 1.0)
    return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * t))


SCHEDULES: dict[str, Callable[[int, int, int, float], float]] = {
    "constant": _constant, "step": _step, "cosine": _cosine, "onecycle": _onecycle,
}


def build_schedule(optimizer: torch.optim.Optimizer, name: str, total_steps: int, warmup_steps: int = 0,
                   step_size: int = 0, gamma: float = 0.1) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step schedule over ``total_steps`` optimizer steps (warmup included).

    ``step`` decays by ``gamma`` every ``step_size`` steps (default: a third of the steps after warmup).
    """
    if name not in SCHEDULES:
        raise CnnlabError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    shape = SCHEDULES[name]
    main = max(1, total_steps - warmup_steps)
    size = step_size or max(1, main // 3)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return shape(step - warmup_steps, main, size, gamma)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
