"""The parts of ``cnnlab train`` that turn a configuration into data, a model and pictures.

Channels and input size: the ``in_chans`` / ``input_size`` of the configuration when given, else the
data's native ones (digits and MNIST: 1x32x32 / 1x28x28), else the model's ``default_cfg``. The class
count always comes from the data. Mean and std come from the data (its training images or its
statistics file). The evaluation preprocessing (:class:`~cnnlab.models.base.DataConfig`) is saved with
the weights, so that predict, evaluate, viz and export see images exactly as validation did.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..data.transforms import eval_transform
from ..errors import CnnlabError
from ..models.base import DataConfig
from ..registry import create_model, get_entry

# data spec -> (preset, field overrides) when neither --augment nor --aug is given; else ("none", ()).
# Digits fill their whole frame, so the preset's 10% shifts cut strokes off: 5% and 5 degrees do better
# (measured: 98.05% best val top-1 for the default run; see docs/train.md).
AUTO_AUGMENT = {"digits": ("digits", ("translate=0.05", "rotate=5"))}
MIN_SIDE, MAX_SIDE = 8, 4096  # input sides in pixels that --input-size accepts


@dataclass
class DataSetup:
    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: str
    train_transform: object
    eval_transform: object
    preprocessing: DataConfig  # what evaluation needs to see images as the run did; saved with the weights


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
    if len(splits.classes) < 2:
        raise CnnlabError(
            f"{config.data} has {len(splits.classes)} class ({', '.join(splits.classes)}); a classifier "
            "needs at least 2 classes (one folder per class)"
        )
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
    from ..data.transforms import eval_crop_pct, parse_aug_options, resolve_augment

    cfg = model.default_cfg
    native = splits.input_size
    size = config.input_size or (native[-1] if native else cfg.input_size[-1])
    check_input_size(model, config.model, len(splits.mean), size)
    preset, aug = config.augment, config.aug
    if preset is None and not aug:
        preset, aug = AUTO_AUGMENT.get(config.data, ("none", ()))
    preset = preset or "none"
    options = parse_aug_options(list(aug))
    pca = splits.pca if resolve_augment(preset, **options).pca_std else None
    common = {"input_size": size, "mean": splits.mean, "std": splits.std, "interpolation": cfg.interpolation,
              "crop_pct": cfg.crop_pct}
    described = preset + "".join(f",{a}" for a in aug)
    pre = DataConfig((len(splits.mean), size, size), tuple(splits.mean), tuple(splits.std), cfg.interpolation,
                     eval_crop_pct(preset, cfg.crop_pct, **options))
    return DataSetup(pre.input_size, pre.mean, pre.std, described,
                     build_transform(preset, train=True, pca=pca, **common, **options),
                     eval_transform(pre), pre)


def check_input_size(model: nn.Module, name: str, in_chans: int, size: int) -> None:
    """A one-line error when ``model`` cannot take ``size`` x ``size`` inputs: the limits below, then a
    forward pass of a copy built on the meta device (nothing is computed or allocated)."""
    if not MIN_SIDE <= size <= MAX_SIDE:
        raise CnnlabError(f"--input-size {size} must be between {MIN_SIDE} and {MAX_SIDE} pixels")
    minimum = getattr(model, "min_input_size", None)
    if minimum and size < (minimum if isinstance(minimum, int) else minimum[-1]):
        raise CnnlabError(f"--input-size {size} is too small for {name} (at least {minimum})")
    try:
        with torch.device("meta"), torch.no_grad():
            probe = create_model(
                name, num_classes=max(1, getattr(model, "num_classes", 1) or 1), in_chans=in_chans
            )
            probe.eval()(torch.empty(1, in_chans, size, size))
    except (RuntimeError, ValueError, AssertionError, IndexError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise CnnlabError(f"--input-size {size} does not fit {name} ({first}); give another --input-size "
                          f"(its default is {model.default_cfg.input_size[-1]})") from None
