"""Numerical gradient checks: every analytic backward against central differences, in float64.

For a layer f, draw a random R of f's output shape and let L = sum(f(x) * R). Then ``backward(R)``
gives dL/dx and dL/dw analytically; the numerical gradient perturbs one entry at a time,
(L(v + h) - L(v - h)) / 2h with h = 1e-6. The relative error of a tensor is
||analytic - numerical|| / (||analytic|| + ||numerical||); a correct float64 backward gives ~1e-9 or
less, so the check passes below 1e-6. Layers that draw random numbers (Dropout) carry ``rng``,
which is reseeded before every forward so all evaluations see the same mask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .activations import Dropout, LeakyReLU, ReLU, Sigmoid, Tanh
from .base import Layer, Param
from .layers import AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d
from .losses import L1Penalty, L2Penalty, SoftmaxCrossEntropy
from .model import Sequential
from .norm import BatchNorm1d, BatchNorm2d

TOLERANCE = 1e-6


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[np.random.Generator], Layer]
    input_shape: tuple[int, ...]
    distinct: bool = False  # inputs a shuffled grid (no near-ties for max pooling)


@dataclass(frozen=True)
class Result:
    case: str
    tensor: str  # "input" or a parameter name
    rel_error: float

    @property
    def ok(self) -> bool:
        return self.rel_error < TOLERANCE


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / scale) if scale > 0 else 0.0


def numerical_grad(loss: Callable[[], float], arr: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of ``loss()`` w.r.t. every entry of ``arr`` (perturbed in place)."""
    grad = np.zeros_like(arr)
    flat, gflat = arr.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = loss()
        flat[i] = old - h
        down = loss()
        flat[i] = old
        gflat[i] = (up - down) / (2 * h)
    return grad


def check_layer(layer: Layer, x: np.ndarray, rng: np.random.Generator, name: str = "") -> list[Result]:
    """Relative errors of dL/dx and of every parameter gradient of ``layer`` at ``x``."""
    seed = int(rng.integers(2**31))
    leaves = [m for _, m in layer.modules()] if isinstance(layer, Sequential) else [layer]
    random_layers = [m for m in leaves if hasattr(m, "rng")]

    def forward() -> np.ndarray:
        for i, m in enumerate(random_layers):
            m.rng = np.random.default_rng(seed + i)
        return layer.forward(x)

    r = rng.standard_normal(np.shape(forward()))
    dx = layer.backward(r)
    params = layer.named_params()
    analytic = {"input": dx, **{k: p.grad.copy() for k, p in params.items()}}
    arrays = {"input": x, **{k: p.data for k, p in params.items()}}
    loss = lambda: float((forward() * r).sum())  # noqa: E731
    return [Result(name, k, relative_error(analytic[k], numerical_grad(loss, arrays[k]))) for k in analytic]


class LossProbe(Layer):
    """Softmax cross-entropy as a layer from logits to the scalar loss (fixed random labels)."""

    def __init__(self, labels: np.ndarray) -> None:
        self.labels, self.loss = labels, SoftmaxCrossEntropy()

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.loss.forward(x, self.labels))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self.loss.backward()


class PenaltyProbe(Layer):
    """A weight penalty as a layer: output R(weight), input ignored (its gradient is zero)."""

    def __init__(self, penalty, weight: np.ndarray) -> None:
        self.penalty, self.weight = penalty, Param(weight)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        self.weight.grad = np.zeros_like(self.weight.data)
        return np.asarray(self.penalty([self.weight]))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.weight.grad = dout * self.weight.grad
        return np.zeros_like(self._x)


def _bn_eval(rng: np.random.Generator) -> Layer:
    bn = BatchNorm2d(3, dtype=np.float64)
    bn.running_mean[...] = rng.standard_normal(3)
    bn.running_var[...] = rng.uniform(0.5, 2.0, 3)
    bn.weight.data[...] = rng.uniform(0.5, 2.0, 3)
    bn.training = False
    return bn


def _small_net(rng: np.random.Generator) -> Layer:
    f64 = {"rng": rng, "dtype": np.float64}  # no conv bias: BN cancels it (its true gradient is 0)
    return Sequential(
        [
            Conv2d(2, 3, 3, padding=1, bias=False, **f64),
            BatchNorm2d(3, dtype=np.float64),
            ReLU(),
            MaxPool2d(2),
            Flatten(),
            Dropout(0.2, rng=rng),
            Linear(27, 4, **f64),
        ]
    )


def _away_from_zero(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.uniform(0.1, 1.0, shape) * rng.choice([-1.0, 1.0], shape)


F64 = np.float64
CASES = (
    Case("Conv2d 3->4 k3 p1", lambda r: Conv2d(3, 4, 3, padding=1, rng=r, dtype=F64), (2, 3, 7, 7)),
    Case(
        "Conv2d 4->6 k3 s2 p2 d2 g2",
        lambda r: Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2, rng=r, dtype=F64),
        (2, 4, 9, 8),
    ),
    Case("Linear 7->5", lambda r: Linear(7, 5, rng=r, dtype=F64), (3, 7)),
    Case("MaxPool2d k3 s2 p1", lambda r: MaxPool2d(3, 2, 1), (2, 3, 9, 9), distinct=True),
    Case("MaxPool2d k2", lambda r: MaxPool2d(2), (2, 2, 7, 6), distinct=True),
    Case("AvgPool2d k3 s2 p1", lambda r: AvgPool2d(3, 2, 1), (2, 3, 9, 9)),
    Case("ReLU", lambda r: ReLU(), (3, 4, 5), distinct=True),
    Case("LeakyReLU 0.1", lambda r: LeakyReLU(0.1), (3, 4, 5), distinct=True),
    Case("Sigmoid", lambda r: Sigmoid(), (3, 4, 5)),
    Case("Tanh", lambda r: Tanh(), (3, 4, 5)),
    Case("BatchNorm2d train", lambda r: BatchNorm2d(3, dtype=F64), (4, 3, 3, 3)),
    Case("BatchNorm2d eval", _bn_eval, (4, 3, 3, 3)),
    Case("BatchNorm1d train", lambda r: BatchNorm1d(5, dtype=F64), (6, 5)),
    Case("Dropout p=0.3", lambda r: Dropout(0.3), (4, 10)),
    Case("Flatten", lambda r: Flatten(), (2, 3, 2, 2)),
    Case("SoftmaxCrossEntropy", lambda r: LossProbe(r.integers(0, 5, 4)), (4, 5)),
    Case("L2Penalty", lambda r: PenaltyProbe(L2Penalty(0.3), r.standard_normal((3, 4))), (1,)),
    Case("L1Penalty", lambda r: PenaltyProbe(L1Penalty(0.3), _away_from_zero(r, (3, 4))), (1,)),
    Case("Sequential conv-bn-relu-pool-dropout-fc", _small_net, (3, 2, 6, 6)),
)


def _input(rng: np.random.Generator, shape: tuple[int, ...], distinct: bool) -> np.ndarray:
    if not distinct:
        return rng.standard_normal(shape)
    n = int(np.prod(shape))  # a shuffled grid spaced 0.01 apart, no entry within 0.005 of zero
    return (rng.permutation(n) - n / 2 + 0.5).reshape(shape) * 0.01


def run_all(seed: int = 0) -> list[Result]:
    """Check every case of :data:`CASES`; one :class:`Result` per checked tensor."""
    rng, results = np.random.default_rng(seed), []
    for case in CASES:
        layer = case.make(rng)
        results += check_layer(layer, _input(rng, case.input_shape, case.distinct), rng, case.name)
    return results
