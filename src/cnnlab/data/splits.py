"""``open_dataset(spec)``: one entry point for every data source, returning train and validation sets.

Specs:

* ``"digits"`` - the built-in default, no download: scikit-learn's 1,797 8x8 digits upsampled to
  32x32, 10 classes; validation = a stratified 20% (seeded) unless ``val_split`` says otherwise.
* ``"cifar10:DIR"``, ``"cifar100:DIR"`` - the python batches; ``"mnist:DIR"``, ``"fashion-mnist:DIR"``
  - the IDX files. Validation = the official test set unless ``val_split`` is given.
* ``DIR`` - an image folder (see :mod:`cnnlab.data.folders`); ``FILE.csv`` - a ``path,label[,split]`` list.

Small sources are decoded once and kept in memory as uint8 tensors; folders are read on demand.
Mean and std come from the training images for in-memory data and from a statistics file
(``cnnlab data stats``) for folders, falling back to the ImageNet figures. ``splits.pca`` (AlexNet's
colour PCA) is computed from the training set on first use when no statistics file has it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import CnnlabError
from ..utils.log import notice
from . import arrays
from .datasets import ImageFileDataset, TensorImageDataset
from .folders import (
    cache_dir,
    data_key,
    drop_empty_classes,
    find_split_folders,
    list_class_folder,
    read_csv_list,
    screen,
    split_samples,
)
from .report import BadFileReport, stratified_split
from .stats import PCA, DataStats, dataset_stats, load_stats, tensor_stats

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IN_CHANS = (1, 3)


@dataclass
class Splits:
    """What :func:`open_dataset` returns."""

    train: torch.utils.data.Dataset
    val: torch.utils.data.Dataset
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: tuple[int, int, int] | None  # native (C, H, W) when all images share it
    report: BadFileReport
    source: str
    stats: DataStats | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def pca(self) -> PCA | None:
        """The training set's RGB PCA (computed and cached on first use; None for 1-channel data)."""
        if self.stats is None or (self.stats.pca is None and self.stats.mean and len(self.stats.mean) == 3):
            notice(
                f"computing the RGB PCA of the training set of {self.source} (save it with `cnnlab data "
                "stats`)"
            )
            self.stats = dataset_stats(self.train)
        return self.stats.pca

    def class_counts(self, part: str = "train") -> dict[str, int]:
        targets = getattr(self, part).targets
        return {c: sum(1 for t in targets if t == i) for i, c in enumerate(self.classes)}


def _memory_splits(name: str, data: arrays.Arrays, in_chans: int, val_split: float | None,
                   seed: int) -> Splits:
    x_train, y_train, x_val, y_val, classes = data
    native = tuple(x_train.shape[1:])
    if val_split is not None:  # carve the validation set out of the training set
        tr, va = stratified_split(y_train, val_split, seed, classes)
        x_train, x_val = x_train[tr], x_train[va]
        y_train, y_val = [y_train[i] for i in tr], [y_train[i] for i in va]
    x_train, x_val = arrays.to_channels(x_train, in_chans), arrays.to_channels(x_val, in_chans)
    stats = tensor_stats(x_train)
    return Splits(TensorImageDataset(x_train, y_train, classes), TensorImageDataset(x_val, y_val, classes),
                  classes, stats.mean, stats.std, native, BadFileReport(), name, stats)


def _open_digits(arg: str, in_chans: int, val_split: float | None, seed: int, split_file) -> Splits:
    x, y, classes = arrays.read_digits()
    fraction = arrays.DIGITS_VAL_FRACTION if val_split is None else val_split
    tr, va = stratified_split(y, fraction, seed, classes)
    data = (x[tr], [y[i] for i in tr], x[va], [y[i] for i in va], classes)
    return _memory_splits("digits", data, in_chans, None, seed)


def _array_opener(kind: str):
    def opener(arg: str, in_chans: int, val_split: float | None, seed: int, split_file) -> Splits:
        data = arrays.ARRAY_READERS[kind](arrays.check_dir(arg, kind))
        return _memory_splits(f"{kind}:{arg}", data, in_chans, val_split, seed)
    return opener


def _file_splits(source: str, root: Path, classes: list[str], train, val, in_chans: int,
                 report: BadFileReport, stats_file: str | None) -> Splits:
    mode = "L" if in_chans == 1 else "RGB"
    if not train:
        raise CnnlabError(f"{source} has no readable training image; run `cnnlab data check {source}`")
    if not val:
        raise CnnlabError(
            f"{source} gives an empty validation set; use a larger val split or add validation images"
        )
    check_balance(source, classes, train, val)
    stats_path = Path(stats_file) if stats_file else default_stats_path(str(root))
    stats = load_stats(stats_path) if stats_path.is_file() else None
    if stats_file and stats is None:
        raise CnnlabError(f"statistics file {stats_file} does not exist; make it with `cnnlab data stats`")
    if stats is not None and len(stats.mean) != in_chans:
        stats = None  # made for the other channel count
    if stats is not None:
        mean, std = stats.mean, stats.std
    else:  # the ImageNet figures (their channel average for grayscale)
        mean, std = (IMAGENET_MEAN, IMAGENET_STD) if in_chans == 3 else ((0.449,), (0.226,))
    make = lambda s: ImageFileDataset(s, classes, mode, report=report)  # noqa: E731
    return Splits(make(train), make(val), classes, tuple(mean), tuple(std), None, report, source, stats)


def check_balance(source: str, classes: list[str], train, val) -> None:
    """Every time a split is opened (new or reused from a split file): a class without a training
    image is an error, a class without a validation image a notice."""
    counts = [[0, 0] for _ in classes]
    for part, samples in enumerate((train, val)):
        for _, label in samples:
            counts[label][part] += 1
    empty = [c for c, (tr, _) in zip(classes, counts) if tr == 0]
    if empty:
        raise CnnlabError(
            f"class(es) {', '.join(empty[:5])} of {source} have no training image in this split; add "
            "images, or delete the saved split file (or pass another --split-file) to split again"
        )
    unseen = [c for c, (_, va) in zip(classes, counts) if va == 0]
    if unseen:
        notice(
            f"class(es) {', '.join(unseen[:5])} of {source} have no validation image (a class with a single "
            "image stays in training); their validation accuracy cannot be measured"
        )


def _open_folder(root: Path, in_chans: int, val_split, seed: int, split_file, stats_file) -> Splits:
    report = BadFileReport()
    train_dir, val_dir = find_split_folders(root)
    classes, train = list_class_folder(train_dir)
    train = screen(train, report)
    if val_dir is not None:
        if val_split is not None:
            raise CnnlabError(
                f"{root} already has {val_dir.name}/; drop the val split or point to {train_dir}"
            )
        _, val = list_class_folder(val_dir, classes)
        classes, both = drop_empty_classes(classes, train + screen(val, report))
        train, val = both[:len(train)], both[len(train):]
    else:
        if val_split is None:
            raise CnnlabError(
                f"{root} has no train/ and val/ folders; pass a val split (e.g. --val-split 0.2) "
                "to split it, stratified and seeded"
            )
        classes, train = drop_empty_classes(classes, train)
        train, val = split_samples(train, classes, root, val_split, seed, split_file)
    return _file_splits(str(root), root, classes, train, val, in_chans, report, stats_file)


def _open_csv(path: Path, in_chans: int, val_split, seed: int, split_file, stats_file) -> Splits:
    report = BadFileReport()
    classes, samples, column = read_csv_list(path)
    if column is not None:
        keep = {p for p, _ in screen(samples, report)}
        train = [s for s, c in zip(samples, column) if c == "train" and s[0] in keep]
        val = [
            s for s, c in zip(samples, column) if c in ("val", "valid", "validation", "test") and s[0] in keep
        ]
    elif val_split is None:
        raise CnnlabError(
            f"{path} has no split column; pass a val split (e.g. --val-split 0.2) or add ',train|val'"
        )
    else:
        classes, samples = drop_empty_classes(classes, screen(samples, report))
        train, val = split_samples(samples, classes, path.parent, val_split, seed, split_file)
    return _file_splits(str(path), path, classes, train, val, in_chans, report, stats_file)


OPENERS = {"digits": _open_digits, **{k: _array_opener(k) for k in arrays.ARRAY_READERS}}


def resolve_spec(spec):
    """``spec`` with its folder or file made absolute (``photos`` -> ``/home/me/photos``,
    ``cifar10:data`` -> ``cifar10:/home/me/data``), so that a run's record of its data opens from any
    working folder; a built-in name, an unknown spec (refused when opened) or a non-string is unchanged."""
    if not isinstance(spec, str) or not spec.strip():
        return spec
    kind, sep, arg = spec.partition(":")
    if kind.lower() in OPENERS and (arg or kind.lower() == "digits"):
        return f"{kind}{sep}{os.path.abspath(os.path.expanduser(arg))}" if arg else spec
    path = Path(os.path.expanduser(spec))
    return os.path.abspath(path) if path.exists() else spec


def open_dataset(spec: str = "digits", *, val_split: float | None = None, seed: int = 0, in_chans: int = 3,
                 split_file: str | None = None, stats_file: str | None = None) -> Splits:
    """Open a dataset by spec (see the module docstring). Images come out with ``in_chans`` channels."""
    if in_chans not in IN_CHANS:
        raise CnnlabError(f"in_chans={in_chans} is not supported for data; use 1 (grayscale) or 3 (RGB)")
    kind, _, arg = str(spec).partition(":")
    if kind.lower() in OPENERS and (arg or kind.lower() == "digits"):
        return OPENERS[kind.lower()](arg, in_chans, val_split, seed, split_file)
    path = Path(os.path.expanduser(str(spec)))
    if path.is_dir():
        return _open_folder(path, in_chans, val_split, seed, split_file, stats_file)
    if path.is_file() and path.suffix.lower() == ".csv":
        return _open_csv(path, in_chans, val_split, seed, split_file, stats_file)
    raise CnnlabError(f"unknown data '{spec}'; use digits, an image folder, a .csv list, or "
                      f"{', '.join(k + ':DIR' for k in arrays.ARRAY_READERS)}")


def default_stats_path(spec: str) -> Path:
    """Where ``cnnlab data stats`` saves, and :func:`open_dataset` looks for, a folder's statistics."""
    return cache_dir() / "stats" / f"{data_key(Path(os.path.expanduser(spec)))}.json"


def compute_stats(spec: str, *, val_split: float | None = None, seed: int = 0, in_chans: int = 3,
                  out: str | None = None, max_images: int = 5000) -> tuple[DataStats, Path | None]:
    """Mean, std and RGB PCA of the TRAINING part of ``spec``; saved as JSON for folders and CSV
    lists (to ``out`` or the default place that :func:`open_dataset` reads), or to ``out`` if given."""
    from .stats import save_stats

    splits = open_dataset(spec, val_split=val_split, seed=seed, in_chans=in_chans, stats_file=None)
    stats = dataset_stats(splits.train, max_images=max_images, seed=seed)
    on_disk = isinstance(splits.train, ImageFileDataset)
    target = Path(out) if out else (default_stats_path(spec) if on_disk else None)
    if target is not None:
        save_stats(stats, target, source=str(spec))
    return stats, target
