"""Dataset statistics: per-channel mean and std, and the RGB PCA used by AlexNet's colour augmentation.

All figures are in [0, 1] pixel units. The PCA is the eigen-decomposition of the 3x3 covariance of
the RGB values of every pixel of the TRAINING images (AlexNet, section 4.1): ``eigval`` in
descending order, ``eigvec`` with the eigenvectors as COLUMNS (``eigvec[:, i]`` belongs to
``eigval[i]``).

For image folders, at most ``max_images`` training images are used (a seeded sample) and each is
first reduced so that its shorter side is at most ``max_side`` pixels (JPEG draft decoding and a box
filter); the resulting statistics differ from full-resolution ones in the third decimal.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import CnnlabError
from ..utils.io import write_json


@dataclass(frozen=True)
class PCA:
    eigval: tuple[float, float, float]
    eigvec: tuple[tuple[float, float, float], ...]  # 3x3, eigenvectors as columns


@dataclass(frozen=True)
class DataStats:
    mean: tuple[float, ...]
    std: tuple[float, ...]
    pca: PCA | None
    images: int  # how many images the figures come from
    pixels: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DataStats:
        pca = d.get("pca")
        pca = PCA(tuple(pca["eigval"]), tuple(tuple(r) for r in pca["eigvec"])) if pca else None
        return cls(tuple(d["mean"]), tuple(d["std"]), pca, int(d.get("images", 0)), int(d.get("pixels", 0)))


class _Moments:
    """Running sums of x and x x^T over pixels (float64) for mean, std and covariance."""

    def __init__(self, channels: int):
        self.n = 0
        self.s = np.zeros(channels)
        self.ss = np.zeros((channels, channels))

    def add(self, pixels: np.ndarray) -> None:  # (P, C) in [0, 1]
        pixels = pixels.astype(np.float64)
        self.n += len(pixels)
        self.s += pixels.sum(0)
        self.ss += pixels.T @ pixels

    def result(self, images: int) -> DataStats:
        if self.n < 2:
            raise CnnlabError(
                "no readable pixels to compute statistics from; check the data with `cnnlab data check`"
            )
        mean = self.s / self.n
        cov = (self.ss - self.n * np.outer(mean, mean)) / (self.n - 1)
        std = np.sqrt(np.clip(np.diag(cov), 0, None))
        return DataStats(_r(mean), _r(std), pca_from_cov(cov) if len(mean) == 3 else None, images, self.n)


def _r(values) -> tuple[float, ...]:
    return tuple(round(float(v), 6) for v in values)


def pca_from_cov(cov: np.ndarray) -> PCA:
    """Eigen-decomposition of a 3x3 covariance, eigenvalues descending, eigenvector signs fixed so that
    the largest component of each is positive (for stable files)."""
    val, vec = np.linalg.eigh(cov)
    order = np.argsort(val)[::-1]
    val, vec = np.clip(val[order], 0, None), vec[:, order]
    signs = np.sign(vec[np.abs(vec).argmax(0), range(3)])
    vec = vec * np.where(signs == 0, 1, signs)
    return PCA(_r(val), tuple(_r(row) for row in vec))


def tensor_stats(images: torch.Tensor) -> DataStats:
    """Statistics of uint8 ``(N, C, H, W)`` images held in memory (every pixel)."""
    moments = _Moments(images.shape[1])
    for chunk in images.split(4096):
        moments.add(chunk.permute(0, 2, 3, 1).reshape(-1, images.shape[1]).numpy() / 255.0)
    return moments.result(len(images))


def dataset_stats(dataset, max_images: int = 5000, max_side: int = 128, seed: int = 0) -> DataStats:
    """Statistics of a dataset's images (a seeded sample of at most ``max_images``)."""
    images = getattr(dataset, "images", None)
    if isinstance(images, torch.Tensor):
        return tensor_stats(images)
    from .images import BadImage, load_image

    order = np.random.default_rng(seed).permutation(len(dataset))[:max_images]
    moments, used = None, 0
    for i in order.tolist():
        try:
            im = load_image(dataset.samples[i][0], dataset.mode, draft=max_side)
        except BadImage:
            continue
        if min(im.size) > max_side:
            im.thumbnail((max_side * im.width // min(im.size) + 1, max_side * im.height // min(im.size) + 1))
        arr = np.asarray(im, dtype=np.float32).reshape(-1, 1 if im.mode == "L" else 3) / 255.0
        moments = moments or _Moments(arr.shape[1])
        moments.add(arr)
        used += 1
    if moments is None:
        raise CnnlabError(
            "no readable image to compute statistics from; check the data with `cnnlab data check`"
        )
    return moments.result(used)


def save_stats(stats: DataStats, path: str | Path, source: str = "") -> None:
    write_json(path, {"source": source, **stats.to_dict()})


def load_stats(path: str | Path) -> DataStats:
    try:
        return DataStats.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CnnlabError(
            f"statistics file {path} is unreadable ({exc}); recompute it with `cnnlab data stats`"
        ) from None
