"""Small datasets decoded once into memory: the built-in digits, CIFAR-10/100 and (Fashion-)MNIST.

Each reader returns ``(x_train, y_train, x_val, y_val, classes)`` with uint8 ``(N, C, H, W)`` tensors.
For CIFAR and MNIST the validation set is the official test set unless a ``val_split`` is asked for
(then it is a stratified, seeded part of the official training set).
"""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import CnnlabError

DIGITS_SIZE = 32  # sklearn's 8x8 digits are upsampled (bilinear) to 32x32, LeNet's input size
DIGITS_VAL_FRACTION = 0.2
FASHION_CLASSES = ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
                   "bag", "ankle boot"]
Arrays = tuple[torch.Tensor, list[int], torch.Tensor, list[int], list[str]]


def read_digits() -> tuple[torch.Tensor, list[int], list[str]]:
    """scikit-learn's bundled 1,797 handwritten digits (values 0..16), as uint8 (N, 1, 32, 32)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) * (255.0 / 16.0)).unsqueeze(1)
    x = F.interpolate(x, size=(DIGITS_SIZE, DIGITS_SIZE), mode="bilinear", align_corners=False)
    x = x.round_().clamp_(0, 255).to(torch.uint8)
    return x, [int(t) for t in bunch.target], [str(c) for c in bunch.target_names]


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """CIFAR's batches are pickles; allow only the numpy types they contain (no code execution)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("builtins", "bytes")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            batch = _NumpyOnlyUnpickler(fh, encoding="bytes").load()
    except (OSError, pickle.UnpicklingError, EOFError) as exc:
        raise CnnlabError(
            f"cannot read CIFAR batch {path} ({exc}); re-extract the python version of the archive"
        ) from None
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}


def _cifar_root(root: Path, marker: str) -> Path:
    for candidate in (root, *sorted(root.glob("cifar-*-python")), *sorted(root.glob("cifar-*-batches-py"))):
        if (candidate / marker).is_file():
            return candidate
    raise CnnlabError(f"no CIFAR file '{marker}' under {root}; point to the extracted cifar-*-python folder")


def _cifar_images(batches: list[dict], label_key: str) -> tuple[torch.Tensor, list[int]]:
    data = np.concatenate([np.asarray(b["data"], dtype=np.uint8) for b in batches])
    labels = [int(t) for b in batches for t in b[label_key]]
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), labels


def read_cifar10(root: str) -> Arrays:
    base = _cifar_root(Path(root), "data_batch_1")
    train = [_unpickle(base / f"data_batch_{i}") for i in range(1, 6)]
    meta = _unpickle(base / "batches.meta")
    classes = [c.decode() if isinstance(c, bytes) else c for c in meta["label_names"]]
    return (
        *_cifar_images(train, "labels"),
        *_cifar_images([_unpickle(base / "test_batch")], "labels"),
        classes,
    )


def read_cifar100(root: str) -> Arrays:
    base = _cifar_root(Path(root), "train")
    meta = _unpickle(base / "meta")
    classes = [c.decode() if isinstance(c, bytes) else c for c in meta["fine_label_names"]]
    train, test = _unpickle(base / "train"), _unpickle(base / "test")
    return (*_cifar_images([train], "fine_labels"), *_cifar_images([test], "fine_labels"), classes)


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (big-endian header: 0, 0, type code 0x08 = uint8, number of dimensions)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise CnnlabError(f"{path} is not a uint8 IDX file; use the original MNIST-format files")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise CnnlabError(
            f"{path} is truncated ({data.size} of {int(np.prod(shape))} values); download it again"
        )
    return data.reshape(shape)


def _find_idx(root: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        for folder in (root, root / "raw"):
            if (folder / name).is_file():
                return folder / name
    raise CnnlabError(
        f"no IDX file '{stem}[.gz]' in {root}; point to the folder with the four MNIST-format files"
    )


def read_mnist(root: str, classes: list[str] | None = None) -> Arrays:
    base = Path(root)
    parts = []
    for prefix in ("train", "t10k"):
        x = _read_idx(_find_idx(base, f"{prefix}-images-idx3-ubyte"))
        y = _read_idx(_find_idx(base, f"{prefix}-labels-idx1-ubyte"))
        parts += [torch.from_numpy(x.copy()).unsqueeze(1), [int(t) for t in y]]
    return (*parts, classes or [str(i) for i in range(10)])


def read_fashion_mnist(root: str) -> Arrays:
    return read_mnist(root, FASHION_CLASSES)


def to_channels(x: torch.Tensor, in_chans: int) -> torch.Tensor:
    """uint8 (N, C, H, W) with C in {1, 3} -> ``in_chans`` channels (luma for 1, repeat for 3)."""
    c = x.shape[1]
    if c == in_chans:
        return x
    if in_chans == 1 and c == 3:  # ITU-R 601-2 luma, the same weights as PIL's convert("L")
        w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return (x.float() * w).sum(1, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)
    if in_chans == 3 and c == 1:
        return x.expand(-1, 3, -1, -1).contiguous()
    raise CnnlabError(f"cannot turn {c}-channel images into in_chans={in_chans}; use in_chans 1 or 3")


ARRAY_READERS = {"cifar10": read_cifar10, "cifar100": read_cifar100, "mnist": read_mnist,
                 "fashion-mnist": read_fashion_mnist}


def check_dir(root: str, kind: str) -> str:
    if not root or not os.path.isdir(root):
        raise CnnlabError(
            f"'{kind}:{root}' is not a folder; write {kind}:DIR with the extracted files in DIR"
        )
    return root
