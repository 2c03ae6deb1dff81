"""The two small types every scratch layer is built from: :class:`Param` and :class:`Layer`."""

from __future__ import annotations

import numpy as np


class Param:
    """A trainable array and its gradient (same shape and dtype).

    ``backward`` overwrites ``grad`` (no accumulation across calls): one forward, one backward, one
    optimizer step.
    """

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.grad = np.zeros_like(data)

    def __repr__(self) -> str:
        return f"Param(shape={self.data.shape}, dtype={self.data.dtype})"


class Layer:
    """A differentiable function of its input.

    ``forward(x)`` returns the output and caches what ``backward`` needs; ``backward(dout)`` takes
    dL/d(output), fills ``p.grad`` for every parameter and returns dL/d(input).
    """

    training: bool = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def named_params(self) -> dict[str, Param]:
        """Trainable parameters by attribute name (torch's names: ``weight``, ``bias``)."""
        return {k: v for k, v in vars(self).items() if isinstance(v, Param)}

    def buffers(self) -> dict[str, np.ndarray]:
        """Non-trained state saved with the model (BatchNorm's running statistics)."""
        return {}

    def macs(self) -> int:
        """Multiply-accumulates of the last forward call (0 for layers that do not multiply)."""
        return 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def uniform(rng: np.random.Generator, shape: tuple[int, ...], bound: float, dtype) -> np.ndarray:
    return rng.uniform(-bound, bound, size=shape).astype(dtype)
