"""Classify images with a model: ``predict(model_name, images, weights=..., topk=5)``.

Each image goes through the model's evaluation preprocessing (``eval_transform(model.default_cfg)``:
resize the short side, centre crop, normalise); the result per image is the top-k
(class index, class name, probability). A checkpoint of ``cnnlab train``/``finetune`` brings its class
names, input size/channels and mean/std (its metadata); otherwise a 1000-class head reads as the
ImageNet names, any other as ``class_<i>``. An image that cannot be read gives an error entry
instead of stopping the others.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..data.transforms import eval_transform
from ..errors import CnnlabError
from ..registry import create_model, get_entry
from ..utils.log import notice

BATCH = 16  # images per forward pass


@dataclass(frozen=True)
class TopK:
    index: int
    name: str
    prob: float  # softmax probability in [0, 1]


@dataclass
class Prediction:
    source: str  # file path, or "image <i>" for in-memory images
    top: list[TopK] = field(default_factory=list)
    error: str | None = None  # one line when the image could not be read

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names, in the order of the standard class indices."""
    text = resources.files("cnnlab").joinpath("resources/imagenet_classes.txt").read_text(encoding="utf-8")
    names = tuple(line for line in text.splitlines() if line)
    assert len(names) == 1000, "imagenet_classes.txt must hold 1000 names"
    return names


def load_image(image, label: str, mode: str = "RGB") -> Image.Image:
    """A path, PIL image or HWC / HW uint8 array -> PIL image in ``mode``; CnnlabError (one line) if not."""
    if isinstance(image, Image.Image):
        return image.convert(mode)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise CnnlabError(f"{label}: arrays must be uint8 HxW or HxWxC, got {image.dtype} {image.shape}")
        return Image.fromarray(image).convert(mode)
    try:
        with Image.open(image) as im:
            return im.convert(mode)
    except FileNotFoundError:
        raise CnnlabError(f"{label}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CnnlabError(f"{label}: not a readable image ({reason[:100]})") from None


def predict(model_name: str, images, weights=None, topk: int = 5, device: str = "cpu") -> list[Prediction]:
    """Top-``topk`` classes of each image (paths, PIL images or uint8 arrays), in input order."""
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
        raise CnnlabError(f"topk must be an integer >= 1, got {topk!r}")
    model, names = build_classifier(model_name, weights)
    model = model.to(device).eval()
    transform = eval_transform(model.default_cfg)
    mode = "L" if model.default_cfg.input_size[0] == 1 else "RGB"
    results, batch = [], []
    for i, image in enumerate(images):
        label = str(image) if isinstance(image, str | os.PathLike) else f"image {i}"
        pred = Prediction(label)
        results.append(pred)
        try:
            batch.append((pred, transform(load_image(image, label, mode))))
        except CnnlabError as exc:
            pred.error = str(exc)
        if len(batch) == BATCH:
            _classify(model, batch, names, topk, device)
            batch = []
    if batch:
        _classify(model, batch, names, topk, device)
    return results


@torch.no_grad()
def _classify(model, batch, names: list[str], topk: int, device: str) -> None:
    x = torch.stack([t for _, t in batch]).to(device)
    probs = torch.softmax(model(x).float(), dim=1).cpu()
    values, indices = probs.topk(min(topk, probs.shape[1]), dim=1)
    for (pred, _), vals, idxs in zip(batch, values.tolist(), indices.tolist()):
        pred.top = [TopK(i, names[i], p) for i, p in zip(idxs, vals)]


def build_classifier(model_name: str, weights) -> tuple[torch.nn.Module, list[str]]:
    """The model as its checkpoint was trained (class count, input channels and size, mean/std),
    and the class names to print."""
    entry = get_entry(model_name)
    info = CheckpointInfo()
    if weights is None:
        notice(f"{model_name}: no weights given, so these are the guesses of an untrained network")
    elif not (isinstance(weights, str) and weights in entry.pretrained):
        info = checkpoint_info(model_name, weights)
    model = create_model(model_name, num_classes=info.num_classes, in_chans=info.in_chans, weights=weights)
    if info.data:
        model.default_cfg = replace(model.default_cfg, **info.data)
    names = info.names
    if names is None or len(names) != info.num_classes:
        n = info.num_classes
        names = list(imagenet_classes()) if n == 1000 else [f"class_{i}" for i in range(n)]
    return model, names


@dataclass
class CheckpointInfo:
    num_classes: int = 1000
    in_chans: int = 3
    names: list[str] | None = None
    data: dict = field(default_factory=dict)  # DataConfig fields the run was trained with


def checkpoint_info(model_name: str, weights) -> CheckpointInfo:
    """What a checkpoint file says about its model: the metadata of ``cnnlab train``/``finetune``
    (``classes``, ``input_size``, ``mean``, ``std``), else the classifier weight's rows."""
    from ..weights import read_checkpoint, strip_prefixes

    if not isinstance(weights, str | os.PathLike) or not Path(weights).exists():
        return CheckpointInfo()  # create_model reports the bad value
    sd, meta = read_checkpoint(weights)
    info = CheckpointInfo(names=_json_meta(meta, "classes") or _json_meta(meta, "class_names"))
    size, mean, std = (_json_meta(meta, k) for k in ("input_size", "mean", "std"))
    if size and mean and std:
        info.data = {"input_size": tuple(size), "mean": tuple(mean), "std": tuple(std)}
        info.in_chans = int(size[0])
    if str(meta.get("num_classes", "")).isdigit():
        info.num_classes = int(meta["num_classes"])
        return info
    with torch.device("meta"):
        probe = create_model(model_name)
    convert = getattr(probe, "convert_state_dict", None)
    sd = strip_prefixes(sd)
    weight = (convert(sd) if convert else sd).get(f"{probe.classifier_path}.weight")
    if weight is not None and weight.ndim == 2:
        info.num_classes = int(weight.shape[0])
    return info


def _json_meta(meta: dict, key: str):
    try:
        return json.loads(meta[key]) if key in meta else None
    except json.JSONDecodeError:
        return None
