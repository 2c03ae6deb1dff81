"""Scoring models and ensembles over test-time views: the combining rules and the running tallies.

A batch holds ``(B, V, C, H, W)`` views per image; a model's ``V`` logits per image are combined into
one score (:func:`combine_views`), the members' scores into the ensemble's (:func:`combine_members`),
and a :class:`Tally` per line sums the loss, the top-1/top-5 hits and the per-class hits.

* ``mean_prob``: softmax probabilities averaged over the views, then over the members (weighted);
  what AlexNet (10 crops, 5-7 nets) and VGG (views and models) did. Scores are log-probabilities.
* ``mean_logit``: logits averaged instead, then one softmax (a geometric mean of the probabilities);
  meaningful only for members whose logits share a scale. Scores are the averaged logits.

The loss of an image is ``-log`` of the combined probability of its true class. With one view and one
member both reduce to the model's own softmax.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import Dataset

COMBINES = ("mean_prob", "mean_logit")


def combine_views(logits: torch.Tensor, combine: str = "mean_prob") -> torch.Tensor:
    """``(B, V, K)`` logits of V views -> ``(B, K)``: the log of the mean softmax over the views
    (``mean_prob``) or the mean logits (``mean_logit``)."""
    if combine == "mean_logit":
        return logits.mean(1)
    return torch.logsumexp(torch.log_softmax(logits, dim=-1), dim=1) - math.log(logits.shape[1])


def log_probs(score: torch.Tensor, combine: str) -> torch.Tensor:
    """The log-probabilities of a :func:`combine_views` score."""
    return torch.log_softmax(score, dim=-1) if combine == "mean_logit" else score


def combine_members(
    scores: list[torch.Tensor], weights: list[float], combine: str = "mean_prob"
) -> torch.Tensor:
    """Log-probabilities ``(B, K)`` of the ensemble: ``log sum_m w_m p_m`` (``mean_prob``, the members'
    probabilities averaged) or ``log_softmax(sum_m w_m z_m)`` (``mean_logit``); weights sum to 1."""
    if combine == "mean_logit":
        return torch.log_softmax(sum(w * s for w, s in zip(weights, scores)), dim=-1)
    logw = torch.tensor(weights, dtype=scores[0].dtype, device=scores[0].device).log().view(-1, 1, 1)
    return torch.logsumexp(torch.stack(scores) + logw, dim=0)


@dataclass
class Score:
    """One line of an evaluation: a member or the ensemble."""

    label: str
    tta: str  # e.g. "flip: 2 view(s) of 32 px at shorter side 32"
    views: int
    top1: float  # percent
    top5: float  # percent
    loss: float  # mean -log p(true class)
    count: int
    per_class: dict[str, dict] = field(default_factory=dict)  # name -> {"top1": %, "count": n}
    probs: torch.Tensor | None = None  # (count, data classes) when kept: p of each of the data's classes
    indices: torch.Tensor | None = None  # (count,) dataset index of each row of probs
    targets: torch.Tensor | None = None  # (count,) true class of each row (the data's class index)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("probs", "indices", "targets")}


class Tally:
    """Sums for one line: -log p(true), top-1/top-5 hits, per-class hits (and the rows, if kept)."""

    def __init__(self, index: torch.Tensor, keep_probs: bool) -> None:
        self.loss, self.c1, self.c5, self.n = 0.0, 0, 0, 0
        self.index = index  # for each data class, the models' output index of that class
        self.hits = torch.zeros(len(index), dtype=torch.int64)
        self.seen = torch.zeros(len(index), dtype=torch.int64)
        self.rows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = [] if keep_probs else None

    def add(self, logp: torch.Tensor, target: torch.Tensor, label: torch.Tensor, items: torch.Tensor) -> None:
        from .metrics import topk_correct

        self.loss -= float(logp.gather(1, target.view(-1, 1)).sum())
        c1, c5 = topk_correct(logp, target)
        self.c1, self.c5, self.n = self.c1 + c1, self.c5 + c5, self.n + len(target)
        correct = (logp.argmax(1) == target).cpu()
        self.hits += torch.bincount(label[correct], minlength=len(self.hits))
        self.seen += torch.bincount(label, minlength=len(self.seen))
        if self.rows is not None:
            self.rows.append((logp.exp().cpu()[:, self.index], items.cpu(), label.cpu()))

    def score(self, label: str, tta: str, views: int, classes: list[str]) -> Score:
        n = max(1, self.n)
        per_class = {c: {"top1": 100.0 * int(h) / max(1, int(s)), "count": int(s)}
                     for c, h, s in zip(classes, self.hits, self.seen)}
        probs = indices = targets = None
        if self.rows:
            probs, indices, targets = (torch.cat(part) for part in zip(*self.rows))
        return Score(
            label,
            tta,
            views,
            100.0 * self.c1 / n,
            100.0 * self.c5 / n,
            self.loss / n,
            self.n,
            per_class,
            probs,
            indices,
            targets,
        )


class Indexed(Dataset):
    """``dataset`` items with their index appended: ``(x, label, index)``; an item the dataset drops
    (an unreadable file: None) stays None, so the collate leaves it out."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        item = self.dataset[index]
        return None if item is None else (*item, index)


@dataclass
class Pass:
    """How one pass over the data runs."""

    batch_size: int = 32
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    workers: int = 0
    keep_probs: bool = False


@torch.no_grad()
def score_views(models: list[nn.Module], which: list[int], index: torch.Tensor, dataset: Dataset,
                weights: list[float], combine: str, how: Pass) -> list[Tally]:
    """One pass over ``dataset`` (items: a tuple of view stacks, one per distinct pipeline; the label):
    a tally per model, plus one for the ensemble when there are several. ``which[m]``: the view stack
    model ``m`` reads; ``index``: for each data class, the models' output index of that class."""
    from ..data import make_loader
    from .evaluate import main_output

    tallies = [Tally(index, how.keep_probs) for _ in range(len(models) + (len(models) > 1))]
    loader = make_loader(Indexed(dataset), batch_size=how.batch_size, shuffle=False, workers=how.workers,
                         device=how.device.type)
    modes = [m.training for m in models]
    for m in models:
        m.to(how.device).eval()
    try:
        for batch in loader:
            if batch is None:  # every file of the batch was unreadable
                continue
            views, label, item = batch
            target = index.to(how.device)[label.to(how.device)]
            scores = []
            for model, w in zip(models, which):  # every model maps the classes alike (checked by the caller)
                x = views[w].to(how.device, non_blocking=True)
                logits = main_output(model(x.flatten(0, 1))).float().view(x.shape[0], x.shape[1], -1)
                scores.append(combine_views(logits, combine))
            for tally, score in zip(tallies, scores):
                tally.add(log_probs(score, combine), target, label, item)
            if len(models) > 1:
                tallies[-1].add(combine_members(scores, weights, combine), target, label, item)
    finally:
        for m, mode in zip(models, modes):
            m.train(mode)
    return tallies
