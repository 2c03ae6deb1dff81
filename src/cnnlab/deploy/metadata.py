"""What an exported file says about itself.

The keys are those of a cnnlab checkpoint (:mod:`cnnlab.weights.meta`: ``model``, ``num_classes``,
``classes``, ``preprocessing``, ``weights``) plus:

==================  ================================================================================
``weights_sha256``  SHA-256 of the weights file the model was loaded from (empty for an untrained model
                    or weights with no file, such as an in-memory state_dict)
``cnnlab_version``  the cnnlab version that wrote the file
``format``          onnx | torchscript | exported
``precision``       fp32 | fp16 | int8
``batch``           ``dynamic`` or the fixed batch size
``temperature``     the run's saved softmax temperature (``cnnlab interpret --save-temperature``), 1 if none
``bn_folded``       how many BatchNorm layers were folded into their convolutions
==================  ================================================================================

All values are strings: ONNX ``metadata_props``, a ``cnnlab.json`` extra file in TorchScript and
``torch.export`` archives.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import CnnlabError
from ..weights.meta import weights_metadata

EXTRA_FILE = "cnnlab.json"  # the metadata's name inside TorchScript and torch.export archives


def export_metadata(
    trained, *, fmt: str, precision: str, batch: int | None, bn_folded: int
) -> dict[str, str]:
    """The metadata of an export of ``trained`` (a :class:`~cnnlab.workflows.trained.Trained`)."""
    from .. import __version__

    return weights_metadata(
        trained.classes,
        trained.preprocessing,
        model=trained.name,
        num_classes=len(trained.classes),
        weights=trained.weights or "",
        weights_sha256=weights_sha256(trained.weights, trained.name),
        cnnlab_version=__version__,
        format=fmt,
        precision=precision,
        batch="dynamic" if batch is None else batch,
        temperature=trained.temperature,
        bn_folded=bn_folded,
    )


def weights_sha256(weights: str | None, model: str) -> str:
    """SHA-256 of the file behind ``weights`` (a run folder, a checkpoint, a cached pretrained tag)."""
    from ..weights.cache import sha256_file
    from ..weights.hub import weights_path
    from ..weights.loading import resolve_checkpoint_path

    if not weights or weights == "state_dict":
        return ""
    try:
        if Path(weights).exists():
            path = resolve_checkpoint_path(weights)
        else:
            path = weights_path(f"{model}:{weights}")
    except (CnnlabError, OSError):
        return ""
    return sha256_file(path)[0]


def to_json(meta: dict[str, str]) -> str:
    return json.dumps(meta, indent=1, sort_keys=True)


def from_json(text: str | bytes, where: str | os.PathLike) -> dict[str, str]:
    """The metadata read back from an archive's extra file (``{}`` when there is none)."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CnnlabError(f"{where}: its {EXTRA_FILE} is not valid JSON") from None
    if not isinstance(data, dict):
        raise CnnlabError(f"{where}: its {EXTRA_FILE} is not a JSON object")
    return {str(k): str(v) for k, v in data.items()}
