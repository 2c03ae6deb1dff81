"""The images a model gets most wrong: for each, the image as the model saw it and a Grad-CAM overlay
(:func:`cnnlab.viz.cam.grad_cam`, Selvaraju et al. 2017, arXiv:1610.02391) for the class it
predicted, titled with the true and predicted class, their probabilities and the loss ``-log p(true)``.

Grad-CAM reads the last feature map unless that map is smaller than :data:`MIN_CELLS` cells (LeNet-5's
is 1x1, which would colour the whole image alike); then it reads the deepest stage that is at least
that large.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from ..utils.io import atomic_path  # noqa: E402
from .cam import grad_cam, overlay, upsample  # noqa: E402
from .common import as_feature_map  # noqa: E402

MIN_CELLS = 9  # a Grad-CAM map needs at least 3x3 cells to say where


@dataclass
class Loss:
    """One image of the picture."""

    image: np.ndarray  # (H, W) or (H, W, 3) in [0, 1], as the model saw it
    true: str
    predicted: str
    p_predicted: float
    p_true: float
    loss: float  # -log p(true)
    heat: np.ndarray | None = None  # (H, W) Grad-CAM map in [0, 1] for the predicted class


def cam_stage(model: nn.Module, x: torch.Tensor) -> str | None:
    """The layer Grad-CAM should read for ``x`` (1, C, H, W): None for the model's default (its last
    feature map, or the token logic of :func:`grad_cam`), else a stage name (see the module docstring)."""
    with torch.no_grad():
        feats = model.forward_features(x)
        if feats.ndim != 4 or feats.shape[-2] * feats.shape[-1] >= MIN_CELLS:
            return None
        outs: dict = {}
        hooks = [m.register_forward_hook(lambda _m, _i, o, s=s: outs.__setitem__(s, o))
                 for s, m in model.stage_modules()]
        try:
            model(x)
        finally:
            for h in hooks:
                h.remove()
    hw = tuple(x.shape[-2:])
    for stage, out in reversed(list(outs.items())):
        if isinstance(out, torch.Tensor) and out.ndim in (3, 4):
            fmap = as_feature_map(out, stage, hw)
            if fmap.shape[-2] * fmap.shape[-1] >= MIN_CELLS:
                return stage.name
    return None


def cam_heat(model: nn.Module, x: torch.Tensor, class_index: int, stage: str | None) -> np.ndarray:
    """The Grad-CAM map of ``x`` (1, C, H, W) for ``class_index``, upsampled to the image, in [0, 1]."""
    result = grad_cam(model, x, class_index, stage)
    return upsample(result.heat, tuple(x.shape[-2:]))


def _short(name: str, n: int = 16) -> str:
    return name if len(name) <= n else name[:n - 1] + "…"


def _tile(image: np.ndarray, side: int) -> np.ndarray:
    """(side, side, 3) RGB in [0, 1]: ``image`` (H, W[, 3]) resized (nearest for small images: pixels stay
    visible, bilinear for large ones)."""
    from PIL import Image

    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
    pil = Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8))
    method = Image.NEAREST if max(rgb.shape[:2]) * 2 <= side else Image.BILINEAR
    return np.asarray(pil.resize((side, side), method), dtype=np.float32) / 255


def plot_top_losses(items: list[Loss], path: str | os.PathLike, title: str = "", per_row: int = 3,
                    side: int = 128) -> None:
    """Each item as (image, Grad-CAM overlay) side by side, ``per_row`` items to a row, tiles of
    ``side`` pixels. Drawn as one mosaic with text on it (one axes: cheap enough for every run)."""
    n = max(1, len(items))
    rows, cols = math.ceil(n / per_row), min(n, per_row)
    gap, band, top = 14, 34, 30  # pixels between cells, of the two title lines, of the picture's title
    cell_w, cell_h = 2 * side + 4, side + band
    width, height = cols * cell_w + (cols + 1) * gap, top + rows * (cell_h + gap)
    canvas = np.ones((height, width, 3), dtype=np.float32)
    dpi = 100
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.axis("off")
    for k, item in enumerate(items):
        x0 = gap + (k % per_row) * (cell_w + gap)
        y0 = top + (k // per_row) * (cell_h + gap) + band
        right = overlay(item.image, item.heat) if item.heat is not None else item.image
        canvas[y0:y0 + side, x0:x0 + side] = _tile(item.image, side)
        canvas[y0:y0 + side, x0 + side + 4:x0 + 2 * side + 4] = _tile(right, side)
        colour = "tab:red" if item.true != item.predicted else "black"
        cam = ", Grad-CAM" if item.heat is not None else ""
        left = f"true {_short(item.true)}\np {item.p_true:.3f}, loss {item.loss:.2f}"
        right_text = f"predicted {_short(item.predicted)}\np {item.p_predicted:.3f}{cam}"
        for x, text in ((x0, left), (x0 + side + 4, right_text)):
            ax.text(x + side / 2, y0 - 4, text, ha="center", va="bottom", fontsize=7.5, color=colour)
    ax.imshow(canvas, interpolation="nearest")
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.text(width / 2, 6, title or ("no images" if not items else ""), ha="center", va="top", fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)
