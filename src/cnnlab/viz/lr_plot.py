"""The picture of a learning-rate range test: loss against learning rate (log scale): the loss of
each step faint, the moving average of the stop rule dashed, the curve without lag that the
suggestions read bold, each rule's suggestion marked on it (the one a run used, filled)."""

from __future__ import annotations

import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .common import save_figure  # noqa: E402

MARKERS = {"steepest": ("o", "tab:red"), "min/10": ("s", "tab:green")}


def plot_lr_find(result, path: str | os.PathLike, title: str = "", chosen: str | None = None) -> None:
    """``result``: a :class:`~cnnlab.engine.lr_finder.RangeTestResult`; ``chosen``: the rule a run used."""
    lrs, smoothed = np.asarray(result.lrs), np.asarray(result.curve)
    raw = np.asarray(result.losses, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    finite = np.isfinite(raw)
    ax.plot(lrs[finite], raw[finite], color="tab:blue", alpha=0.25, lw=1, label="loss of each step")
    ax.plot(lrs[:len(smoothed)], result.smoothed, color="tab:orange", lw=1, ls="--",
            label="moving average (stop rule)")
    ax.plot(lrs[:len(smoothed)], smoothed, color="tab:blue", lw=2, label="without lag (suggestions)")
    for rule, lr in result.suggestions.items():
        if lr is None:
            continue
        marker, colour = MARKERS.get(rule, ("D", "tab:purple"))
        y = float(np.interp(math.log10(lr), np.log10(lrs[:len(smoothed)]), smoothed))
        face = colour if rule == chosen else "white"
        ax.plot([lr], [y], marker, ms=9, mec=colour, mfc=face, mew=2, ls="none",
                label=f"{rule}: {lr:.2g}" + (" (used)" if rule == chosen else ""))
    low = float(min(smoothed.min(), raw[finite].min()))
    top = float(max(smoothed[: max(1, int(np.argmin(smoothed)) + 1)].max(), smoothed[0]))
    ax.set_ylim(low - 0.05 * (top - low), top + 0.35 * (top - low) + 1e-12)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left")
    head = f"{title}: " if title else ""
    ax.set_title(f"{head}LR range test, {len(lrs)} steps ({result.stopped})", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
