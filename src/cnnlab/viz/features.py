"""Feature maps of one layer for one image: the ``top`` channels with the largest mean activation.

The layer is a stage name (``model.stages``, e.g. ``layer2``) or any module path; its output is
captured with a forward hook that is removed afterwards. Transformer tokens are shown on their
patch grid (see :func:`cnnlab.viz.common.as_feature_map`). Every map is min-max scaled on its own,
so the tiles show where a channel responds, not how strongly compared with the others (the
channel's mean is printed above it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from ..errors import CnnlabError
from .common import (
    as_feature_map,
    capture_output,
    find_layer,
    grid_shape,
    model_label,
    save_figure,
    scale01,
    show,
)


@dataclass
class FeatureMaps:
    layer: str
    maps: torch.Tensor  # (top, h, w), the selected channels in decreasing mean activation
    channels: list[int]  # their channel indices in the layer
    means: list[float]  # their mean activation over the map
    num_channels: int  # channels in the layer


@torch.no_grad()
def feature_maps(model: nn.Module, x: torch.Tensor, layer: str, top: int = 16) -> FeatureMaps:
    """The ``top`` channels of ``layer`` with the largest mean activation for one image ``x`` (1, C, H, W)."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise CnnlabError(f"top must be an integer >= 1, got {top!r}")
    module, stage = find_layer(model, layer)
    model.eval()
    _, out = capture_output(model, module, x)
    fmap = as_feature_map(out, stage, tuple(x.shape[-2:]))[0].float()
    means = fmap.mean(dim=(1, 2))
    order = torch.argsort(means, descending=True)[:top]
    return FeatureMaps(layer, fmap[order].cpu(), order.tolist(), means[order].tolist(), fmap.shape[0])


def plot_feature_maps(image: np.ndarray, fm: FeatureMaps, path: str | os.PathLike, title: str = "") -> None:
    """The input image, then one tile per selected channel (each min-max scaled, 'viridis')."""
    n = len(fm.channels) + 1
    rows, cols = grid_shape(n, max_cols=8 if n > 12 else 6)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.7, rows * 1.85 + 0.4), squeeze=False)
    flat = list(axes.flat)
    show(flat[0], image, "input")
    for ax, fmap, ch, mean in zip(flat[1:], fm.maps, fm.channels, fm.means):
        show(ax, scale01(fmap.numpy()), f"ch {ch}  mean {mean:.3g}", cmap="viridis")
    for ax in flat[n:]:
        ax.axis("off")
    h, w = fm.maps.shape[-2:]
    fig.suptitle(
        title or f"{fm.layer}: top {len(fm.channels)} of {fm.num_channels} channels by mean, {h}x{w}",
        fontsize=9,
    )
    fig.tight_layout()
    save_figure(fig, path)


def describe(model: nn.Module, fm: FeatureMaps) -> str:
    h, w = fm.maps.shape[-2:]
    return (
        f"{model_label(model)} {fm.layer}: {fm.num_channels} channels of {h}x{w}; top {len(fm.channels)} "
        "by mean activation: "
        f"{', '.join(str(c) for c in fm.channels[:8])}{' ...' if len(fm.channels) > 8 else ''}"
    )
