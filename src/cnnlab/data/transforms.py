"""Image transforms (torchvision.transforms.v2 where it has the transform).

``eval_transform(cfg)`` is the standard evaluation preprocessing of a model's data config: resize
the shorter side to ``size / crop_pct``, centre-crop ``size``, scale to [0, 1], normalise.
"""

from __future__ import annotations

import math

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

from ..models.base import DataConfig

INTERPOLATION = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC,
                 "nearest": InterpolationMode.NEAREST}


def eval_transform(cfg: DataConfig) -> T.Compose:
    """PIL image or uint8 tensor (C, H, W) -> normalised float tensor (C, size, size)."""
    size = cfg.input_size[-1]
    resize = math.floor(size / cfg.crop_pct) if cfg.crop_pct < 1 else size
    return T.Compose([
        T.ToImage(),
        T.Resize(resize, interpolation=INTERPOLATION[cfg.interpolation], antialias=True),
        T.CenterCrop(size),
        T.ToDtype(torch.float32, scale=True),
        T.Normalize(list(cfg.mean), list(cfg.std)),
    ])
