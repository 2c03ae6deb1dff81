"""``cnnlab data preview``: a grid that shows what each augmentation of a preset does.

One row per augmentation of the preset (its crop, then each option on its own), and a last row with
the whole preset. Column 0 is the original image; the next columns are independent random draws.
Augmented images are un-normalised for display (``x * std + mean``, clipped to [0, 1]).
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch

from ..utils.figures import save_figure
from .transforms import Augment, resolve_augment, train_transform

SINGLE_OPTIONS = ("flip", "rotate", "shear", "translate", "elastic", "grid", "color_shift", "pca_std",
                  "color_jitter")
NO_OPTIONS = {f.name: False if f.type == "bool" else 0.0 for f in fields(Augment) if f.name in SINGLE_OPTIONS}


def augmentation_rows(aug: Augment) -> list[tuple[str, Augment]]:
    """(label, augment) per row: the crop alone, each option alone, then everything together."""
    rows = []
    if aug.base != "resize":
        rows.append((f"crop: {aug.base}", replace(aug, **NO_OPTIONS)))
    for name in SINGLE_OPTIONS:
        value = getattr(aug, name)
        if value:
            only = replace(Augment(), **{name: value})
            rows.append((name if value is True else f"{name} {value:g}", only))
    rows.append(("all together", aug))
    return rows


def _show(x: torch.Tensor, mean, std) -> np.ndarray:
    if x.dtype == torch.uint8:
        x = x.float() / 255
    else:
        x = x * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)
    x = x.clamp(0, 1).permute(1, 2, 0).numpy()
    return x[..., 0] if x.shape[-1] == 1 else x


def preview_grid(splits, out: str | Path, preset: str | None = "alexnet", *, size: int = 224,
                 columns: int = 5, seed: int = 0, **options) -> Path:
    """Draw the grid for ``splits.train`` and write it atomically to ``out`` (PNG)."""
    import matplotlib.pyplot as plt  # the Agg backend: cnnlab.utils.figures sets it

    aug = resolve_augment(preset, **options)
    rows = augmentation_rows(aug)
    dataset = splits.train
    saved_transform, dataset.transform = dataset.transform, None
    try:
        originals = [dataset[(i * 97) % len(dataset)][0] for i in range(len(rows))]
    finally:
        dataset.transform = saved_transform
    pca = splits.pca if aug.pca_std else None
    size_in = (1.7 * (columns + 1), 1.7 * len(rows))
    fig, axes = plt.subplots(len(rows), columns + 1, figsize=size_in, squeeze=False)
    torch.manual_seed(seed)
    for r, ((label, row_aug), image) in enumerate(zip(rows, originals)):
        transform = train_transform(row_aug, size, splits.mean, splits.std, "bilinear", pca)
        axes[r][0].imshow(_show(image, splits.mean, splits.std), cmap="gray")
        axes[r][0].set_ylabel(label, fontsize=8)
        for c in range(1, columns + 1):
            axes[r][c].imshow(_show(transform(image), splits.mean, splits.std), cmap="gray", vmin=0, vmax=1)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0][0].set_title("original", fontsize=9)
    for c in range(1, columns + 1):
        axes[0][c].set_title(f"draw {c}", fontsize=9)
    fig.suptitle(f"augmentation preset '{preset or 'none'}' on {splits.source} ({size} px)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out, dpi=100, tight=False)
