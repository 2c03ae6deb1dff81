"""The parts of ``cnnlab train`` that turn a configuration into data, a model and pictures.

Channels and input size: the ``in_chans`` / ``input_size`` of the configuration when given, else the
data's native ones (digits and MNIST: 1x32x32 / 1x28x28), else the model's ``default_cfg``. The class
count always comes from the data. Mean and std come from the data (its training images or its
statistics file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import CnnlabError
from ..registry import create_model, get_entry

# data spec -> (preset, field overrides) when neither --augment nor --aug is given; else ("none", ()).
# Digits fill their whole frame, so the preset's 10% shifts cut strokes off: 5% and 5 degrees do better
# (measured: 98.05% best val top-1 for the default run; see docs/train.md).
AUTO_AUGMENT = {"digits": ("digits", ("translate=0.05", "rotate=5"))}


@dataclass
class DataSetup:
    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: str
    train_transform: object
    eval_transform: object


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise CnnlabError(f"--device {name!r} is not one of auto, cpu, cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise CnnlabError("--device cuda: no CUDA device is available here; use --device cpu")
    return torch.device(name)


def run_name(out: Path, config) -> Path:
    """``<out>/<model>-<data>``, or the first free ``-2``, ``-3``, ... when taken."""
    kind, _, arg = config.data.partition(":")
    tag = Path(arg or kind).name or "data"
    base = f"{config.model}-{tag}".replace(" ", "_")
    path, n = out / base, 1
    while path.exists():
        n += 1
        path = out / f"{base}-{n}"
    return path


def open_data(config):
    """(splits, in_chans): the dataset opened with the channel count the model will take."""
    from ..data import open_dataset

    get_entry(config.model)  # an unknown model is reported before the data is read
    chans = config.in_chans or 3
    kw = {"val_split": config.val_split, "seed": config.seed, "split_file": config.split_file}
    splits = open_dataset(config.data, in_chans=chans, **kw)
    native = splits.input_size
    if config.in_chans is None and native and native[0] != chans:
        chans = native[0]
        splits = open_dataset(config.data, in_chans=chans, **kw)
    return splits, chans


def build_model(config, splits, in_chans: int) -> nn.Module:
    model = create_model(config.model, num_classes=len(splits.classes), in_chans=in_chans)
    if config.dropout is not None:
        drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
        if not drops:
            raise CnnlabError(f"{config.model} has no dropout layer; drop --dropout")
        for m in drops:
            m.p = config.dropout
    return model


def data_setup(config, splits, model: nn.Module) -> DataSetup:
    from ..data import build_transform
    from ..data.transforms import resolve_augment

    cfg = model.default_cfg
    native = splits.input_size
    size = config.input_size or (native[-1] if native else cfg.input_size[-1])
    minimum = getattr(model, "min_input_size", None)
    if minimum and size < (minimum if isinstance(minimum, int) else minimum[-1]):
        raise CnnlabError(f"--input-size {size} is too small for {config.model} (at least {minimum})")
    from ..data.transforms import parse_aug_options

    preset, aug = config.augment, config.aug
    if preset is None and not aug:
        preset, aug = AUTO_AUGMENT.get(config.data, ("none", ()))
    preset = preset or "none"
    options = parse_aug_options(list(aug))
    pca = splits.pca if resolve_augment(preset, **options).pca_std else None
    common = {"input_size": size, "mean": splits.mean, "std": splits.std, "interpolation": cfg.interpolation,
              "crop_pct": cfg.crop_pct}
    described = preset + "".join(f",{a}" for a in aug)
    return DataSetup((len(splits.mean), size, size), tuple(splits.mean), tuple(splits.std), described,
                     build_transform(preset, train=True, pca=pca, **common, **options),
                     build_transform(preset, train=False, **common))


def write_pictures(folder, fit, classes: list[str], title: str) -> None:
    from ..viz.plots import plot_confusion, plot_curves

    plot_curves(fit.history, folder.file("curves.png"), title=title)
    confusion = fit.best.get("confusion")
    if confusion is not None:
        plot_confusion(confusion, classes, folder.file("confusion.png"),
                       title=f"{title}, best epoch {fit.best['epoch']}")
