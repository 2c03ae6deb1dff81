"""Classify images with a model: ``predict(model_name, images, weights=..., topk=5)``.

Each image goes through the model's evaluation preprocessing (``eval_transform(model.default_cfg)``:
resize the short side, centre crop, normalise); the result per image is the top-k
(class index, class name, probability). Class names: the checkpoint's own list when it carries one
(metadata ``class_names``, a JSON list), the 1000 ImageNet names for a 1000-class head, else
``class_<i>``. An image that cannot be read gives an error entry instead of stopping the others.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
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


def load_image(image, label: str) -> Image.Image:
    """A path, PIL image or HWC / HW uint8 array -> RGB PIL image; CnnlabError with one line if not."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise CnnlabError(f"{label}: arrays must be uint8 HxW or HxWxC, got {image.dtype} {image.shape}")
        return Image.fromarray(image).convert("RGB")
    try:
        with Image.open(image) as im:
            return im.convert("RGB")
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
    results, batch = [], []
    for i, image in enumerate(images):
        label = str(image) if isinstance(image, str | os.PathLike) else f"image {i}"
        pred = Prediction(label)
        results.append(pred)
        try:
            batch.append((pred, transform(load_image(image, label))))
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
    """The model with its checkpoint's class count, and the class names to print."""
    entry = get_entry(model_name)
    num_classes, names = 1000, None
    if weights is None:
        notice(f"{model_name}: no weights given, so these are the guesses of an untrained network")
    elif not (isinstance(weights, str) and weights in entry.pretrained):
        num_classes, names = _checkpoint_classes(model_name, weights)
    model = create_model(model_name, num_classes=num_classes, weights=weights)
    if names is None or len(names) != num_classes:
        names = list(imagenet_classes()) if num_classes == 1000 else [f"class_{i}" for i in range(num_classes)]
    return model, names


def _checkpoint_classes(model_name: str, weights) -> tuple[int, list[str] | None]:
    """Class count (metadata, else the classifier weight's rows) and names of a checkpoint file."""
    from ..weights import read_checkpoint, strip_prefixes

    if not isinstance(weights, str | os.PathLike) or not Path(weights).exists():
        return 1000, None  # create_model reports the bad value
    sd, meta = read_checkpoint(weights)
    names = json.loads(meta["class_names"]) if "class_names" in meta else None
    if str(meta.get("num_classes", "")).isdigit():
        return int(meta["num_classes"]), names
    with torch.device("meta"):
        probe = create_model(model_name)
    convert = getattr(probe, "convert_state_dict", None)
    sd = strip_prefixes(sd)
    sd = convert(sd) if convert else sd
    weight = sd.get(f"{probe.classifier_path}.weight")
    return (int(weight.shape[0]) if weight is not None and weight.ndim == 2 else 1000), names
