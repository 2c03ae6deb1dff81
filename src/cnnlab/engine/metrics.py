"""Accuracy counts and running sums, exact across processes.

Accuracies are kept as integer counts and the loss as a float64 sum, so that the per-epoch figures
are (sum / count) computed once at the end, and the distributed reduction is a sum.
"""

from __future__ import annotations

import torch


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> list[int]:
    """How many rows have the target among the ``k`` highest logits, for each ``k`` (k capped at C)."""
    kmax = min(max(ks), logits.shape[1])
    hit = logits.topk(kmax, dim=1).indices.eq(target.view(-1, 1))  # at most one hit per row
    within = hit.sum(dim=0).cumsum(dim=0).tolist()  # rows with the target in the top 1, 2, ... kmax; one copy
    return [int(within[min(k, kmax) - 1]) for k in ks]


class RunningStats:
    """Sums over an epoch: loss (float64), top-1 / top-5 correct, samples."""

    __slots__ = ("loss", "correct1", "correct5", "count")

    def __init__(self, loss: float = 0.0, correct1: int = 0, correct5: int = 0, count: int = 0) -> None:
        self.loss, self.correct1, self.correct5, self.count = (
            float(loss),
            int(correct1),
            int(correct5),
            int(count),
        )

    def add(self, loss_sum: float, correct1: int, correct5: int, count: int) -> None:
        self.loss += float(loss_sum)
        self.correct1 += correct1
        self.correct5 += correct5
        self.count += count

    def state(self) -> list:
        return [self.loss, self.correct1, self.correct5, self.count]

    def summary(self) -> dict[str, float]:
        n = max(1, self.count)
        return {"loss": self.loss / n, "top1": 100.0 * self.correct1 / n, "top5": 100.0 * self.correct5 / n}


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """counts[true, predicted] as int64."""
    idx = target.long() * num_classes + pred.long()
    return torch.bincount(idx, minlength=num_classes * num_classes).view(num_classes, num_classes)
