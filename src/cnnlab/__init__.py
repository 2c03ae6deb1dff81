"""cnnlab: convolutional networks for image classification.

The public API is small and explicit::

    import cnnlab
    model = cnnlab.create_model("resnet50", num_classes=10)
    cnnlab.list_models("resnet*")
"""

from .errors import CnnlabError
from .registry import create_model, list_models, native_model

__version__ = "0.1.0"

__all__ = ["CnnlabError", "create_model", "list_models", "native_model", "__version__"]
