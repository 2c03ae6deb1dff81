"""What a checkpoint says about itself: the class names, the evaluation preprocessing, the source.

cnnlab writes these facts into every checkpoint it saves (safetensors metadata, all strings):

=================  ==============================================================================
``model``          the registered model name
``num_classes``    the classifier's output count
``classes``        JSON list of the class names, in output order
``preprocessing``  JSON of the :class:`~cnnlab.models.base.DataConfig` to evaluate with: input size
                   (C, H, W), mean, std, interpolation, crop fraction (1.0: the whole image is resized,
                   no border is cropped away)
``weights``        where the weights a run started from came from (a tag, a file)
=================  ==============================================================================

Checkpoints of earlier cnnlab versions carry ``input_size``/``mean``/``std`` instead of
``preprocessing``; they are read with the model's own interpolation and crop fraction. Files of other
libraries carry nothing: the class count is read off the classifier weight and the input channels off
the first convolution, and a 1000-class head is taken to be ImageNet's (:func:`imagenet_classes`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources

from ..models.base import DataConfig


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names, in the order of the standard class indices."""
    text = resources.files("cnnlab").joinpath("resources/imagenet_classes.txt").read_text(encoding="utf-8")
    names = tuple(line for line in text.splitlines() if line)
    if len(names) != 1000:
        raise RuntimeError("cnnlab/resources/imagenet_classes.txt must hold 1000 names; reinstall cnnlab")
    return names


def default_class_names(num_classes: int) -> list[str]:
    """ImageNet's names for a 1000-class head, else ``class_0``, ``class_1``, ..."""
    return list(imagenet_classes()) if num_classes == 1000 else [f"class_{i}" for i in range(num_classes)]


@dataclass(frozen=True)
class WeightsInfo:
    """What is known about a set of weights before they are loaded (``None``: not recorded)."""

    source: str  # a path, a pretrained tag or "state_dict"
    model: str | None = None  # the model the file was saved from (cnnlab files)
    num_classes: int | None = None
    in_chans: int | None = None
    classes: tuple[str, ...] | None = None
    preprocessing: DataConfig | None = None


def weights_metadata(classes, preprocessing: DataConfig, **extra) -> dict[str, str]:
    """The self-describing metadata of a checkpoint (see the module docstring), as strings."""
    meta = {"classes": json.dumps(list(classes)), "preprocessing": json.dumps(preprocessing.to_dict())}
    return meta | {k: str(v) for k, v in extra.items()}


def _json(meta: dict, key: str):
    try:
        return json.loads(meta[key]) if key in meta else None
    except (json.JSONDecodeError, TypeError):
        return None


def read_preprocessing(meta: dict, default: DataConfig | None = None) -> DataConfig | None:
    """The :class:`DataConfig` recorded in ``meta`` (legacy keys filled from ``default``), or ``None``."""
    data = _json(meta, "preprocessing")
    if isinstance(data, dict):
        try:
            return DataConfig(input_size=tuple(int(v) for v in data["input_size"]),
                              mean=tuple(float(v) for v in data["mean"]),
                              std=tuple(float(v) for v in data["std"]),
                              interpolation=str(data.get("interpolation", "bilinear")),
                              crop_pct=float(data.get("crop_pct", 0.875)))
        except (KeyError, TypeError, ValueError):
            return None
    size, mean, std = (_json(meta, k) for k in ("input_size", "mean", "std"))
    if size and mean and std:  # written by cnnlab 0.1 before the preprocessing key existed
        base = default or DataConfig()
        return replace(base, input_size=tuple(int(v) for v in size), mean=tuple(mean), std=tuple(std))
    return None


def read_classes(meta: dict) -> tuple[str, ...] | None:
    names = _json(meta, "classes") or _json(meta, "class_names")
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        return tuple(names)
    return None
