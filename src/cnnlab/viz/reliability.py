"""Reliability diagrams (Guo et al. 2017, arXiv:1706.04599, figure 1): per confidence bin, the
accuracy as a bar against the diagonal of perfect calibration, the bin's mean confidence as a red
line (the gap between the two is the bin's calibration error), and how many predictions fall in the
bin printed under it. One panel per set of probabilities (e.g. before and after temperature scaling).
Laid out by hand (no tight layout): it is drawn at the end of every training run."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..utils.io import atomic_path  # noqa: E402


def plot_reliability(panels: list[tuple[str, object]], path: str | os.PathLike, title: str = "") -> None:
    """``panels``: (heading, :class:`~cnnlab.analysis.calibration.Reliability`) pairs, one panel each."""
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(4.3 * n, 4.3), squeeze=False)
    fig.subplots_adjust(left=0.1 / n ** 0.5, right=0.98, top=0.82 if title else 0.88, bottom=0.16,
                        wspace=0.22)
    for ax, (heading, rel) in zip(axes[0], panels):
        edges = np.asarray(rel.edges)
        left, width = edges[:-1], np.diff(edges)
        count = np.asarray(rel.count)
        acc, conf = np.asarray(rel.accuracy), np.asarray(rel.confidence)
        used = count > 0
        ax.bar(left[used], acc[used], width[used], align="edge", color="tab:blue", alpha=0.75,
               edgecolor="white", label="accuracy")
        ax.hlines(conf[used], left[used], (left + width)[used], colors="tab:red", lw=2.5,
                  label="mean confidence")
        ax.plot([0, 1], [0, 1], "--", color="gray", lw=1, label="perfect calibration")
        for x, w, c in zip(left, width, count):
            ax.text(x + w / 2, -0.1, str(c), ha="center", va="top", fontsize=6.5, color="dimgray")
        ax.text(-0.02, -0.1, "n", ha="right", va="top", fontsize=6, color="dimgray")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (largest probability); predictions per bin below", fontsize=8, labelpad=14)
        ax.set_ylabel("accuracy", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_title(f"{heading}\nECE {100 * rel.ece:.2f}%", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
