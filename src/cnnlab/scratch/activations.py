"""Element-wise layers: ReLU, LeakyReLU, Sigmoid, Tanh and (inverted) Dropout."""

from __future__ import annotations

import numpy as np

from .base import Layer


class ReLU(Layer):
    """max(0, x); the gradient is 1 where x > 0 and 0 elsewhere (0 at x = 0, like torch)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._mask = x > 0
        return np.maximum(x, 0)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self._mask


class LeakyReLU(Layer):
    """x if x > 0 else slope * x (torch's default slope 0.01)."""

    def __init__(self, slope: float = 0.01) -> None:
        self.slope = slope

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._mask = x > 0
        return np.where(self._mask, x, self.slope * x)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return np.where(self._mask, dout, self.slope * dout)

    def __repr__(self) -> str:
        return f"LeakyReLU({self.slope})"


class Sigmoid(Layer):
    """s(x) = 1 / (1 + e^-x); ds/dx = s (1 - s). Computed without overflow for large |x|."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        e = np.exp(-np.abs(x))
        self._out = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return self._out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self._out * (1 - self._out)


class Tanh(Layer):
    """tanh(x); d tanh / dx = 1 - tanh^2."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._out = np.tanh(x)
        return self._out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * (1 - self._out * self._out)


class Dropout(Layer):
    """Inverted dropout: in training, zero each element with probability p and scale the survivors by
    1 / (1 - p), so that evaluation is the identity and the expected activation is unchanged."""

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None) -> None:
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability p={p} must be in [0, 1)")
        self.p = p
        self.rng = rng if rng is not None else np.random.default_rng()

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.training or self.p == 0:
            self._mask = None
            return x
        keep = self.rng.random(x.shape) >= self.p
        self._mask = keep.astype(x.dtype) / (1 - self.p)
        return x * self._mask

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout if self._mask is None else dout * self._mask

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"
