"""Bookkeeping shared by datasets, splits and the folder scan (no torch: ``cnnlab data check`` stays light).

* :class:`BadFileReport` - the files a dataset skipped, and why.
* :func:`stratified_split` - the seeded per-class train/validation split.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..errors import CnnlabError
from ..utils.log import notice


@dataclass
class BadFileReport:
    """Files skipped so far: ``skipped`` is a list of ``(path, reason)``; ``counts`` by reason.

    DataLoader workers (and the ranks of a distributed run) each hold their own copy of a dataset's
    report. :meth:`attach_log` gives every copy one shared append-only log (a line ``path<TAB>reason``
    per file, appended with a single ``O_APPEND`` write, so lines from concurrent processes never
    interleave); :meth:`sync` merges the log back into this copy. A file already in the log is not
    warned about again by another worker.
    """

    skipped: list[tuple[str, str]] = field(default_factory=list)
    log_path: str | None = None

    def add(self, path: str, reason: str, quiet: bool = False) -> None:
        if any(p == path for p, _ in self.skipped):
            return
        self.skipped.append((path, reason))
        if self.log_path is not None:
            if path in dict(self._read_log()):
                return  # another worker met it first and has warned
            self._append_log([(path, reason)])
        if not quiet:
            notice(f"skipping bad image {path}: {reason}")

    def attach_log(self, path: str | os.PathLike, write_existing: bool = True) -> None:
        """Share skips through the log at ``path`` (created if missing; kept when it exists, so that a
        resumed run keeps its earlier entries). ``write_existing``: append the files skipped so far
        (one process of a distributed run does it)."""
        self.log_path = os.fspath(path)
        logged = dict(self._read_log())
        if write_existing:
            self._append_log([(p, r) for p, r in self.skipped if p not in logged])
        self.sync()

    def sync(self) -> BadFileReport:
        """Merge the entries other processes wrote to the log (a no-op without a log)."""
        known = {p for p, _ in self.skipped}
        self.skipped += [(p, r) for p, r in self._read_log() if p not in known and not known.add(p)]
        return self

    def _read_log(self) -> list[tuple[str, str]]:
        if self.log_path is None or not os.path.exists(self.log_path):
            return []
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            rows = [line.rstrip("\n").split("\t", 1) for line in fh if "\t" in line]
        return [(p, r) for p, r in rows]

    def _append_log(self, rows: list[tuple[str, str]]) -> None:
        if not rows:
            return
        text = "".join(f"{p}\t{' '.join(r.split())}\n" for p, r in rows)  # reasons on one line
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, text.encode("utf-8", errors="replace"))
        finally:
            os.close(fd)

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
        raise CnnlabError(
            f"val split {val_fraction} is not a fraction; pass a number between 0 and 1, e.g. 0.2"
        )
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
        notice(
            f"class(es) {', '.join(lonely)} have a single image: kept in train only, not in the validation "
            "split"
        )
    return sorted(train), sorted(val)
