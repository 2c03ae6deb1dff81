"""The LR range test (cnnlab.engine.lr_finder) on problems whose good learning rates are known, and its
promise to leave everything as it found it."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.engine.lr_finder import RangeTestConfig, moving_average, range_test, sweep_lrs, zero_lag
from cnnlab.errors import CnnlabError


def _least_squares(scale: float, n: int = 256, d: int = 12):
    """X (n, d) with spread-out feature scales, y = X w + noise, and the largest eigenvalue of the
    Hessian of 0.5 * mean((X w - y)^2), which is X^T X / n."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, d, generator=g) * torch.linspace(0.2, 2.0, d) * scale
    y = x @ torch.randn(d, 1, generator=g) + 0.1 * torch.randn(n, 1, generator=g)
    lam = torch.linalg.eigvalsh((x.T @ x / n).double()).max().item()
    return torch.utils.data.TensorDataset(x, y), lam


def _half_mse(out, target):
    return 0.5 * ((out - target) ** 2).mean()


def _full_batch_test(scale: float):
    data, lam = _least_squares(scale)
    model = nn.Linear(data.tensors[0].shape[1], 1, bias=False)
    nn.init.zeros_(model.weight)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    result = range_test(model, optimizer, data, RangeTestConfig(batch_size=len(data)), loss_fn=_half_mse)
    return result, lam


@pytest.mark.parametrize("scale", [1.0, 10.0])  # 10: a Hessian 100x larger, good rates 100x smaller
def test_least_squares_suggestions_lie_in_the_stable_range_of_gradient_descent(scale):
    """Full-batch gradient descent on a quadratic is stable iff lr < 2 / lambda_max: below it no step
    raises the loss (L(w - lr g) - L(w) = -lr |g|^2 + lr^2 / 2 g^T H g <= 0), so the moving average
    cannot exceed 4x its minimum and the test cannot stop before lr passes 2 / lambda_max."""
    result, lam = _full_batch_test(scale)
    bound = 2 / lam
    assert result.stopped in ("diverged", "non-finite")
    assert result.lrs[-1] > bound  # the divergence was detected past the analytic bound, not before
    assert np.all(np.diff(result.losses[: int(np.searchsorted(result.lrs, bound))]) <= 1e-6)
    for rule, lr in result.suggestions.items():
        assert lr is not None, rule
        assert bound / 100 < lr < bound, (rule, lr, bound)  # stable, and not uselessly small


class _Net(nn.Module):
    """Convolution, BatchNorm (running statistics are buffers) and dropout (draws random numbers)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                                  nn.Dropout(0.3), nn.Linear(4 * 6 * 6, 3))

    def forward(self, x):
        return self.body(x)


def _snapshot(model, optimizer):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            [None if p.grad is None else p.grad.clone() for p in model.parameters()],
            {n: m.training for n, m in model.named_modules()},
            _tensors(optimizer.state_dict()), torch.get_rng_state(), np.random.get_state()[1].copy(),
            random.getstate())


def _tensors(obj):
    """A structure with every tensor replaced by its bytes (for exact comparison)."""
    if isinstance(obj, torch.Tensor):
        return (str(obj.dtype), tuple(obj.shape), obj.detach().cpu().numpy().tobytes())
    if isinstance(obj, dict):
        return {k: _tensors(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_tensors(v) for v in obj]
    return obj


def test_restores_weights_buffers_modes_gradients_optimizer_and_generators_bitwise():
    torch.manual_seed(0)
    model = _Net()
    x, y = torch.randn(40, 1, 8, 8), torch.randint(0, 3, (40,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):  # an optimizer with state (moments, step counts) and gradients left on the params
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    model.eval()  # the test trains; the mode must come back
    before = _snapshot(model, optimizer)
    weights = [p.detach().clone() for p in model.parameters()]
    data = torch.utils.data.TensorDataset(x, y)
    result = range_test(model, optimizer, data, RangeTestConfig(steps=30, batch_size=8))
    assert len(result.lrs) > 5
    after = _snapshot(model, optimizer)
    for key in before[0]:
        assert torch.equal(before[0][key], after[0][key]), key
    assert all(torch.equal(a, b) for a, b in zip(before[1], after[1]))
    assert before[2] == after[2] and not model.training
    assert before[3] == after[3]
    assert torch.equal(before[4], after[4]) and np.array_equal(before[5], after[5]) and before[6] == after[6]
    # the parameters are the same objects the optimizer holds (restored in place, not replaced)
    assert all(p is q for p, q in zip(model.parameters(), optimizer.param_groups[0]["params"]))
    assert all(torch.equal(w, p) for w, p in zip(weights, model.parameters()))


def test_group_ratios_are_kept_and_restored():
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 2))
    groups = [{"params": model[0].parameters(), "lr": 0.1}, {"params": model[1].parameters()}]
    optimizer = torch.optim.SGD(groups, lr=1.0)
    seen = []

    def loss_fn(out, target):
        seen.append([g["lr"] for g in optimizer.param_groups])
        return nn.functional.cross_entropy(out, target)

    data = torch.utils.data.TensorDataset(torch.randn(16, 3), torch.randint(0, 2, (16,)))
    range_test(model, optimizer, data, RangeTestConfig(steps=12, end_lr=1e-3, batch_size=16), loss_fn=loss_fn)
    expected = sweep_lrs(1e-7, 1e-3, 12)
    assert [s[1] for s in seen] == pytest.approx(expected.tolist(), rel=1e-12)
    assert [s[0] for s in seen] == pytest.approx((0.1 * expected).tolist(), rel=1e-12)
    assert [g["lr"] for g in optimizer.param_groups] == [0.1, 1.0]


def test_a_non_finite_loss_stops_the_test():
    data, lam = _least_squares(1.0)
    model = nn.Linear(data.tensors[0].shape[1], 1, bias=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    config = RangeTestConfig(batch_size=len(data), end_lr=1e6, diverge=1e300)  # only overflow can stop it
    result = range_test(model, optimizer, data, config, loss_fn=_half_mse)
    assert result.stopped == "non-finite"
    assert not math.isfinite(result.losses[-1]) and len(result.smoothed) == len(result.losses) - 1
    assert all(math.isfinite(v) for v in model.weight.detach().flatten().tolist())


def test_no_descent_gives_no_suggestion_and_a_one_line_error():
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    data = torch.utils.data.TensorDataset(torch.randn(8, 2), torch.randint(0, 2, (8,)))
    result = range_test(model, optimizer, data, RangeTestConfig(steps=20, batch_size=8),
                        loss_fn=lambda out, t: 0.0 * out.sum() + 1.0)  # a loss nothing can lower
    assert result.suggestions == {"steepest": None, "min/10": None}
    with pytest.raises(CnnlabError, match="no descent") as info:
        result.suggest("steepest")
    assert "\n" not in str(info.value)


def test_smoothing_is_bias_corrected_and_the_zero_lag_curve_has_no_delay():
    assert moving_average([3.0, 3.0, 3.0], 0.9).tolist() == pytest.approx([3.0] * 3)  # no pull towards 0
    step = np.r_[np.full(50, 2.0), np.full(50, 1.0)]  # the loss drops at step 50
    lagging, centred = moving_average(step, 0.9), zero_lag(step, 0.9)
    half = lambda c: int(np.argmax(c < 1.5))  # noqa: E731 - where the curve passes half-way
    assert half(lagging) >= 55 and abs(half(centred) - 50) <= 1


@pytest.mark.parametrize("bad", [{"end_lr": 1e-8}, {"steps": 3}, {"smoothing": 1.0}, {"diverge": 1.0},
                                 {"start_lr": float("nan")}])
def test_bad_settings_are_one_line_errors(bad):
    with pytest.raises(CnnlabError) as info:
        RangeTestConfig(**bad).check()
    assert "\n" not in str(info.value)
