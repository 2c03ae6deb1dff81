"""Optimizers, schedules and the L1 / L2 penalties."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cnnlab.engine.optim import (
    OPTIMIZERS,
    SCHEDULES,
    build_optimizer,
    build_schedule,
    l1_penalty,
    param_groups,
)
from cnnlab.errors import CnnlabError


def _regression(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 5, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0]) + 0.1
    return x, y


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_each_optimizer_lowers_a_loss(name):
    torch.manual_seed(0)
    model = nn.Linear(5, 1)
    x, y = _regression()
    opt = build_optimizer(param_groups(model, 0.0), name, lr=0.05 if name != "adagrad" else 0.3)
    first = None
    for _ in range(60):
        loss = nn.functional.mse_loss(model(x).squeeze(1), y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_each_schedule_runs_and_stays_in_range(name):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = build_schedule(opt, name, total_steps=100, warmup_steps=10)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert all(0 <= lr <= 0.1 + 1e-12 for lr in lrs)
    assert lrs[0] == pytest.approx(0.1 / 11)  # warmup starts at 1 / (warmup + 1)
    assert lrs[10] == pytest.approx(0.1 if name not in ("onecycle",) else 0.1 / 25)
    if name in ("cosine", "onecycle"):
        assert lrs[-1] < 0.01
    if name == "step":
        assert lrs[-1] == pytest.approx(0.1 * 0.1**2)  # 90 steps after warmup, decays every 30
    if name == "constant":
        assert lrs[-1] == pytest.approx(0.1)
    if name == "onecycle":
        assert max(lrs) == pytest.approx(0.1, rel=1e-3)


def test_schedule_state_is_one_number_and_resumes_exactly():
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = build_schedule(opt, "cosine", total_steps=50, warmup_steps=5)
    for _ in range(17):
        opt.step()
        sched.step()
    state = sched.state_dict()
    opt2 = torch.optim.SGD([p], lr=0.1)
    sched2 = build_schedule(opt2, "cosine", total_steps=50, warmup_steps=5)
    sched2.load_state_dict(state)
    opt2.param_groups[0]["lr"] = sched2.get_last_lr()[0]
    for _ in range(5):
        opt.step(), sched.step(), opt2.step(), sched2.step()
        assert opt.param_groups[0]["lr"] == opt2.param_groups[0]["lr"]


def test_l2_weight_decay_shrinks_weights_by_lr_times_decay():
    """Plain SGD with a zero data gradient: w <- w - lr * wd * w."""
    w = nn.Parameter(torch.tensor([1.0, -2.0, 4.0]))
    opt = build_optimizer([{"params": [w]}], "sgd", lr=0.1, weight_decay=0.5)
    (0.0 * w).sum().backward()
    opt.step()
    assert torch.allclose(w.detach(), torch.tensor([1.0, -2.0, 4.0]) * (1 - 0.1 * 0.5))


def test_adamw_decay_is_decoupled():
    w = nn.Parameter(torch.tensor([2.0]))
    opt = build_optimizer([{"params": [w]}], "adamw", lr=0.1, weight_decay=0.5)
    (0.0 * w).sum().backward()
    opt.step()
    assert w.item() == pytest.approx(2.0 * (1 - 0.1 * 0.5))


def test_l1_moves_each_weight_towards_zero_by_lr_times_l1():
    """The L1 term's gradient is l1 * sign(w): SGD moves every weight by lr * l1 towards zero."""
    w = nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    opt = build_optimizer([{"params": [w]}], "sgd", lr=0.1)
    (0.01 * l1_penalty(opt)).backward()
    opt.step()
    assert torch.allclose(w.detach(), torch.tensor([1.0 - 0.001, -2.0 + 0.001, 0.5 - 0.001]))


def test_norm_and_bias_excluded_from_decay_and_l1():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    groups = param_groups(model, 0.1, exclude_norm_bias=True)
    assert [len(g["params"]) for g in groups] == [1, 3]  # conv weight | conv bias, bn weight, bn bias
    assert groups[1]["weight_decay"] == 0.0 and groups[1]["l1"] is False
    opt = build_optimizer(groups, "sgd", lr=0.1, weight_decay=0.1)
    assert l1_penalty(opt).item() == pytest.approx(model[0].weight.abs().sum().item())


def test_frozen_parameters_are_not_optimised_and_group_lrs_are_kept():
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 2))
    model[0].weight.requires_grad_(False)
    assert sum(len(g["params"]) for g in param_groups(model, 0.0)) == 3
    opt = build_optimizer([{"params": model[0].parameters(), "lr": 1e-4}, {"params": model[1].parameters()}],
                          "adam", lr=1e-2)
    assert [g["lr"] for g in opt.param_groups] == [1e-4, 1e-2]
    assert math.isclose(build_schedule(opt, "constant", 10).get_last_lr()[0], 1e-4)


def test_unknown_names_are_one_line_errors():
    with pytest.raises(CnnlabError, match="unknown optimizer 'adamax'"):
        build_optimizer([{"params": [nn.Parameter(torch.zeros(1))]}], "adamax", lr=0.1)
    with pytest.raises(CnnlabError, match="unknown schedule"):
        build_schedule(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1), "poly", 10)
