"""cnnlab: convolutional networks for image classification.

Models (every one built by name, one contract)::

    import cnnlab
    model = cnnlab.create_model("resnet50", num_classes=10)
    cnnlab.list_models("resnet*")

Workflows, each a function and a ``cnnlab`` command (the settings are a config dataclass; keyword
arguments override its fields):

===========================  =======================================================================
``cnnlab.train``             train a model on a dataset into a run folder (exact resume, DDP)
``cnnlab.finetune``          transfer learning from trained weights (small / medium / large regimes)
``cnnlab.evaluate``          accuracy of a model or an ensemble, with test-time views
``cnnlab.predict``           classify images with a trained model (or an exported ONNX file)
``cnnlab.export``            ONNX / TorchScript / torch.export file with metadata, parity checked
``cnnlab.load_trained``      a trained model with its class names and preprocessing
``cnnlab.lr_find``           the learning-rate range test (suggestions and lr_find.png)
``cnnlab.interpret``         per-class metrics, most confused pairs, top losses, calibration of a run
``cnnlab.report``            one self-contained HTML page of a run
``cnnlab.download_weights``  fill the pretrained-weights cache for offline use
``cnnlab.import_weights``    check a weights file copied by hand and put it in the cache
===========================  =======================================================================

Building blocks, imported on first use: ``cnnlab.analysis`` (parameters, MACs, shapes, receptive
fields, memory, layer costs), ``cnnlab.data``, ``cnnlab.deploy`` (export formats, parity, onnxruntime),
``cnnlab.engine`` (the training loop), ``cnnlab.transfer``
(freezing, feature caches), ``cnnlab.weights`` (checkpoints), ``cnnlab.viz`` (pictures),
``cnnlab.scratch`` (the NumPy engine).
"""

from __future__ import annotations

import importlib

from .errors import CnnlabError
from .registry import create_model, list_models, native_model

__version__ = "0.1.0"

# Workflows and subpackages are imported on first use so that ``import cnnlab`` stays light.
_WORKFLOWS = {
    "train": ("cnnlab.workflows.train", "train"),
    "finetune": ("cnnlab.workflows.finetune", "finetune"),
    "evaluate": ("cnnlab.workflows.evaluate", "evaluate"),
    "predict": ("cnnlab.workflows.predict", "predict"),
    "export": ("cnnlab.workflows.export", "export"),
    "load_trained": ("cnnlab.workflows.trained", "load_trained"),
    "lr_find": ("cnnlab.workflows.lr_find", "lr_find"),
    "interpret": ("cnnlab.workflows.interpret", "interpret"),
    "report": ("cnnlab.workflows.report", "report"),
    "download_weights": ("cnnlab.weights.hub", "download_weights"),
    "import_weights": ("cnnlab.weights.hub", "import_weights"),
}
_SUBPACKAGES = (
    "analysis",
    "data",
    "deploy",
    "engine",
    "models",
    "scratch",
    "transfer",
    "viz",
    "weights",
    "workflows",
)

__all__ = [
    "CnnlabError",
    "create_model",
    "list_models",
    "native_model",
    *_WORKFLOWS,
    *_SUBPACKAGES,
    "__version__",
]


def __getattr__(name: str):
    if name in _WORKFLOWS:
        module, attr = _WORKFLOWS[name]
        return getattr(importlib.import_module(module), attr)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
