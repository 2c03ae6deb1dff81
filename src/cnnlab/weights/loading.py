"""Reading, converting and writing checkpoints.

``weights=`` accepts a cnnlab checkpoint (``.safetensors`` written by :func:`save_weights`, or a
run folder holding ``best.safetensors``/``last.safetensors``), or a torchvision / timm state_dict
(``.pth``, ``.pt``, ``.bin``, ``.safetensors``) of the same architecture, or a pretrained tag of the
weights catalogue (``"imagenet"``, ``"imagenet1k_v2"``, ...; :mod:`cnnlab.weights.catalogue`), fetched
once into the cache (:mod:`cnnlab.weights.hub`). A tag wins over a file of the same name in the
current folder; write ``./imagenet`` for the file.

Safety: pickles are read with ``torch.load(..., weights_only=True)``, so arbitrary objects are never
unpickled. Loading is strict: a missing, unexpected or misshapen tensor is an error, except for the
classifier, which is re-initialised with a notice when the class count differs.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import CheckpointError, CnnlabError
from ..utils.io import atomic_path
from ..utils.log import notice
from .meta import WeightsInfo, read_classes, read_preprocessing

_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module")
_PREFIXES = ("module.", "_orig_mod.")
RUN_WEIGHT_FILES = ("best.safetensors", "last.safetensors")


def resolve_checkpoint_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.is_dir():
        for name in RUN_WEIGHT_FILES:
            if (p / name).is_file():
                return p / name
        raise CheckpointError(f"{p} is a folder without {' or '.join(RUN_WEIGHT_FILES)}; "
                              "give a checkpoint file")
    if not p.exists():
        raise CheckpointError(f"checkpoint {str(p)!r} does not exist")
    if not p.is_file():
        raise CheckpointError(f"checkpoint {str(p)!r} is not a regular file")
    return p


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Return (state_dict, metadata) from a file, refusing anything that is not a state_dict."""
    p = resolve_checkpoint_path(path)
    if p.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {p} is empty")
    if p.suffix == ".safetensors":
        return _read_safetensors(p)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise CheckpointError(
                f"{p} holds Python objects, not just tensors; cnnlab never unpickles arbitrary objects "
                "(save the model's state_dict instead)"
            ) from None
        raise CheckpointError(f"cannot read {p}: the file is truncated or corrupt ({first})") from None
    except Exception as exc:  # a damaged pickle can fail anywhere in the unpickler (KeyError, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(f"cannot read {p}: the file is truncated or corrupt "
                              f"({type(exc).__name__}: {first[:120]})") from None
    return _as_state_dict(obj, p), {}


def _read_safetensors(p: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(p), framework="pt") as fh:
            meta = dict(fh.metadata() or {})
            sd = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"cannot read {p}: the file is truncated or corrupt ({exc})") from None
    return sd, meta


def _as_state_dict(obj, p: Path) -> dict[str, torch.Tensor]:
    for _ in range(3):  # unwrap {"state_dict": {...}} / {"model": {...}} containers
        if isinstance(obj, Mapping) and not _all_tensors(obj):
            inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping) or not obj or not _all_tensors(obj):
        raise CheckpointError(f"{p} is not a state_dict (a mapping of parameter names to tensors)")
    return dict(obj)


def _all_tensors(obj: Mapping) -> bool:
    return all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def strip_prefixes(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        for pre in _PREFIXES:
            while k.startswith(pre):
                k = k[len(pre):]
        out[k] = v
    return out


@dataclass
class Checkpoint:
    """A state_dict with its metadata (see :mod:`cnnlab.weights.meta`) and where it came from."""

    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, str] = field(default_factory=dict)
    source: str = "state_dict"


def read_weights(weights, entry=None) -> Checkpoint:
    """``weights`` (a path, a run folder, a pretrained tag of ``entry``, a state_dict or a
    :class:`Checkpoint`) read into memory, not yet converted or loaded."""
    if isinstance(weights, Checkpoint):
        return weights
    name = entry.name if entry is not None else "the model"
    if isinstance(weights, str) and entry is not None:
        tagged = _tagged(weights, entry)
        if tagged is not None:
            return tagged
    if isinstance(weights, str | os.PathLike):
        text = os.fspath(weights)
        bare = "." not in Path(text).name and "/" not in text
        if isinstance(weights, str) and not Path(text).exists() and bare:
            from .catalogue import unknown_tag_message

            if entry is None:
                raise CnnlabError(f"unknown weights {text!r} for {name}: give a checkpoint file or run "
                                  "folder")
            raise CnnlabError(unknown_tag_message(entry.name, text))
        path = resolve_checkpoint_path(text)
        sd, meta = read_checkpoint(path)
        return Checkpoint(sd, meta, str(path))
    if isinstance(weights, Mapping):
        if not weights or not _all_tensors(weights):
            raise CnnlabError("weights given as a mapping must be a state_dict (parameter names to tensors)")
        return Checkpoint(dict(weights))
    raise CnnlabError(f"weights must be a checkpoint path, a run folder or a pretrained tag, "
                      f"got {type(weights).__name__}")


def _tagged(tag: str, entry) -> Checkpoint | None:
    """A pretrained tag of the catalogue (downloaded once into the cache); ``None`` if it is not one."""
    from .catalogue import catalogue

    found = catalogue().find(entry.name, tag)
    if found is None:
        return None
    from .hub import weights_checkpoint

    return weights_checkpoint(found)


def describe_weights(ckpt: Checkpoint, entry) -> WeightsInfo:
    """What ``ckpt`` says about the model it fits: its metadata, else the shapes of its tensors."""
    meta = ckpt.metadata
    classes = read_classes(meta)
    preprocessing = read_preprocessing(meta, _default_cfg(entry))
    num_classes = int(meta["num_classes"]) if str(meta.get("num_classes", "")).isdigit() else None
    in_chans = preprocessing.input_size[0] if preprocessing else None
    if num_classes is None or in_chans is None:
        rows, chans = _probe_shapes(ckpt.state_dict, entry)
        num_classes = rows if num_classes is None else num_classes
        in_chans = chans if in_chans is None else in_chans
    if classes is not None and num_classes is not None and len(classes) != num_classes:
        classes = None
    return WeightsInfo(ckpt.source, meta.get("model") or None, num_classes, in_chans, classes, preprocessing)


def _default_cfg(entry):
    try:
        with torch.device("meta"):
            return entry.builder(num_classes=1000, in_chans=3).default_cfg
    except Exception:  # a builder that cannot run on the meta device: no defaults to fill in
        return None


def _probe_shapes(sd: dict[str, torch.Tensor], entry) -> tuple[int | None, int | None]:
    """(classifier rows, input channels of the first convolution) of a state_dict, read through the
    model's own names (a meta-device model, so nothing is allocated)."""
    try:
        with torch.device("meta"):
            probe = entry.builder(num_classes=1000, in_chans=3)
    except Exception:
        return None, None
    convert = getattr(probe, "convert_state_dict", None)
    sd = strip_prefixes(sd)
    sd = convert(sd) if convert else sd
    head = getattr(probe, "classifier_path", "fc")
    matrices = [
        v for k, v in sd.items() if k.startswith(head + ".") and v.ndim == 2
    ]  # weight, or RBF centres
    weight = sd.get(f"{head}.weight", matrices[0] if matrices else None)
    rows = int(weight.shape[0]) if weight is not None and weight.ndim == 2 else None
    first = next((k for k, v in probe.state_dict().items() if v.ndim == 4), None)
    chans = int(sd[first].shape[1]) if first in sd and sd[first].ndim == 4 else None
    return rows, chans


def load_weights(model, weights, entry=None, strict: bool = True) -> Checkpoint:
    """Load ``weights`` (see :func:`read_weights`) into ``model`` in place; returns the checkpoint.

    The preprocessing and class names the checkpoint records travel with it: ``model.default_cfg``
    becomes its preprocessing (same input channels) and ``model.class_names`` its class names (same
    class count), as :func:`cnnlab.create_model` does."""
    name = getattr(model, "model_name", "") or type(model).__name__
    ckpt = read_weights(weights, entry)
    saved_for = ckpt.metadata.get("model")
    if saved_for and name and saved_for != name:
        raise CheckpointError(f"checkpoint is for model {saved_for!r}, not {name!r}; pick the matching "
                              "--model")
    sd = strip_prefixes(ckpt.state_dict)
    convert = getattr(model, "convert_state_dict", None)
    if convert is not None:
        sd = convert(sd)
    _check_finite(sd, ckpt.source)
    _load_into(model, sd, name, strict)
    _adopt_metadata(model, ckpt.metadata)
    return ckpt


def _adopt_metadata(model, meta: dict[str, str]) -> None:
    own = getattr(model, "default_cfg", None)
    pre = read_preprocessing(meta, own)
    if pre is not None and own is not None and pre.input_size[0] == own.input_size[0]:
        model.default_cfg = pre
    classes = read_classes(meta)
    if classes is not None and len(classes) == getattr(model, "num_classes", None):
        model.class_names = classes


def _check_finite(sd: dict[str, torch.Tensor], source: str) -> None:
    bad = [k for k, v in sd.items()
           if v.is_floating_point() and v.numel() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"{source} holds NaN or infinite values in {len(bad)} tensor(s) "
                              f"(e.g. {bad[0]}); "
                              "these weights cannot be used: take an earlier checkpoint")


def _load_into(model, sd: dict[str, torch.Tensor], name: str, strict: bool) -> None:
    own = model.state_dict()
    head = getattr(model, "classifier_path", None)
    head_keys = {k for k in own if head and k.startswith(head + ".")}
    ckpt_head = {k for k in sd if head and k.startswith(head + ".")}
    mismatched = [k for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    head_note = None
    if head_keys != ckpt_head or any(k in head_keys for k in mismatched):
        if ckpt_head:
            head_note = (f"{name}: checkpoint head has {_class_count(sd, ckpt_head)} classes, model has "
                         f"{getattr(model, 'num_classes', '?')}; the classifier is re-initialised")
        else:
            head_note = (f"{name}: checkpoint has no classifier (a feature extractor); the classifier keeps "
                         "its fresh initialisation")
        sd = {k: v for k, v in sd.items() if k not in ckpt_head}
        sd.update({k: own[k] for k in head_keys})
        mismatched = [k for k in mismatched if k not in head_keys]
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    if strict and (missing or unexpected or mismatched):
        raise CheckpointError(_mismatch_message(name, missing, unexpected, mismatched, sd, own))
    if head_note:  # only once the rest fits: a file of another architecture gets the one error line alone
        notice(head_note)
    sd = {k: v for k, v in sd.items() if k in own and k not in mismatched}
    model.load_state_dict(sd, strict=False)


def _class_count(sd, keys) -> int | str:
    weights = [sd[k] for k in sorted(keys) if k.endswith("weight") and sd[k].ndim >= 2]
    return weights[-1].shape[0] if weights else "?"


def _mismatch_message(name, missing, unexpected, mismatched, sd, own) -> str:
    parts = []
    if mismatched:
        k = mismatched[0]
        parts.append(f"{len(mismatched)} tensors of another shape (e.g. {k}: {tuple(sd[k].shape)} vs "
                     f"{tuple(own[k].shape)})")
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    return f"checkpoint does not fit {name}: " + "; ".join(parts) + " - is it another architecture?"


def save_weights(model, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> Path:
    """Write ``model``'s state_dict as safetensors, atomically, with cnnlab metadata."""
    from safetensors.torch import save_file

    meta = {"format": "cnnlab", "model": getattr(model, "model_name", ""),
            "num_classes": str(getattr(model, "num_classes", ""))}
    meta.update({k: str(v) for k, v in (metadata or {}).items()})
    sd = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    sd = _dedupe_shared(sd)
    with atomic_path(path) as tmp:
        save_file(sd, str(tmp), metadata=meta)
    return Path(path)


def _dedupe_shared(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors that share memory; give each its own copy."""
    seen: set[int] = set()
    out = {}
    for k, v in sd.items():
        ptr = v.untyped_storage().data_ptr() if v.numel() else -1
        out[k] = v.clone() if ptr in seen else v
        if ptr != -1:
            seen.add(ptr)
    return out
