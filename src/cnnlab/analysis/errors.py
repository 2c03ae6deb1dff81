"""Per-class figures of a classifier from its confusion matrix ``counts[true, predicted]``.

For class ``c``: precision = ``counts[c, c] / sum_t counts[t, c]`` (of the images predicted ``c``, the
fraction that are ``c``), recall = ``counts[c, c] / sum_p counts[c, p]`` (of the images of ``c``, the
fraction found), F1 their harmonic mean ``2 P R / (P + R)``, support = ``sum_p counts[c, p]``. A ratio
whose denominator is 0 is 0, as scikit-learn's ``zero_division=0``. Averages: macro (the plain mean
over classes) and weighted (by support), as ``sklearn.metrics.classification_report``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class ClassRow:
    name: str
    precision: float  # in [0, 1]
    recall: float
    f1: float
    support: int  # images of this class


@dataclass
class ConfusedPair:
    true: str
    predicted: str
    count: int  # images of ``true`` predicted as ``predicted``
    fraction: float  # count / images of ``true``


def confusion_counts(targets, predictions, num_classes: int) -> np.ndarray:
    """``counts[true, predicted]`` (int64) of two label sequences."""
    t, p = np.asarray(targets, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    flat = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(len(num), dtype=np.float64), where=den > 0)


def per_class(counts, classes: list[str]) -> list[ClassRow]:
    """Precision, recall, F1 and support of each class (see the module docstring)."""
    m = np.asarray(counts, dtype=np.float64)
    hits, support, predicted = np.diag(m), m.sum(axis=1), m.sum(axis=0)
    precision, recall = _ratio(hits, predicted), _ratio(hits, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return [ClassRow(name, float(p), float(r), float(f), int(s))
            for name, p, r, f, s in zip(classes, precision, recall, f1, support)]


def averages(rows: list[ClassRow]) -> dict[str, dict[str, float]]:
    """``{"macro": {...}, "weighted": {...}}`` of precision, recall and F1."""
    support = np.array([r.support for r in rows], dtype=np.float64)
    out = {}
    for name, w in (("macro", np.ones_like(support)), ("weighted", support)):
        w = w / w.sum() if w.sum() > 0 else w
        out[name] = {k: float(sum(getattr(r, k) * wi for r, wi in zip(rows, w)))
                     for k in ("precision", "recall", "f1")}
    return out


def most_confused(counts, classes: list[str], top: int = 10) -> list[ConfusedPair]:
    """The ``top`` largest off-diagonal cells (true, predicted), largest first; ties by class order."""
    m = np.asarray(counts, dtype=np.int64)
    support = m.sum(axis=1)
    cells = [(-int(m[i, j]), i, j) for i in range(len(m)) for j in range(len(m)) if i != j and m[i, j] > 0]
    return [ConfusedPair(classes[i], classes[j], -n, -n / int(support[i])) for n, i, j in sorted(cells)[:top]]


def to_dicts(items) -> list[dict]:
    return [asdict(x) for x in items]
