"""One dataset interface for every source: in-memory uint8 tensors or image files on disk.

An item is ``(image, label)``; ``image`` is the sample after ``dataset.transform`` (a settable
attribute). With ``transform=None`` the image is a uint8 tensor ``(C, H, W)``. Transforms receive a
``tv_tensors.Image`` (in-memory data) or a PIL image (files), both of which torchvision.transforms.v2
accepts.

Bad files never crash a loader: a file that fails to decode is skipped, named once in a warning and
recorded in the shared :class:`BadFileReport` (see there for DataLoader workers). What takes its place
depends on ``on_bad``: ``"next"`` (training) returns the next readable item, so that batches keep their
size; ``"drop"`` (evaluation: :func:`cnnlab.engine.evaluate.evaluate` sets it while it runs) returns
None, which :func:`cnnlab.data.loader.collate_readable` leaves out, so that no image is counted twice.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF

from .images import BadImage, load_image
from .jpeg import decode_jpeg_file
from .report import BadFileReport


class TensorImageDataset(Dataset):
    """Decoded uint8 images kept in memory: ``images`` is ``(N, C, H, W)``."""

    def __init__(self, images: torch.Tensor, targets: list[int], classes: list[str],
                 transform: Callable | None = None):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"images must be a uint8 (N, C, H, W) tensor, got {images.dtype} {tuple(images.shape)}"
            )
        self.images = images
        self.targets = list(map(int, targets))
        self.classes = classes
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        image = tv_tensors.Image(self.images[index])
        if self.transform is not None:
            image = self.transform(image)
        else:
            image = image.as_subclass(torch.Tensor)
        return image, self.targets[index]


class ImageFileDataset(Dataset):
    """Images read from disk on demand. ``samples`` is a list of ``(path, class index)``.

    ``mode`` is "RGB" or "L". When the transform has an integer ``draft_size`` attribute (the
    shortest side it needs), JPEGs are decoded at a reduced scale where that is enough.
    """

    def __init__(self, samples: list[tuple[str, int]], classes: list[str], mode: str = "RGB",
                 transform: Callable | None = None, report: BadFileReport | None = None):
        self.samples = list(samples)
        self.targets = [t for _, t in self.samples]
        self.classes = classes
        self.mode = mode
        self.transform = transform
        self.report = report if report is not None else BadFileReport()
        self.on_bad = "next"

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int):
        """The decoded image of item ``index`` (raises :class:`BadImage`): a uint8 tensor when the
        transform accepts tensors and the file is a JPEG, a PIL image otherwise."""
        path = self.samples[index][0]
        draft = getattr(self.transform, "draft_size", None)
        if getattr(self.transform, "accepts_tensor", False):
            image = decode_jpeg_file(
                path, self.mode, draft, fast=getattr(self.transform, "fast_decode", False)
            )
            if image is not None:
                return image
        return load_image(path, self.mode, draft=draft)

    def __getitem__(self, index: int):
        for step in range(len(self.samples)):
            i = (index + step) % len(self.samples)
            try:
                image = self.load(i)
            except BadImage as exc:
                self.report.add(exc.path, exc.reason)
                if self.on_bad == "drop":
                    return None
                continue
            image = self.transform(image) if self.transform is not None else TF.pil_to_tensor(image)
            return image, self.samples[i][1]
        raise RuntimeError("every file of this dataset is unreadable; run `cnnlab data check` on it")


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (in [0, 1] units) of a uint8 ``(N, C, H, W)`` tensor."""
    x = images.double().div_(255.0)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3))
    return tuple(round(v, 4) for v in mean.tolist()), tuple(round(v, 4) for v in std.tolist())
