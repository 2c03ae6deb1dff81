"""Calibration of predicted probabilities: reliability bins, expected calibration error, temperature.

* **Reliability bins** (DeGroot & Fienberg 1983; Niculescu-Mizil & Caruana 2005): each prediction's
  confidence (its largest probability) falls in one of ``B`` equal-width bins of (0, 1]; bin ``b``
  holds confidences in ``(b / B, (b + 1) / B]`` (a confidence of 0 goes to the first). For each bin:
  the count, the mean confidence and the accuracy (fraction of correct predictions).
* **Expected calibration error** (Naeini et al. 2015; Guo et al. 2017, "On Calibration of Modern
  Neural Networks", arXiv:1706.04599, eq. 3): ``ECE = sum_b (n_b / N) |acc_b - conf_b|``, in [0, 1].
* **Temperature scaling** (Guo et al. 2017, section 4.2): one scalar ``T > 0`` divides the logits,
  ``softmax(z / T)``; it changes no prediction (the arg max is the same), only the confidence. ``T``
  is fitted by minimising the mean negative log-likelihood of the true class over ``log T`` (so that
  ``T`` stays positive) with L-BFGS in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

DEFAULT_BINS = 15  # Guo et al.'s M = 15


@dataclass
class Reliability:
    edges: list[float]  # B + 1 bin edges, 0 .. 1
    count: list[int]  # predictions per bin
    confidence: list[float]  # mean confidence per bin (0 for an empty bin)
    accuracy: list[float]  # fraction correct per bin (0 for an empty bin)
    ece: float  # expected calibration error, in [0, 1]


def bin_index(confidence: np.ndarray, bins: int) -> np.ndarray:
    """The bin of each confidence: ``ceil(c * B) - 1``, clipped to ``0 .. B - 1`` (see module doc)."""
    return np.clip(np.ceil(np.asarray(confidence, dtype=np.float64) * bins).astype(np.int64) - 1, 0, bins - 1)


def reliability(probs, targets, bins: int = DEFAULT_BINS) -> Reliability:
    """The reliability bins and the ECE of ``probs`` (N, C) against the true classes ``targets`` (N,)."""
    p = np.asarray(probs, dtype=np.float64)
    t = np.asarray(targets, dtype=np.int64)
    conf, correct = p.max(axis=1), (p.argmax(axis=1) == t).astype(np.float64)
    which = bin_index(conf, bins)
    count = np.bincount(which, minlength=bins)
    sum_conf = np.bincount(which, weights=conf, minlength=bins)
    sum_acc = np.bincount(which, weights=correct, minlength=bins)
    safe = np.maximum(count, 1)
    ece = float(np.abs(sum_acc - sum_conf).sum() / max(1, len(t)))
    return Reliability(np.linspace(0, 1, bins + 1).tolist(), count.tolist(), (sum_conf / safe).tolist(),
                       (sum_acc / safe).tolist(), ece)


def nll(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0) -> float:
    """Mean ``-log softmax(logits / T)[true]``."""
    return float(F.cross_entropy(logits.double() / temperature, targets.long()))


def logits_from_probs(probs) -> torch.Tensor:
    """Logits up to a per-row constant (which softmax ignores): ``log p``, with p floored at 1e-45 (the
    smallest float32) so that a probability that underflowed to 0 stays finite."""
    return torch.as_tensor(np.asarray(probs), dtype=torch.float64).clamp_min(1e-45).log()


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor, max_iter: int = 100) -> float:
    """The ``T`` minimising :func:`nll` (see the module docstring)."""
    z, y = logits.detach().double(), targets.long()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=1.0, max_iter=max_iter, tolerance_grad=1e-10, tolerance_change=1e-12,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.detach().exp())
    return t if math.isfinite(t) else 1.0


def scaled_probs(logits: torch.Tensor, temperature: float) -> np.ndarray:
    return torch.softmax(logits.double() / temperature, dim=1).numpy()
