"""Every scratch optimizer: N steps on the same small net and data give torch.optim's parameters."""

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab import scratch as S

STEPS = 6
# (scratch class, scratch kwargs, torch class, torch kwargs); lr is given to both.
CASES = {
    "gd": (S.GD, {}, torch.optim.SGD, {}),
    "sgd_wd": (S.SGD, {"weight_decay": 0.01}, torch.optim.SGD, {"weight_decay": 0.01}),
    "momentum": (
        S.Momentum,
        {"momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
        torch.optim.SGD,
        {"momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
    ),
    "nesterov": (S.Nesterov, {"momentum": 0.8}, torch.optim.SGD, {"momentum": 0.8, "nesterov": True}),
    "adagrad": (
        S.AdaGrad,
        {"lr_decay": 0.05, "weight_decay": 0.01},
        torch.optim.Adagrad,
        {"lr_decay": 0.05, "weight_decay": 0.01},
    ),
    "rmsprop": (S.RMSprop, {}, torch.optim.RMSprop, {}),
    "rmsprop_centered_momentum": (
        S.RMSprop,
        {"centered": True, "momentum": 0.5, "weight_decay": 0.01},
        torch.optim.RMSprop,
        {"centered": True, "momentum": 0.5, "weight_decay": 0.01},
    ),
    "adam_l2": (
        S.Adam,
        {"betas": (0.8, 0.99), "weight_decay": 0.01},
        torch.optim.Adam,
        {"betas": (0.8, 0.99), "weight_decay": 0.01},
    ),
    "adamw": (S.AdamW, {"weight_decay": 0.05}, torch.optim.AdamW, {"weight_decay": 0.05}),
}


def small_nets(seed: int = 0):
    rng = np.random.default_rng(seed)
    ours = S.Sequential([S.Conv2d(2, 3, 3, padding=1, rng=rng, dtype=np.float64), S.Tanh(), S.MaxPool2d(2),
                         S.Flatten(), S.Linear(27, 4, rng=rng, dtype=np.float64)])
    theirs = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.MaxPool2d(2), nn.Flatten(),
                           nn.Linear(27, 4)).double()
    ours.layers["0"].bias.data[...] = rng.standard_normal(3) * 0.1
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    return ours, theirs


@pytest.mark.parametrize("name", sorted(CASES))
def test_optimizer_matches_torch(name):
    ours_cls, ours_kw, torch_cls, torch_kw = CASES[name]
    lr = 0.05
    ours, theirs = small_nets()
    opt, topt = ours_cls(ours.params(), lr=lr, **ours_kw), torch_cls(theirs.parameters(), lr=lr, **torch_kw)
    loss_fn, rng = S.SoftmaxCrossEntropy(), np.random.default_rng(1)
    for _ in range(STEPS):
        x, y = rng.standard_normal((5, 2, 6, 6)), rng.integers(0, 4, 5)
        loss_fn(ours.forward(x), y)
        ours.backward(loss_fn.backward())
        opt.step()
        topt.zero_grad()
        nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y)).backward()
        topt.step()
    ref = theirs.state_dict()
    for k, v in ours.state_dict().items():
        assert np.max(np.abs(v - ref[k].numpy())) <= 1e-10, k


def test_gd_asks_for_full_batches():
    assert S.GD.full_batch and not S.SGD.full_batch
