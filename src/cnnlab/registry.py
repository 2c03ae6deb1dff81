"""The model registry: ``@register_model`` + ``create_model`` + ``list_models``.

A model family registers one builder function per named variant. The builder takes
``num_classes``, ``in_chans`` and family keyword arguments and returns a module that follows the
contract of :class:`cnnlab.models.base.ClassifierModel`.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import CnnlabError


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable
    family: str
    paper: str  # short citation, e.g. "He et al. 2015, arXiv:1512.03385"
    loads: tuple[str, ...] = ()  # peer checkpoints it loads, e.g. ("torchvision:resnet50",)
    native: dict = field(default_factory=dict)  # the paper's setting, e.g. {"in_chans": 1, "num_classes": 10}


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str | None = None,
    *,
    family: str,
    paper: str,
    loads: tuple[str, ...] = (),
    native: dict | None = None,
) -> Callable:
    """Decorator: register ``fn`` (a builder) under ``name`` (default: the function's name)."""

    def wrap(fn: Callable) -> Callable:
        key = name or fn.__name__
        if key in _REGISTRY:
            raise ValueError(f"model {key!r} is registered twice")
        _REGISTRY[key] = ModelEntry(key, fn, family, paper, tuple(loads), dict(native or {}))
        return fn

    return wrap


def _ensure_loaded() -> None:
    from . import models  # noqa: F401  (importing the families fills the registry)


def list_models(pattern: str | None = None) -> list[str]:
    """Registered names, sorted; ``pattern`` is a shell wildcard such as ``'resnet*'``."""
    if pattern is not None and not isinstance(pattern, str):
        raise CnnlabError(f"pattern must be a shell wildcard string such as 'resnet*', got {pattern!r}")
    _ensure_loaded()
    names = sorted(_REGISTRY)
    if pattern:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return names


def get_entry(name: str) -> ModelEntry:
    if not isinstance(name, str):
        raise CnnlabError(f"model name must be a string such as 'resnet50', got {name!r}")
    _ensure_loaded()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; run `cnnlab models` to list them"
        raise CnnlabError(f"unknown model {name!r}{hint}")
    return _REGISTRY[name]


def create_model(
    name: str, num_classes: int | None = None, in_chans: int | None = None, weights=None, **kwargs
):
    """Build a registered model by name; ``weights`` is a checkpoint file, a run folder, a pretrained
    tag (``"imagenet"``, ``"imagenet1k_v2"``, ...: ``cnnlab weights ls``) or a state_dict.

    With weights, what the caller leaves ``None`` comes from them: the class count, the input
    channels, and (cnnlab checkpoints) the class names (``model.class_names``) and the evaluation
    preprocessing (``model.default_cfg``). A class count that differs from the checkpoint's gives a
    fresh classifier, with a notice. Without weights: 1000 classes, 3 channels.
    ``native_model(name)`` builds a model in its paper's setting instead (e.g. LeNet-5: 1 channel, 10
    classes; the CIFAR networks: 10 classes).
    """
    if not isinstance(name, str):
        raise CnnlabError(f"model name must be a string such as 'resnet50', got {type(name).__name__}")
    entry = get_entry(name)
    info, ckpt = None, None
    if weights is not None:
        from .weights import describe_weights, read_weights

        ckpt = read_weights(weights, entry)
        info = describe_weights(ckpt, entry)
    chosen_classes = num_classes if num_classes is not None else (info.num_classes if info else None)
    chosen_chans = in_chans if in_chans is not None else (info.in_chans if info else None)
    num_classes = 1000 if chosen_classes is None else chosen_classes
    in_chans = 3 if chosen_chans is None else chosen_chans
    _check_positive_int("num_classes", num_classes, allow_zero=True)
    _check_positive_int("in_chans", in_chans)
    try:
        model = entry.builder(num_classes=num_classes, in_chans=in_chans, **kwargs)
    except TypeError as exc:  # an unknown keyword argument
        raise CnnlabError(f"cannot build {name!r}: {exc}") from None
    model.model_name = name
    if ckpt is not None:
        from .weights import load_weights

        load_weights(model, ckpt, entry=entry)
        _adopt(model, info, num_classes)
    return model


def _adopt(model, info, num_classes: int) -> None:
    """A 1000-class head from a file without metadata (torchvision, timm) reads as ImageNet's classes
    (what a checkpoint records itself, ``load_weights`` has already given the model)."""
    if model.class_names is None and info.num_classes == num_classes == 1000 and info.model is None:
        from .weights import imagenet_classes

        model.class_names = imagenet_classes()


def _check_positive_int(what: str, value, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise CnnlabError(f"{what} must be an integer >= {low}, got {value!r}")


def native_model(name: str, **kwargs):
    """The model in the setting of its paper's figures (``entry.native`` overrides the defaults)."""
    return create_model(name, **{**get_entry(name).native, **kwargs})
