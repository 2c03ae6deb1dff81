"""BatchNorm folded into the convolution before it, for export.

In eval mode a BatchNorm is an affine map per channel, so ``bn(conv(x))`` equals one convolution with
rescaled weights and a new bias (Ioffe & Szegedy 2015, section 3.2: at inference "the normalization is
simply a linear transform"). Folding removes a pass over every feature map.

Which BatchNorm follows which convolution is found by running the model once on an example input and
watching every torch call (a ``TorchFunctionMode``): a pair is folded when the BatchNorm's input is a
Conv2d's output and nothing else reads that output. This needs no symbolic tracing, so models with
shape-dependent Python (Swin's window padding, say) fold too; a module called more than once per
forward is left alone.
"""

from __future__ import annotations

import copy
from collections import Counter

import torch
from torch import nn
from torch.overrides import TorchFunctionMode


class _UseCounter(TorchFunctionMode):
    """Counts how often each tensor (by id) is an argument of a torch call that computes a tensor
    (``x.dim()``, ``x.size()`` read only metadata and do not count); keeps the tensors alive so that
    ids are not reused during the run."""

    def __init__(self):
        super().__init__()
        self.uses: Counter = Counter()
        self.alive: list = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.alive.append(out)
        if not any(isinstance(t, torch.Tensor) for t in (out if isinstance(out, list | tuple) else (out,))):
            return out
        for value in [*args, *kwargs.values()]:
            for t in value if isinstance(value, list | tuple) else (value,):
                if isinstance(t, torch.Tensor):
                    self.uses[id(t)] += 1
        return out


def foldable_pairs(model: nn.Module, example: torch.Tensor) -> list[tuple[str, str]]:
    """(conv name, batchnorm name) pairs where the BatchNorm reads only that convolution's output."""
    outputs, inputs, calls = {}, {}, Counter()
    names = {m: n for n, m in model.named_modules()}

    def on_conv(module, args, out):
        calls[module] += 1
        outputs[id(out)] = module

    def on_bn(module, args, out):
        calls[module] += 1
        inputs[module] = id(args[0])

    hooks = [m.register_forward_hook(on_conv) for m in model.modules() if type(m) is nn.Conv2d]
    hooks += [m.register_forward_hook(on_bn) for m in model.modules() if type(m) is nn.BatchNorm2d]
    try:
        with torch.no_grad(), _UseCounter() as counter:
            model(example)
    finally:
        for h in hooks:
            h.remove()
    pairs = []
    for bn, tensor_id in inputs.items():
        conv = outputs.get(tensor_id)
        if conv is not None and calls[conv] == 1 and calls[bn] == 1 and counter.uses[tensor_id] == 1:
            pairs.append((names[conv], names[bn]))
    return pairs


def fold_batchnorm(model: nn.Module, example: torch.Tensor) -> tuple[nn.Module, int]:
    """(an eval-mode copy of ``model`` with each foldable Conv2d -> BatchNorm2d pair folded and the
    BatchNorm replaced by ``nn.Identity``, number folded). ``model`` itself is not changed."""
    model = copy.deepcopy(model).eval()
    pairs = foldable_pairs(model, example)
    for conv_name, bn_name in pairs:
        conv, bn = model.get_submodule(conv_name), model.get_submodule(bn_name)
        fused = torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn)
        _set(model, conv_name, fused)
        _set(model, bn_name, nn.Identity())
    return model, len(pairs)


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)
