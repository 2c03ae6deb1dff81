"""The models of an evaluation (:mod:`cnnlab.workflows.evaluate`): a :class:`Member` is a model with its
single-view evaluation transform and the names of its outputs, loaded by
:func:`cnnlab.workflows.trained.load_trained` (the preprocessing saved with its weights); how its
outputs map onto the data's classes (by name when the weights name them, else by index).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import CnnlabError
from ..registry import get_entry
from ..utils.log import notice
from .trained import load_trained


@dataclass
class Member:
    """One model to evaluate. ``transform``: its single-view evaluation transform (default: its
    preprocessing's, ``eval_transform(model.default_cfg)``); ``classes``: the names of its outputs
    (default: the dataset's); ``run``: its run folder's config.json."""

    model: nn.Module
    transform: object = None
    classes: list[str] | None = None
    label: str = "model"
    run: dict | None = None
    in_chans: int | None = None


def parse_member(spec: str) -> tuple[str, str | None]:
    """``"MODEL[:WEIGHTS]"`` -> (model name, weights or None); the model name is checked."""
    if not isinstance(spec, str):
        raise CnnlabError(f"a member is MODEL[:WEIGHTS], a Member or a model, got {type(spec).__name__}")
    name, sep, weights = spec.partition(":")
    get_entry(name)
    if sep and not weights:
        raise CnnlabError(f"{spec!r} names no weights after ':'; write MODEL:RUN_FOLDER, MODEL:FILE or MODEL")
    return name, weights or None


def load_member(spec: str) -> Member | str:
    """A trained :class:`Member` from ``MODEL:WEIGHTS`` or an ONNX file (``cnnlab export``: run by
    onnxruntime with its embedded preprocessing and class names); an untrained one is built once the
    data is known, so this returns the bare model name for ``MODEL``."""
    from ..deploy.formats import read_onnx_metadata
    from ..deploy.runtime import OnnxModule, is_onnx_file, load_onnx_classifier

    if is_onnx_file(spec):
        if "preprocessing" not in read_onnx_metadata(spec):
            raise CnnlabError(
                f"{spec} carries no cnnlab preprocessing: evaluate takes ONNX files written by "
                "`cnnlab export` (`cnnlab predict` runs others with --input-size/--mean/--std)"
            )
        c = load_onnx_classifier(spec)
        return Member(OnnxModule(c), c.transform(), c.classes, str(spec), None, c.preprocessing.input_size[0])
    name, weights = parse_member(spec)
    if weights is None:
        return name
    t = load_trained(name, weights)
    named = getattr(t.model, "class_names", None)  # names recorded with the weights, else matched by index
    return Member(t.model, t.transform(), list(named) if named else None, spec, t.run, t.in_chans)


def untrained_member(name: str, splits, in_chans: int) -> Member:
    from ..models.base import DataConfig

    notice(f"{name}: no weights given, so an untrained network is evaluated")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        t = load_trained(name, num_classes=len(splits.classes), in_chans=in_chans, quiet=True)
    cfg = t.preprocessing
    size = splits.input_size[-1] if splits.input_size else cfg.input_size[-1]
    pre = DataConfig((in_chans, size, size), tuple(splits.mean), tuple(splits.std), cfg.interpolation, 1.0)
    from ..data.transforms import eval_transform

    return Member(t.model, eval_transform(pre), list(splits.classes), name, None, in_chans)


def as_member(item) -> Member | str:
    if isinstance(item, Member):
        return item
    if isinstance(item, nn.Module):
        t = load_trained(item)
        return Member(t.model, t.transform(), None, t.name)
    return load_member(item)


def class_index(member: Member, classes: list[str]) -> torch.Tensor:
    """For each dataset class, the member's output index of that class."""
    own = member.classes
    if own is None or list(own) == list(classes):
        n = len(classes)
        outputs = getattr(member.model, "num_classes", n)
        if own is None and isinstance(outputs, int) and 0 < outputs < n:
            raise CnnlabError(
                f"{member.label} has {outputs} outputs but the data has {n} classes; evaluate it on "
                "data with its classes"
            )
        return torch.arange(n)
    missing = [c for c in classes if c not in own]
    if missing:
        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise CnnlabError(
            f"{member.label} was trained on other classes than the data's ({len(own)} classes; the "
            f"data's {shown} not among them); evaluate it on data with its classes"
        )
    return torch.tensor([own.index(c) for c in classes])


def check_same_outputs(members: list[Member], index: list[torch.Tensor]) -> None:
    outputs = {(tuple(m.classes) if m.classes else None, tuple(i.tolist())) for m, i in zip(members, index)}
    if len(outputs) > 1:
        raise CnnlabError("the ensemble's models have different classes (names or order); "
                          "evaluate them separately or retrain them on the same data")
