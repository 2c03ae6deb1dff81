"""Training memory estimate: parameters, gradients, optimizer state and activations, in bytes.

Activations are the tensors autograd saves for the backward pass, measured in one training-mode
forward on meta tensors (``torch.autograd.graph.saved_tensors_hooks``; nothing is allocated). Each
saved storage is counted once (a ReLU output saved by the ReLU and by the next convolution, or a view
of it, counts once) and saved parameters are not activations. Not included: the allocator's
fragmentation, cuDNN workspaces, temporaries freed during the forward, and the backward's own
transient buffers, so the real peak is somewhat higher.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..errors import CnnlabError
from .fake_run import Probe, fake_forward

# Optimizer state per trainable parameter, in copies of the parameter.
OPTIMIZER_STATE = {
    "sgd": 1,  # momentum buffer (cnnlab trains with momentum)
    "sgd_plain": 0,  # momentum = 0
    "nesterov": 1,
    "rmsprop": 1,  # square average
    "adagrad": 1,  # sum of squares
    "adam": 2,  # first and second moments
    "adamw": 2,
    "lamb": 2,
    "none": 0,
}


@dataclass(frozen=True)
class MemoryEstimate:
    parameters: int
    gradients: int
    optimizer_state: int
    activations: int
    batch_size: int
    optimizer: str

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer_state + self.activations

    def to_dict(self) -> dict:
        return {**asdict(self), "total": self.total}


class _SavedBytes:
    """Pack hook that adds up distinct saved storages (parameters excluded)."""

    def __init__(self) -> None:
        self.bytes = 0
        self.seen: dict[int, torch.Tensor] = {}  # keep references so ids are not reused
        self.skip: set[int] = set()

    def pack(self, t: torch.Tensor):
        base = t._base if t._base is not None else t
        if id(base) not in self.seen and id(base) not in self.skip and not isinstance(base, nn.Parameter):
            self.seen[id(base)] = base
            if not base.requires_grad or base.grad_fn is not None:
                self.bytes += base.numel() * base.element_size()
        return t

    @staticmethod
    def unpack(t):
        return t


def activation_bytes(model: nn.Module, input_size: Sequence[int], batch_size: int = 1) -> int:
    """Bytes autograd saves for the backward of one training-mode forward pass."""
    made = {}

    def probe() -> Probe:
        made["saved"] = saved = _SavedBytes()
        return Probe(modes=[torch.autograd.graph.saved_tensors_hooks(saved.pack, saved.unpack)])

    fake_forward(model, input_size, batch_size, probe=probe, train=True, grad=True)
    return made["saved"].bytes


def training_memory(model: nn.Module, input_size: Sequence[int] = (3, 224, 224), batch_size: int = 32,
                    optimizer: str = "sgd") -> MemoryEstimate:
    """Bytes needed to train ``model`` with ``optimizer`` on batches of ``batch_size``."""
    key = optimizer.lower()
    if key not in OPTIMIZER_STATE:
        raise CnnlabError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZER_STATE)}")
    params = list({id(p): p for p in model.parameters()}.values())
    param_bytes = sum(p.numel() * p.element_size() for p in params)
    trainable = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    return MemoryEstimate(param_bytes, trainable, OPTIMIZER_STATE[key] * trainable,
                          activation_bytes(model, input_size, batch_size), batch_size, key)
