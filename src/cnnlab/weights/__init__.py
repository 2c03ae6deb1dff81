"""Weights: reading, converting, checking and writing checkpoints, and what they say about themselves.

* :mod:`~cnnlab.weights.loading` - read a checkpoint (cnnlab safetensors, a run folder, a torchvision or
  timm state_dict, a pretrained tag), convert its names, load it strictly; write one atomically;
* :mod:`~cnnlab.weights.meta` - the class names and preprocessing a checkpoint carries;
* :mod:`~cnnlab.weights.catalogue` - the pretrained weights each model loads, by tag (``"imagenet"``);
* :mod:`~cnnlab.weights.hub` - fetching a tag once into the cache, importing files, listing, removing
  (:mod:`~cnnlab.weights.download` checks the files, :mod:`~cnnlab.weights.cache` keeps them);
* :mod:`~cnnlab.weights.pretrained` - pretrained weights that install as Python packages.
"""

from .loading import (
    RUN_WEIGHT_FILES,
    Checkpoint,
    describe_weights,
    load_weights,
    read_checkpoint,
    read_weights,
    resolve_checkpoint_path,
    save_weights,
    strip_prefixes,
)
from .meta import WeightsInfo, default_class_names, imagenet_classes, weights_metadata

__all__ = ["RUN_WEIGHT_FILES", "Checkpoint", "WeightsInfo", "default_class_names", "describe_weights",
           "imagenet_classes", "load_weights", "read_checkpoint", "read_weights", "resolve_checkpoint_path",
           "save_weights", "strip_prefixes", "weights_metadata"]
