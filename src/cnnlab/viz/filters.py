"""The first convolution's kernels as a tile grid (Krizhevsky et al. 2012, Fig. 3; Zeiler & Fergus
2013, arXiv:1311.2901, Fig. 5/6).

The first layer is the first ``nn.Conv2d`` in the model's module order (the stem of every cnnlab
model; a patch embedding for ViT/Swin). Each filter is scaled on its own: its minimum weight becomes
black and its maximum white, over all its input channels together (so the colour balance inside a
filter is kept, but two tiles' brightness cannot be compared). Three input channels are shown as
RGB, one as grey; any other count as the mean over the input channels, in grey.
"""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from ..errors import CnnlabError
from .common import grid_shape, model_label, save_figure, scale01, show


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """(module path, module) of the first ``nn.Conv2d`` in ``model.named_modules()`` order."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise CnnlabError(
        f"{model_label(model)} has no nn.Conv2d layer, so it has no first-layer filters to show"
    )


def filter_tiles(weight: torch.Tensor) -> np.ndarray:
    """(out, in, kh, kw) weights -> (out, kh, kw, 3) RGB or (out, kh, kw) grey tiles in [0, 1],
    each filter min-max scaled on its own."""
    w = weight.detach().float().cpu()
    if w.shape[1] != 3:
        w = w.mean(dim=1, keepdim=True)  # one channel: itself; 2 or 4+ channels: their mean
    tiles = np.stack([scale01(f.numpy()) for f in w])  # per-filter min-max
    tiles = tiles.transpose(0, 2, 3, 1)
    return tiles[..., 0] if tiles.shape[-1] == 1 else tiles


def plot_filters(model: nn.Module, path: str | os.PathLike, title: str = "", max_filters: int = 256) -> str:
    """Draw the first conv layer's kernels; returns a one-line description of what was drawn."""
    name, conv = first_conv(model)
    tiles = filter_tiles(conv.weight[:max_filters])
    n = len(tiles)
    rows, cols = grid_shape(n, max_cols=16 if n > 64 else 8)
    side = 0.55 if n > 64 else 0.9
    fig, axes = plt.subplots(rows, cols, figsize=(cols * side + 0.4, rows * side + 0.6), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < n:
            show(ax, tiles[i], interpolation="nearest")
        else:
            ax.axis("off")
    out_ch, in_ch, kh, kw = conv.weight.shape
    shown = f" (first {n})" if n < out_ch else ""
    what = f"{model_label(model)} {name}: {out_ch} filters {kh}x{kw} x {in_ch} channels{shown}"
    fig.suptitle(title or what, fontsize=9)
    save_figure(fig, path)
    return what
