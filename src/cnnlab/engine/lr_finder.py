"""The learning-rate range test (Smith 2015, "Cyclical Learning Rates for Training Neural Networks",
arXiv:1506.01186, section 3.3): train for a few steps while the learning rate grows exponentially and
watch the loss.

* The sweep: step ``i`` of ``N`` uses ``lr_i = start_lr * (end_lr / start_lr) ** (i / (N - 1))``. Each
  optimizer group keeps its ratio to the optimizer's default lr (a backbone at 0.1 x the head's stays
  at 0.1 x), so the swept value is what ``--lr`` would be. The data loader is cycled when it has
  fewer batches than steps.
* The loss is smoothed by an exponential moving average ``m_i = beta m_(i-1) + (1 - beta) loss_i``
  with Adam's bias correction ``m_i / (1 - beta ** i)`` (so the first points are not pulled to 0).
  The test stops early when the smoothed loss exceeds ``diverge`` times its minimum so far, or when a
  loss is not finite.
* That average lags the loss by about ``beta / (1 - beta)`` steps (49 at 0.98: half the sweep, more
  than a decade of lr), which would move every reading to larger rates. The suggestions are read from
  a curve without lag instead: the same bias-corrected average run forwards, then backwards over its
  result (:func:`zero_lag`; a deviation from fastai, which reads the lagging average), over the losses
  capped at the stop threshold (``diverge`` times the smallest moving average), so that the one
  exploded loss that stopped the test does not swamp the curve.
* Suggestions (:data:`RULES`): ``steepest``, the lr where that curve falls fastest against
  ``log10(lr)`` (the most negative ``np.gradient``), searched before its minimum (the descent),
  skipping the first :data:`SKIP_START` points; ``min/10``, the lr of its minimum divided by 10 (at
  the minimum the loss is about to rise). Smith reads the range off the plot; both rules are the
  usual automatic readings.
* Everything the test changes is put back afterwards, bitwise: the model's parameters and buffers
  (BatchNorm statistics included), each module's train/eval mode, the parameters' gradients, the
  optimizer's state and groups, and the Python, NumPy, torch CPU and CUDA generators. What follows
  the test is therefore the same as if it had not run.

Deviations from a training step: no mixed precision, gradient accumulation or L1 penalty (the
learning rate they need is the same to within the sweep's resolution); ``grad_clip`` is applied.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..config import check_number
from ..errors import CnnlabError
from .loading import iterate, make_loader

SKIP_START = 5  # points at the start of the sweep left out of the steepest-descent search
MIN_DROP = 0.01  # a minimum less than 1% below the first value of the curve is no descent


@dataclass
class RangeTestConfig:
    """The sweep's settings; every learning rate is per optimizer step."""

    start_lr: float = 1e-7  # first learning rate of the sweep
    end_lr: float = 10.0  # last learning rate (unless the loss diverges first)
    steps: int = 100  # optimizer steps (one batch each; the data is cycled when it has fewer batches)
    smoothing: float = 0.9  # beta of the loss's moving average (bias-corrected; memory 1 / (1 - beta) steps)
    diverge: float = 4.0  # stop when the smoothed loss exceeds this multiple of its minimum so far
    batch_size: int = 16  # images per step
    seed: int = 0  # order of the batches
    workers: int = 0  # DataLoader worker processes
    grad_clip: float = 0.0  # max global L2 norm of the gradients (0: off)

    def check(self) -> None:
        check_number("start_lr", self.start_lr, low=0, low_open=True)
        check_number("end_lr", self.end_lr, low=0, low_open=True)
        if self.end_lr <= self.start_lr:
            raise CnnlabError(f"--end-lr {self.end_lr} must be larger than --start-lr {self.start_lr}")
        check_number("steps", self.steps, low=SKIP_START + 3, integer=True)
        check_number("smoothing", self.smoothing, low=0, high=1, high_open=True)
        check_number("diverge", self.diverge, low=1, low_open=True)
        check_number("batch_size", self.batch_size, low=1, integer=True)
        check_number("seed", self.seed, low=0, high=2**63 - 1, integer=True)
        check_number("workers", self.workers, low=0, integer=True)
        check_number("grad_clip", self.grad_clip, low=0)


@dataclass
class RangeTestResult:
    lrs: list[float]  # the learning rate of each step taken
    losses: list[float]  # the raw training loss of each step (the last may be inf or nan)
    smoothed: list[float]  # the bias-corrected moving average (the stop rule's), one per finite loss
    curve: list[float]  # the same without lag (forwards and backwards), which the suggestions read
    stopped: str  # completed | diverged | non-finite
    suggestions: dict[str, float | None] = field(default_factory=dict)  # rule -> lr (None: no descent seen)

    @property
    def minimum(self) -> tuple[float, float]:
        """(lr, loss) at the minimum of :attr:`curve`."""
        i = int(np.argmin(self.curve))
        return self.lrs[i], self.curve[i]

    def suggest(self, rule: str) -> float:
        """The lr a rule suggests; a one-line error when the sweep saw no descent to read it from."""
        if rule not in RULES:
            raise CnnlabError(f"unknown lr rule {rule!r}; use one of {', '.join(RULES)}")
        lr = self.suggestions.get(rule)
        if lr is None:
            raise CnnlabError(f"the LR range test saw no descent of the loss ({len(self.smoothed)} steps, "
                              f"{self.lrs[0]:.2g} to {self.lrs[-1]:.2g}, {self.stopped}); widen "
                              "--start-lr/--end-lr or give --lr")
        return lr


def sweep_lrs(start: float, end: float, steps: int) -> np.ndarray:
    """The exponential sweep: ``steps`` learning rates from ``start`` to ``end`` (both included)."""
    return start * (end / start) ** (np.arange(steps) / (steps - 1))


def moving_average(values, beta: float) -> np.ndarray:
    """The bias-corrected exponential moving average of ``values``."""
    out, average = np.empty(len(values)), 0.0
    for i, v in enumerate(values):
        average = beta * average + (1 - beta) * float(v)
        out[i] = average / (1 - beta ** (i + 1))
    return out


def zero_lag(values, beta: float) -> np.ndarray:
    """:func:`moving_average` forwards, then backwards over the result: the lags cancel."""
    return moving_average(moving_average(values, beta)[::-1], beta)[::-1]


def steepest(lrs, smoothed) -> float | None:
    """The lr of the most negative slope of ``smoothed`` against log10(lr), before its minimum (None
    when the curve does not descend, see :data:`MIN_DROP`)."""
    s = np.asarray(smoothed, dtype=np.float64)
    end = int(np.argmin(s)) + 1
    if end - SKIP_START < 3 or not _descends(s):
        return None
    logs = np.log10(np.asarray(lrs[:len(s)], dtype=np.float64))
    slope = np.gradient(s[:end], logs[:end])[SKIP_START:]
    i = int(np.argmin(slope))
    return float(lrs[SKIP_START + i]) if slope[i] < 0 else None


def min_over_10(lrs, smoothed) -> float | None:
    """The lr of the curve's minimum / 10 (None when the curve does not descend, see :data:`MIN_DROP`)."""
    i = int(np.argmin(smoothed))
    return float(lrs[i]) / 10 if i > 0 and _descends(np.asarray(smoothed, dtype=np.float64)) else None


def _descends(curve: np.ndarray) -> bool:
    return bool(curve.min() < curve[0] - MIN_DROP * abs(curve[0]))


RULES: dict[str, Callable] = {"steepest": steepest, "min/10": min_over_10}


def cross_entropy(output, target: torch.Tensor) -> torch.Tensor:
    """The default loss: cross-entropy of the main output (auxiliary heads ignored)."""
    return F.cross_entropy(output[0] if isinstance(output, tuple | list) else output, target)


def range_test(model: nn.Module, optimizer: torch.optim.Optimizer, data,
               config: RangeTestConfig | None = None, *, loss_fn: Callable | None = None,
               device: torch.device | None = None, set_train_mode: Callable | None = None) -> RangeTestResult:
    """Run the range test of ``model`` with ``optimizer`` on ``data`` (a Dataset of ``(input, label)``)
    and put everything back (see the module docstring). ``loss_fn(output, target)``: the training
    objective (default :func:`cross_entropy`); ``set_train_mode(model)``: instead of ``model.train()``."""
    config = config or RangeTestConfig()
    config.check()
    device = device or next(model.parameters()).device
    model.to(device)  # before the snapshot: the model stays on ``device``
    batches = _batches(data, config, device)
    try:
        with restored(model, optimizer):
            (set_train_mode or (lambda m: m.train()))(model)
            lrs, losses, smoothed, stopped = _sweep(model, optimizer, batches, config,
                                                    loss_fn or cross_entropy)
    finally:
        batches.close()  # ends the loader's worker processes
    if not smoothed:
        raise CnnlabError(f"the first loss of the LR range test was {losses[0]} at lr {lrs[0]:.2g}; lower "
                          "--start-lr or check the data")
    # losses past the stop threshold are capped at it: the backward pass would spread one exploded loss
    # over the whole curve
    capped = np.minimum(losses[:len(smoothed)], config.diverge * min(smoothed))
    curve = zero_lag(capped, config.smoothing).tolist()
    suggestions = {name: rule(lrs, curve) for name, rule in RULES.items()}
    return RangeTestResult(lrs, losses, smoothed, curve, stopped, suggestions)


def _sweep(model, optimizer, batches, config: RangeTestConfig, loss_fn):
    base = optimizer.defaults.get("lr") or optimizer.param_groups[0]["lr"]
    factors = [g["lr"] / base for g in optimizer.param_groups]  # each group's ratio to the main lr
    beta, average, best = config.smoothing, 0.0, math.inf
    lrs, losses, smoothed = [], [], []
    for i, lr in enumerate(sweep_lrs(config.start_lr, config.end_lr, config.steps).tolist()):
        for group, factor in zip(optimizer.param_groups, factors):
            group["lr"] = lr * factor
        loss = _step(model, optimizer, *next(batches), loss_fn, config.grad_clip)
        lrs.append(lr)
        losses.append(loss)
        if not math.isfinite(loss):
            return lrs, losses, smoothed, "non-finite"
        average = beta * average + (1 - beta) * loss
        smoothed.append(average / (1 - beta ** (i + 1)))
        best = min(best, smoothed[-1])
        if smoothed[-1] > config.diverge * best:
            return lrs, losses, smoothed, "diverged"
    return lrs, losses, smoothed, "completed"


def _step(model, optimizer, x, y, loss_fn, grad_clip: float) -> float:
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    value = float(loss.detach())
    if not math.isfinite(value):
        return value  # no update from a non-finite loss
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], grad_clip)
    optimizer.step()
    return value


def _batches(data, config: RangeTestConfig, device: torch.device):
    """Shuffled batches on ``device``, forever (a new order every pass)."""
    sampler = torch.utils.data.RandomSampler(data, generator=torch.Generator().manual_seed(config.seed))
    loader = make_loader(data, batch_size=config.batch_size, sampler=sampler, workers=config.workers,
                         seed=config.seed, drop_last=len(data) > config.batch_size, device=device.type)
    if len(loader) == 0:
        raise CnnlabError("the LR range test has no training data")
    while True:
        empty = True
        for batch in iterate(loader):
            if batch is None:  # every file of the batch was unreadable
                continue
            empty = False
            x, y = batch[0], batch[1]
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if empty:
            raise CnnlabError("the LR range test found no readable training image")


@contextlib.contextmanager
def restored(model: nn.Module, optimizer: torch.optim.Optimizer):
    """Put the model, the optimizer and the random generators back as they were when the block ends
    (also on an error): see the module docstring."""
    weights = {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}
    modes = {name: m.training for name, m in model.named_modules()}
    grads = [None if p.grad is None else p.grad.detach().clone() for p in model.parameters()]
    opt_state = copy.deepcopy(optimizer.state_dict())
    rng = _generators()
    try:
        yield
    finally:
        model.load_state_dict(weights)
        for name, m in model.named_modules():
            m.training = modes[name]
        for p, g in zip(model.parameters(), grads):
            p.grad = g
        optimizer.load_state_dict(opt_state)
        _set_generators(rng)


def _generators() -> tuple:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    return random.getstate(), np.random.get_state(), torch.get_rng_state(), cuda


def _set_generators(state: tuple) -> None:
    py, npy, cpu, cuda = state
    random.setstate(py)
    np.random.set_state(npy)
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)
