"""cnnlab: convolutional networks for image classification.

The public API is small and explicit::

    import cnnlab
    model = cnnlab.create_model("resnet50", num_classes=10)
    cnnlab.list_models("resnet*")
"""

from .errors import CnnlabError
from .registry import create_model, list_models, native_model

__version__ = "0.1.0"

__all__ = ["CnnlabError", "create_model", "list_models", "native_model", "train", "finetune", "predict",
           "evaluate", "__version__"]

# Workflows are imported on first use so that ``import cnnlab`` stays light (and torch-free).
_LAZY = {
    "train": ("cnnlab.workflows.train", "train"),
    "finetune": ("cnnlab.workflows.finetune", "finetune"),
    "predict": ("cnnlab.workflows.predict", "predict"),
    "evaluate": ("cnnlab.workflows.evaluate", "evaluate"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")
