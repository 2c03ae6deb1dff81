"""Bookkeeping shared by datasets, splits and the folder scan (no torch: ``cnnlab data check`` stays light).

* :class:`BadFileReport` - the files a dataset skipped, and why.
* :func:`stratified_split` - the seeded per-class train/validation split.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..errors import CnnlabError
from ..utils.log import notice


@dataclass
class BadFileReport:
    """Files skipped so far: ``skipped`` is a list of ``(path, reason)``; ``counts`` by reason."""

    skipped: list[tuple[str, str]] = field(default_factory=list)

    def add(self, path: str, reason: str, quiet: bool = False) -> None:
        if any(p == path for p, _ in self.skipped):
            return
        self.skipped.append((path, reason))
        if not quiet:
            notice(f"skipping bad image {path}: {reason}")

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(reason.split(":")[0] for _, reason in self.skipped))

    def __len__(self) -> int:
        return len(self.skipped)

    def to_dict(self) -> dict:
        return {"skipped": [{"path": p, "reason": r} for p, r in self.skipped], "counts": self.counts,
                "total": len(self.skipped)}


def stratified_split(targets: list[int], val_fraction: float, seed: int,
                     classes: list[str] | None = None) -> tuple[list[int], list[int]]:
    """Indices ``(train, val)``: each class gives ``round(n * fraction)`` items to val (at least one,
    and at least one stays in train). A class with a single item cannot be split: it stays wholly in
    train, and a notice names it."""
    if not 0.0 < val_fraction < 1.0:
        raise CnnlabError(f"val split {val_fraction} is not a fraction; pass a number between 0 and 1, e.g. 0.2")
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = {}
    for i, t in enumerate(targets):
        by_class.setdefault(int(t), []).append(i)
    train, val, lonely = [], [], []
    for label in sorted(by_class):
        idx = np.array(by_class[label])[rng.permutation(len(by_class[label]))].tolist()
        if len(idx) < 2:
            lonely.append(classes[label] if classes else str(label))
            train += idx
            continue
        n_val = min(len(idx) - 1, max(1, math.floor(len(idx) * val_fraction + 0.5)))
        val += idx[:n_val]
        train += idx[n_val:]
    if lonely:
        notice(f"class(es) {', '.join(lonely)} have a single image: kept in train only, not in the validation split")
    return sorted(train), sorted(val)
