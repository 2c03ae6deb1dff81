"""Evaluation that counts every validation sample exactly once, in one process or in N.

The validation set is cut into the batches one process would use and the batches are dealt to the
ranks (:class:`~cnnlab.engine.distributed.ShardedBatches`). Each rank writes, for each of its batches,
one row (loss sum, top-1 correct, top-5 correct, samples) of a table with a row per batch; a sum over
the ranks fills the table (each entry comes from one rank, so the sum is exact), and every rank adds
the rows in batch order. The loss and the accuracies are therefore bitwise the one-process figures.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .distributed import DistInfo, ShardedBatches, all_reduce_sum
from .loading import make_loader
from .metrics import confusion_matrix, topk_correct


@dataclass
class EvalResult:
    loss: float
    top1: float  # percent
    top5: float  # percent
    count: int
    confusion: torch.Tensor  # int64 [true, predicted]

    def as_dict(self) -> dict[str, float]:
        return {"loss": self.loss, "top1": self.top1, "top5": self.top5}


def main_output(out):
    """Models with auxiliary heads return (main, *aux) in training mode; the main logits come first."""
    return out[0] if isinstance(out, tuple | list) else out


@torch.no_grad()
def evaluate(model: nn.Module, dataset, *, batch_size: int, num_classes: int, device: torch.device,
             info: DistInfo | None = None, amp_dtype: torch.dtype | None = None,
             channels_last: bool = False, workers: int = 0) -> EvalResult:
    """Loss (mean cross-entropy, no label smoothing), top-1/top-5 (%) and the confusion matrix."""
    info = info or DistInfo()
    batches = ShardedBatches(len(dataset), batch_size, info)
    rows = torch.zeros(batches.num_batches, 4, dtype=torch.float64)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    was_training = model.training
    model.eval()
    with dropping_unreadable(dataset):
        loader = make_loader(dataset, batch_size=batch_size, batch_sampler=batches, workers=workers,
                             device=device.type)
        for b, batch in zip(batches.batch_ids(), loader):
            if batch is not None:  # None: every file of the batch was unreadable
                rows[b], confusion_b = _eval_batch(
                    model, batch, device, amp_dtype, channels_last, num_classes
                )
                confusion += confusion_b
    model.train(was_training)
    rows = all_reduce_sum(rows.to(device), info).cpu()
    confusion = all_reduce_sum(confusion.to(device), info).cpu()
    loss, c1, c5, n = rows.sum(0).tolist()
    n = max(1.0, n)
    return EvalResult(loss / n, 100.0 * c1 / n, 100.0 * c5 / n, int(n), confusion)


@contextmanager
def dropping_unreadable(dataset):
    """Image-file datasets leave unreadable files out of evaluation batches instead of repeating the next
    image (see :mod:`cnnlab.data.datasets`); other datasets are untouched."""
    before = getattr(dataset, "on_bad", None)
    if before is not None:
        dataset.on_bad = "drop"
    try:
        yield
    finally:
        if before is not None:
            dataset.on_bad = before


def _eval_batch(model, batch, device, amp_dtype, channels_last: bool, num_classes: int):
    """(row of loss sum, top-1, top-5, count; confusion counts) of one batch."""
    x, y = batch
    x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        logits = main_output(model(x))
    logits = logits.float()
    loss_sum = F.cross_entropy(logits, y, reduction="sum")
    c1, c5 = topk_correct(logits, y)
    row = torch.tensor([loss_sum.item(), c1, c5, len(y)], dtype=torch.float64)
    return row, confusion_matrix(logits.argmax(1).cpu(), y.cpu(), num_classes)
