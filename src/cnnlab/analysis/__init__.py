"""Model analysis: MACs/FLOPs, shapes, receptive fields, memory and the convolution cost calculator.

``profile`` and ``receptive_field`` run the model on meta tensors (no compute, no memory) and leave
it untouched; ``receptive_field_gradient`` measures a field by backpropagation as a cross-check;
``training_memory`` estimates the bytes of a training step; :mod:`.cost` is the layer calculator
(plain arithmetic: importing it does not import torch, hence the lazy attributes below).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "LayerRow": "profiler", "Profile": "profiler", "profile": "profiler",
    "RF": "receptive_fields", "MeasuredRF": "receptive_fields", "receptive_field": "receptive_fields",
    "receptive_field_gradient": "receptive_fields",
    "MemoryEstimate": "memory", "training_memory": "memory",
}

__all__ = ["cost", *_EXPORTS]


def __getattr__(name: str):
    if name == "cost":
        return importlib.import_module(".cost", __name__)
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
