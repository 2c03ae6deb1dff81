"""Per-class metrics against scikit-learn, the ECE against a direct computation, temperature scaling
against a known temperature and a grid search."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from cnnlab.analysis import calibration as C
from cnnlab.analysis import errors as E

from .conftest import ece_directly


def _labels(seed: int, n: int = 400, k: int = 6):
    """Targets and predictions with a class never predicted (5) and one never present (4)."""
    rng = np.random.default_rng(seed)
    t = rng.choice([0, 1, 2, 3, 5], size=n, p=[0.4, 0.3, 0.1, 0.1, 0.1])
    p = np.where(rng.random(n) < 0.7, t, rng.integers(0, 5, n))
    return t, p, [f"c{i}" for i in range(k)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_class_metrics_match_scikit_learn(seed):
    t, p, classes = _labels(seed)
    counts = E.confusion_counts(t, p, len(classes))
    assert np.array_equal(counts, confusion_matrix(t, p, labels=range(len(classes))))
    rows = E.per_class(counts, classes)
    ref = precision_recall_fscore_support(t, p, labels=range(len(classes)), zero_division=0)
    for i, row in enumerate(rows):
        assert (row.precision, row.recall, row.f1) == pytest.approx((ref[0][i], ref[1][i], ref[2][i]),
                                                                    abs=1e-12)
        assert row.support == ref[3][i]
    avg = E.averages(rows)
    for name in ("macro", "weighted"):
        p_, r_, f_, _ = precision_recall_fscore_support(t, p, labels=range(len(classes)), average=name,
                                                        zero_division=0)
        ours = (avg[name]["precision"], avg[name]["recall"], avg[name]["f1"])
        assert ours == pytest.approx((p_, r_, f_), abs=1e-12)


def test_most_confused_pairs_are_the_largest_off_diagonal_cells():
    t, p, classes = _labels(3)
    counts = confusion_matrix(t, p, labels=range(len(classes)))
    pairs = E.most_confused(counts, classes, top=5)
    cells = sorted(((counts[i, j], i, j) for i in range(6) for j in range(6) if i != j and counts[i, j]),
                   key=lambda c: (-c[0], c[1], c[2]))[:5]
    expected = [(classes[i], classes[j], int(n)) for n, i, j in cells]
    assert [(x.true, x.predicted, x.count) for x in pairs] == expected
    assert pairs[0].fraction == pytest.approx(cells[0][0] / counts[cells[0][1]].sum())
    assert E.most_confused(np.eye(3, dtype=int) * 5, ["a", "b", "c"]) == []


@pytest.mark.parametrize("bins", [4, 10, 15])
def test_ece_matches_the_definition(bins):
    rng = np.random.default_rng(bins)
    probs = rng.dirichlet(np.full(5, 0.4), size=600)
    targets = rng.integers(0, 5, 600)
    # confidences exactly on bin edges belong to the bin they close
    probs[:4] = [[0.25, 0.25, 0.25, 0.25, 0.0], [0.5, 0.5, 0, 0, 0], [0.75, 0.25, 0, 0, 0], [1.0, 0, 0, 0, 0]]
    rel = C.reliability(probs, targets, bins)
    assert rel.ece == pytest.approx(ece_directly(probs, targets, bins), abs=1e-12)
    assert sum(rel.count) == 600
    if bins == 4:
        assert C.bin_index(np.array([0.0, 0.25, 0.2500001, 0.5, 1.0]), 4).tolist() == [0, 0, 1, 1, 3]


def _sample(temperature: float, n: int = 20000, k: int = 5, seed: int = 0):
    """Logits and labels drawn from softmax(logits / temperature): a model whose calibrating
    temperature is ``temperature``."""
    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(n, k, generator=g, dtype=torch.float64)
    labels = torch.multinomial(torch.softmax(logits / temperature, 1), 1, generator=g).squeeze(1)
    return logits, labels


def test_temperature_recovers_the_true_one_and_minimises_the_nll():
    logits, labels = _sample(2.0)
    t = C.fit_temperature(logits, labels)
    assert t == pytest.approx(2.0, rel=0.05)
    grid = np.linspace(0.5 * t, 1.5 * t, 101)
    assert C.nll(logits, labels, t) <= min(C.nll(logits, labels, g) for g in grid) + 1e-9
    before = C.reliability(C.scaled_probs(logits, 1.0), labels)
    after = C.reliability(C.scaled_probs(logits, t), labels)
    assert after.ece < 0.02 < before.ece  # overconfident logits, calibrated once divided by T
    assert (C.scaled_probs(logits, t).argmax(1) == logits.argmax(1).numpy()).all()  # predictions unchanged


def test_a_calibrated_model_gets_temperature_one():
    logits, labels = _sample(1.0, seed=1)
    assert C.fit_temperature(logits, labels) == pytest.approx(1.0, rel=0.05)


def test_logits_from_probabilities_give_back_the_probabilities():
    p = torch.softmax(torch.randn(50, 7, dtype=torch.float64), 1).numpy()
    p[0] = [1.0, 0, 0, 0, 0, 0, 0]  # an underflowed probability stays finite
    z = C.logits_from_probs(p)
    assert torch.isfinite(z).all()
    assert np.allclose(C.scaled_probs(z, 1.0), p, atol=1e-12)
