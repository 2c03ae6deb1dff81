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
    pretrained: dict[str, Callable] = field(default_factory=dict)  # tag -> () -> state_dict
    native: dict = field(default_factory=dict)  # the paper's setting, e.g. {"in_chans": 1, "num_classes": 10}


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str | None = None,
    *,
    family: str,
    paper: str,
    loads: tuple[str, ...] = (),
    pretrained: dict[str, Callable] | None = None,
    native: dict | None = None,
) -> Callable:
    """Decorator: register ``fn`` (a builder) under ``name`` (default: the function's name)."""

    def wrap(fn: Callable) -> Callable:
        key = name or fn.__name__
        if key in _REGISTRY:
            raise ValueError(f"model {key!r} is registered twice")
        _REGISTRY[key] = ModelEntry(key, fn, family, paper, tuple(loads), dict(pretrained or {}), dict(native or {}))
        return fn

    return wrap


def _ensure_loaded() -> None:
    from . import models  # noqa: F401  (importing the families fills the registry)


def list_models(pattern: str | None = None) -> list[str]:
    """Registered names, sorted; ``pattern`` is a shell wildcard such as ``'resnet*'``."""
    _ensure_loaded()
    names = sorted(_REGISTRY)
    if pattern:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return names


def get_entry(name: str) -> ModelEntry:
    _ensure_loaded()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; run `cnnlab models` to list them"
        raise CnnlabError(f"unknown model {name!r}{hint}")
    return _REGISTRY[name]


def create_model(name: str, num_classes: int = 1000, in_chans: int = 3, weights=None, **kwargs):
    """Build a registered model by name; ``weights`` is a checkpoint path or a pretrained tag.

    ``native_model(name)`` builds it in its paper's setting instead (e.g. LeNet-5: 1 channel, 10
    classes; the CIFAR networks: 10 classes).
    """
    entry = get_entry(name)
    _check_positive_int("num_classes", num_classes, allow_zero=True)
    _check_positive_int("in_chans", in_chans)
    try:
        model = entry.builder(num_classes=num_classes, in_chans=in_chans, **kwargs)
    except TypeError as exc:  # an unknown keyword argument
        raise CnnlabError(f"cannot build {name!r}: {exc}") from None
    model.model_name = name
    if weights is not None:
        from .weights import load_weights

        load_weights(model, weights, entry=entry)
    return model


def _check_positive_int(what: str, value, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise CnnlabError(f"{what} must be an integer >= {low}, got {value!r}")


def native_model(name: str, **kwargs):
    """The model in the setting of its paper's figures (``entry.native`` overrides the defaults)."""
    return create_model(name, **{**get_entry(name).native, **kwargs})
