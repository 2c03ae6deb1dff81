"""Training memory: parameter/optimizer arithmetic and activations against a real autograd count."""

from __future__ import annotations

import pytest
import torch
from torch.autograd.graph import saved_tensors_hooks

import cnnlab
from cnnlab.analysis import training_memory
from cnnlab.errors import CnnlabError


def real_saved_bytes(model, x) -> int:
    storages = {}

    def pack(t):
        base = t._base if t._base is not None else t
        if not isinstance(base, torch.nn.Parameter):
            storages[base.untyped_storage().data_ptr()] = base.untyped_storage().nbytes()
        return t

    model.train()
    with saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return sum(storages.values())


def test_activations_match_real_autograd():
    model = cnnlab.create_model("lenet5_relu", num_classes=10, in_chans=1)
    est = training_memory(model, (1, 32, 32), batch_size=4, optimizer="adam")
    assert est.activations == real_saved_bytes(model, torch.randn(4, 1, 32, 32))
    params = 61_706 * 4
    assert (est.parameters, est.gradients, est.optimizer_state) == (params, params, 2 * params)
    assert est.total == 4 * params + est.activations


def test_scales_with_batch_and_frozen_params():
    model = cnnlab.create_model("lenet5_relu", num_classes=10, in_chans=1)
    one = training_memory(model, (1, 32, 32), batch_size=1)
    eight = training_memory(model, (1, 32, 32), batch_size=8)
    assert eight.activations == 8 * one.activations
    for p in model.features.parameters():
        p.requires_grad_(False)
    frozen = training_memory(model, (1, 32, 32), batch_size=1, optimizer="sgd")
    assert frozen.gradients == frozen.optimizer_state == (10_164 + 850) * 4


def test_unknown_optimizer():
    model = cnnlab.create_model("lenet5_relu", num_classes=10, in_chans=1)
    with pytest.raises(CnnlabError, match="unknown optimizer 'lbfgs2'"):
        training_memory(model, (1, 32, 32), 1, optimizer="lbfgs2")
