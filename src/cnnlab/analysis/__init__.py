"""Model analysis: MACs/FLOPs, shapes, receptive fields, memory and the convolution cost calculator.

``profile`` and ``receptive_field`` run the model on fake tensors (no compute, no memory) and leave
it untouched; ``receptive_field_gradient`` measures a field by backpropagation as a cross-check;
``training_memory`` estimates the bytes of a training step; :mod:`.cost` is the layer calculator.
"""

from . import cost
from .memory import MemoryEstimate, training_memory
from .profile import LayerRow, Profile, profile
from .receptive_field import RF, MeasuredRF, receptive_field, receptive_field_gradient

__all__ = ["RF", "LayerRow", "MeasuredRF", "MemoryEstimate", "Profile", "cost", "profile", "receptive_field",
           "receptive_field_gradient", "training_memory"]
