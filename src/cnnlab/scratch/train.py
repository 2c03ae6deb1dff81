"""The training loop: shuffled mini-batches, forward, loss, backward, optional penalty, step.

The loop is numpy only; a caller that wants a progress bar passes ``progress`` (any function that wraps
an iterable of batches and may be told the total, e.g. ``tqdm``) and ``on_epoch`` (called with each
:class:`EpochStats` as soon as the epoch ends).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from .losses import SoftmaxCrossEntropy
from .model import Sequential
from .optim import Optimizer


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    train_loss: float
    train_top1: float  # % of training images classified right while training (dropout/BN in train mode)
    val_loss: float
    val_top1: float  # %
    seconds: float  # wall time of the training pass (evaluation excluded)
    images_per_s: float  # training images per second


@dataclass(frozen=True)
class Arrays:
    """Training and validation data: images (N, C, H, W) and integer labels (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def minibatches(n: int, batch_size: int, rng: np.random.Generator | None) -> Iterator[np.ndarray]:
    """Index arrays covering range(n) once, shuffled when ``rng`` is given (the last may be short)."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def evaluate(model: Sequential, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> tuple[float, float]:
    """(mean cross-entropy, top-1 accuracy in %) in evaluation mode."""
    model.eval()
    loss_fn, total, correct = SoftmaxCrossEntropy(), 0.0, 0
    for idx in minibatches(len(x), batch_size, None):
        logits = model.forward(x[idx])
        total += loss_fn(logits, y[idx]) * len(idx)
        correct += int((logits.argmax(axis=1) == y[idx]).sum())
    return total / len(x), 100.0 * correct / len(x)


def train_one_epoch(model: Sequential, optimizer: Optimizer, x: np.ndarray, y: np.ndarray, batch_size: int,
                    rng: np.random.Generator, penalty: Callable | None = None,
                    progress: Callable[..., Iterable] | None = None) -> tuple[float, float]:
    """One pass over (x, y); returns (mean training loss without the penalty, top-1 in %)."""
    model.train()
    loss_fn, total, correct = SoftmaxCrossEntropy(), 0.0, 0
    size = len(x) if optimizer.full_batch else batch_size
    batches = minibatches(len(x), size, rng)
    if progress is not None:
        batches = progress(batches, total=-(-len(x) // size))
    weights = [p for name, p in model.named_params().items() if name.endswith("weight")]
    for idx in batches:
        logits = model.forward(x[idx])
        loss = loss_fn(logits, y[idx])
        model.backward(loss_fn.backward())
        if penalty is not None:
            penalty(weights)
        optimizer.step()
        total += loss * len(idx)
        correct += int((logits.argmax(axis=1) == y[idx]).sum())
    return total / len(x), 100.0 * correct / len(x)


def fit(model: Sequential, optimizer: Optimizer, data: Arrays, epochs: int, batch_size: int = 64,
        seed: int = 0, penalty: Callable | None = None, progress: Callable[..., Iterable] | None = None,
        on_epoch: Callable[[EpochStats], None] | None = None) -> list[EpochStats]:
    """Train for ``epochs`` and evaluate after each; returns one :class:`EpochStats` per epoch."""
    rng, history = np.random.default_rng(seed), []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        train_loss, train_top1 = train_one_epoch(
            model, optimizer, data.x_train, data.y_train, batch_size, rng, penalty, progress
        )
        seconds = time.perf_counter() - start
        val_loss, val_top1 = evaluate(model, data.x_val, data.y_val)
        stats = EpochStats(
            epoch, train_loss, train_top1, val_loss, val_top1, seconds, len(data.x_train) / seconds
        )
        history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
    return history
