"""Training pictures: loss / accuracy / learning-rate curves and a confusion matrix with class names.

Drawn with matplotlib's Agg backend (no display needed) and written atomically.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ..utils.figures import save_figure  # noqa: E402


def _save(fig, path: str | os.PathLike) -> None:
    save_figure(fig, path)


def plot_curves(history: list[dict], path: str | os.PathLike, title: str = "") -> None:
    """Three panels over epochs: train/val loss, train/val top-1 (%), learning rate."""
    epochs = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    panels = (("loss", "cross-entropy loss"), ("top1", "top-1 accuracy (%)"))
    for ax, (key, label) in zip(axes, panels):
        ax.plot(epochs, [r[f"train_{key}"] for r in history], "o-", ms=3, label="train")
        ax.plot(epochs, [r[f"val_{key}"] for r in history], "s-", ms=3, label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    best = max(history, key=lambda r: r["val_top1"])
    axes[1].plot([best["epoch"]], [best["val_top1"]], "*", ms=12, color="tab:red",
                 label=f"best {best['val_top1']:.2f}% (epoch {best['epoch']})")
    axes[1].legend(loc="lower right")
    axes[2].plot(epochs, [r["lr"] for r in history], "o-", ms=3, color="tab:green")
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("learning rate (end of epoch)")
    axes[2].grid(alpha=0.3)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def plot_confusion(confusion, classes: list[str], path: str | os.PathLike, title: str = "") -> None:
    """Rows: true class, columns: predicted class; cells coloured by the row's fraction, with counts."""
    counts = np.asarray(confusion, dtype=np.int64)
    n = len(classes)
    frac = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = min(max(4.0, 0.45 * n + 2.5), 30.0)
    fig, ax = plt.subplots(figsize=(side, side))
    image = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    labels = [c if len(c) <= 14 else c[:13] + "…" for c in classes]
    ax.set_xticks(range(n), labels, rotation=90 if n > 10 or max(map(len, labels)) > 3 else 0)
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if frac[i, j] > 0.5 else "black")
    accuracy = 100.0 * np.trace(counts) / max(1, counts.sum())
    ax.set_title(f"{title + ': ' if title else ''}{counts.sum()} images, top-1 {accuracy:.2f}%")
    fig.tight_layout()
    _save(fig, path)
