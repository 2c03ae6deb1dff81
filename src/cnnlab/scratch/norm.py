"""Batch normalisation (Ioffe and Szegedy 2015, arXiv:1502.03167) for (N, C) / (N, C, L) and
(N, C, H, W) inputs.

Training: normalise with the batch mean and the biased batch variance over every axis but the
channel axis, then y = gamma * x_hat + beta. The running statistics follow torch's convention:
``running = (1 - momentum) * running + momentum * batch_stat`` with momentum = 0.1 and the *unbiased*
batch variance (times m / (m - 1), m = values per channel). Evaluation uses the running statistics.
"""

from __future__ import annotations

import numpy as np

from .base import Layer, Param


class _BatchNorm(Layer):
    expected_ndim: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, dtype=np.float32) -> None:
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Param(np.ones(num_features, dtype))
        self.bias = Param(np.zeros(num_features, dtype))
        self.running_mean = np.zeros(num_features, dtype)
        self.running_var = np.ones(num_features, dtype)

    def buffers(self) -> dict[str, np.ndarray]:
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def _shape(self, x: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if x.ndim not in self.expected_ndim:
            raise ValueError(f"{type(self).__name__} expects {self.expected_ndim}-D input, got {x.shape}")
        axes = (0,) + tuple(range(2, x.ndim))
        return axes, (1, -1) + (1,) * (x.ndim - 2)

    def forward(self, x: np.ndarray) -> np.ndarray:
        axes, bshape = self._shape(x)
        if self.training:
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            m = x.size // self.num_features
            mom = self.momentum
            self.running_mean[...] = (1 - mom) * self.running_mean + mom * mean
            self.running_var[...] = (1 - mom) * self.running_var + mom * var * m / max(m - 1, 1)
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = 1 / np.sqrt(var + self.eps)
        x_hat = (x - mean.reshape(bshape)) * inv_std.reshape(bshape)
        self._cache = (x_hat, inv_std, axes, bshape, self.training)
        return x_hat * self.weight.data.reshape(bshape) + self.bias.data.reshape(bshape)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x_hat, inv_std, axes, bshape, training = self._cache
        self.weight.grad = (dout * x_hat).sum(axis=axes)
        self.bias.grad = dout.sum(axis=axes)
        dx_hat = dout * self.weight.data.reshape(bshape)
        if not training:  # the statistics are constants
            return dx_hat * inv_std.reshape(bshape)
        # the batch mean and variance depend on x: subtract their share of the gradient
        m = x_hat.size // self.num_features
        mean_dx_hat = dx_hat.sum(axis=axes).reshape(bshape) / m
        mean_dx_hat_xhat = (dx_hat * x_hat).sum(axis=axes).reshape(bshape) / m
        return (dx_hat - mean_dx_hat - x_hat * mean_dx_hat_xhat) * inv_std.reshape(bshape)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.num_features})"


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L): statistics per channel C."""

    expected_ndim = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W): statistics per channel C over N, H and W."""

    expected_ndim = (4,)
