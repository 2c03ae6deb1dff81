"""Softmax cross-entropy and the L1 / L2 weight penalties."""

from __future__ import annotations

import numpy as np

from .base import Param


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax along the last axis, shifted by the row maximum so exp never overflows."""
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


class SoftmaxCrossEntropy:
    """L = -(1/N) sum_n log softmax(z_n)[y_n]; dL/dz = (softmax(z) - onehot(y)) / N.

    ``forward(logits, labels)`` returns the mean loss; ``backward()`` returns dL/d(logits).
    """

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        logp = log_softmax(logits)
        rows = np.arange(len(labels))
        self._cache = (logp, labels)
        return float(-logp[rows, labels].mean())

    def backward(self) -> np.ndarray:
        logp, labels = self._cache
        grad = np.exp(logp)
        grad[np.arange(len(labels)), labels] -= 1
        return grad / len(labels)

    __call__ = forward


class L2Penalty:
    """R = (lam / 2) sum w^2 over the given parameters; dR/dw = lam w (the same as SGD's weight decay
    ``lam``)."""

    def __init__(self, lam: float) -> None:
        self.lam = lam

    def __call__(self, params: list[Param]) -> float:
        """Add dR/dw to every ``p.grad`` and return R."""
        for p in params:
            p.grad = p.grad + self.lam * p.data
        return 0.5 * self.lam * float(sum((p.data * p.data).sum() for p in params))


class L1Penalty:
    """R = lam sum |w|; dR/dw = lam sign(w) (a subgradient, 0 at w = 0). Drives weights to exactly 0."""

    def __init__(self, lam: float) -> None:
        self.lam = lam

    def __call__(self, params: list[Param]) -> float:
        """Add dR/dw to every ``p.grad`` and return R."""
        for p in params:
            p.grad = p.grad + self.lam * np.sign(p.data)
        return self.lam * float(sum(np.abs(p.data).sum() for p in params))
