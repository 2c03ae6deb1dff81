"""Augmentations that torchvision.transforms.v2 lacks, written as small callables.

All draw their randomness from torch's global generator, so DataLoader worker seeding makes them
reproducible. Photometric ones work on float images in [0, 1], shape ``(C, H, W)``, before
normalisation; they do not clip (AlexNet adds the PCA offsets to raw pixel values).

* :class:`PCALighting` - AlexNet's "fancy PCA" colour augmentation (Krizhevsky et al. 2012, section
  4.1): add ``eigvec @ (alpha * eigval)`` to every pixel, ``alpha ~ N(0, std)``, one draw per image,
  with the eigen-decomposition of the TRAINING SET's RGB covariance (not of each image).
* :class:`ColorShift` - per-channel offsets, uniform in ``[-max_shift, max_shift]`` (colour shifting).
* :class:`GridDistortion` - local warping: the image is cut into ``steps x steps`` cells whose widths
  and heights are scaled by ``1 + U(-limit, limit)``; a separable piecewise-linear map, applied with
  ``grid_sample`` (bilinear, border padding).
* :class:`ToFloatNormalized` - uint8/float image -> normalised float32 in one step (what
  ``ToImage + ToDtype(scale=True) + Normalize`` do, with one multiply-add instead of three passes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF


def _as_float(img) -> torch.Tensor:
    if isinstance(img, Image.Image):
        img = TF.pil_to_tensor(img)
    img = img.as_subclass(torch.Tensor) if isinstance(img, tv_tensors.Image) else img
    return img.float().div_(255.0) if img.dtype == torch.uint8 else img


class PCALighting:
    def __init__(self, eigval: Sequence[float], eigvec: Sequence[Sequence[float]], std: float = 0.1):
        self.eigval = torch.tensor(eigval, dtype=torch.float32)
        self.eigvec = torch.tensor(eigvec, dtype=torch.float32)  # eigenvectors as columns
        self.std = float(std)

    def offsets(self) -> torch.Tensor:
        """One random RGB offset (3,) in [0, 1] pixel units."""
        alpha = torch.randn(3) * self.std
        return self.eigvec @ (alpha * self.eigval)

    def __call__(self, img):
        img = _as_float(img)
        if img.shape[-3] != 3 or self.std == 0:
            return img
        return img + self.offsets().view(3, 1, 1)

    def __repr__(self) -> str:
        return f"PCALighting(eigval={self.eigval.tolist()}, std={self.std})"


class ColorShift:
    def __init__(self, max_shift: float = 0.1):
        self.max_shift = float(max_shift)

    def __call__(self, img):
        img = _as_float(img)
        shift = (torch.rand(img.shape[-3]) * 2 - 1) * self.max_shift
        return img + shift.view(-1, 1, 1)

    def __repr__(self) -> str:
        return f"ColorShift(max_shift={self.max_shift})"


def _axis_map(size: int, steps: int, limit: float) -> torch.Tensor:
    """Input coordinates in [-1, 1] for each of ``size`` output positions (piecewise linear)."""
    widths = 1.0 + (torch.rand(steps) * 2 - 1) * limit
    nodes_in = torch.cat([torch.zeros(1), widths.cumsum(0)]).numpy()
    nodes_in = nodes_in / nodes_in[-1] * 2 - 1
    nodes_out = np.linspace(-1.0, 1.0, steps + 1)
    out = (np.arange(size) + 0.5) / size * 2 - 1  # pixel centres, align_corners=False
    return torch.from_numpy(np.interp(out, nodes_out, nodes_in)).float()


class GridDistortion:
    def __init__(self, steps: int = 5, limit: float = 0.3):
        if not 0 <= limit < 1:
            raise ValueError(f"grid distortion limit must be in [0, 1), got {limit}")
        self.steps, self.limit = int(steps), float(limit)

    def __call__(self, img):
        was_uint8 = not isinstance(img, Image.Image) and img.dtype == torch.uint8
        x = _as_float(img)
        h, w = x.shape[-2:]
        gx, gy = _axis_map(w, self.steps, self.limit), _axis_map(h, self.steps, self.limit)
        grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1).unsqueeze(0)
        out = F.grid_sample(x.unsqueeze(0), grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
        return out.mul_(255).round_().clamp_(0, 255).to(torch.uint8) if was_uint8 else out

    def __repr__(self) -> str:
        return f"GridDistortion(steps={self.steps}, limit={self.limit})"


class ToFloatNormalized:
    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        std_t = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.mean = tuple(mean)
        self.std = tuple(std)
        self._scale8 = 1.0 / (255.0 * std_t)  # uint8 x -> (x / 255 - mean) / std = x * scale8 + bias
        self._scale = 1.0 / std_t
        self._bias = -torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1) / std_t

    def __call__(self, img) -> torch.Tensor:
        if isinstance(img, Image.Image):
            img = TF.pil_to_tensor(img)
        img = img.as_subclass(torch.Tensor)
        if img.shape[-3] != self._bias.shape[0]:
            raise ValueError(f"image has {img.shape[-3]} channels but mean/std have {self._bias.shape[0]}")
        scale = self._scale8 if img.dtype == torch.uint8 else self._scale
        return torch.addcmul(self._bias, img.float(), scale)

    def __repr__(self) -> str:
        return f"ToFloatNormalized(mean={self.mean}, std={self.std})"
