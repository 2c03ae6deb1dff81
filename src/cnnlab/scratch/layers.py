"""Convolution, pooling, fully connected and reshaping layers in NumPy.

Shapes follow torch: images are (N, C, H, W), a convolution weight is (OC, C / groups, kh, kw), a
linear weight is (out, in). Initialisation is He-uniform, U(+-sqrt(6 / fan_in)), for weights and zeros
for biases (torch uses U(+-1/sqrt(fan_in)) for both; tests copy weights, so this does not matter).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .base import Layer, Param, uniform
from .im2col import col2im, conv_output_size, im2col, patches


class Conv2d(Layer):
    """y = W * x + b as one GEMM per group: ``W (G, OC/G, K) @ im2col(x) (G, K, M)``.

    MACs = kw * kh * (C / groups) * OC * OW * OH * N.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, groups: int = 1, bias: bool = True,
                 rng: np.random.Generator | None = None, dtype=np.float32) -> None:
        if in_ch % groups or out_ch % groups:
            raise ValueError(f"groups={groups} must divide in_ch={in_ch} and out_ch={out_ch}")
        rng = rng if rng is not None else np.random.default_rng()
        self.in_ch, self.out_ch, self.kernel = in_ch, out_ch, kernel
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        fan_in = in_ch // groups * kernel * kernel
        self.weight = Param(
            uniform(rng, (out_ch, in_ch // groups, kernel, kernel), np.sqrt(6 / fan_in), dtype)
        )
        self.bias = Param(np.zeros(out_ch, dtype)) if bias else None
        self._cache = None

    def _geometry(self) -> tuple[int, int, int, int]:
        return self.kernel, self.stride, self.padding, self.dilation

    def forward(self, x: np.ndarray) -> np.ndarray:
        k, s, p, d = self._geometry()
        n, g = x.shape[0], self.groups
        cols = im2col(x, k, k, s, p, d)  # (K, M)
        kg, m = cols.shape[0] // g, cols.shape[1]
        w = self.weight.data.reshape(g, self.out_ch // g, kg)
        out = np.matmul(w, cols.reshape(g, kg, m)).reshape(self.out_ch, m)  # (OC, N*OH*OW)
        if self.bias is not None:
            out += self.bias.data[:, None]
        oh, ow = _out_hw(x.shape, k, s, p, d)
        self._cache = (x.shape, cols)
        return out.reshape(self.out_ch, n, oh, ow).transpose(1, 0, 2, 3)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x_shape, cols = self._cache
        k, s, p, d = self._geometry()
        g, m = self.groups, cols.shape[1]
        kg = cols.shape[0] // g
        dout2 = dout.transpose(1, 0, 2, 3).reshape(g, self.out_ch // g, m)  # (G, OC/G, M)
        self.weight.grad = np.matmul(dout2, cols.reshape(g, kg, m).transpose(0, 2, 1)).reshape(
            self.weight.data.shape)
        if self.bias is not None:
            self.bias.grad = dout2.sum(axis=2).reshape(-1)
        w = self.weight.data.reshape(g, self.out_ch // g, kg)
        dcols = np.matmul(w.transpose(0, 2, 1), dout2).reshape(g * kg, m)
        return col2im(dcols, x_shape, k, k, s, p, d)

    def macs(self) -> int:
        if self._cache is None:
            return 0
        (n, _, h, w), _ = self._cache
        oh, ow = _out_hw((n, 0, h, w), *self._geometry())
        return self.kernel * self.kernel * (self.in_ch // self.groups) * self.out_ch * ow * oh * n

    def __repr__(self) -> str:
        return (f"Conv2d({self.in_ch}, {self.out_ch}, kernel={self.kernel}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups})")


def _out_hw(x_shape, k, s, p, d) -> tuple[int, int]:
    return conv_output_size(x_shape[2], k, s, p, d), conv_output_size(x_shape[3], k, s, p, d)


class Linear(Layer):
    """y = x W^T + b for x of shape (N, in). MACs = in * out * N."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 rng: np.random.Generator | None = None, dtype=np.float32) -> None:
        rng = rng if rng is not None else np.random.default_rng()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Param(uniform(rng, (out_features, in_features), np.sqrt(6 / in_features), dtype))
        self.bias = Param(np.zeros(out_features, dtype)) if bias else None
        self._x = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        out = x @ self.weight.data.T
        return out + self.bias.data if self.bias is not None else out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.weight.grad = dout.T @ self._x
        if self.bias is not None:
            self.bias.grad = dout.sum(axis=0)
        return dout @ self.weight.data

    def macs(self) -> int:
        return 0 if self._x is None else self.in_features * self.out_features * self._x.shape[0]

    def __repr__(self) -> str:
        return f"Linear({self.in_features}, {self.out_features})"


class _Pool2d(Layer):
    """Pooling over the kernel x kernel windows of each channel (no ceil mode).

    Both directions loop over the k * k window offsets only: offset (i, j) of every window at once is
    a strided view of the padded input (see :func:`patches`), so each step is one vectorised operation.
    """

    pad_value = 0.0

    def __init__(self, kernel: int, stride: int | None = None, padding: int = 0) -> None:
        self.kernel, self.stride, self.padding = kernel, stride or kernel, padding
        self._cache = None

    def _offsets(self) -> list[tuple[int, int]]:
        return [(i, j) for i in range(self.kernel) for j in range(self.kernel)]

    def _windows(self, x: np.ndarray) -> np.ndarray:
        """(N, C, k, k, OH, OW) view: [..., i, j, y, x] is offset (i, j) of window (y, x)."""
        return patches(x, self.kernel, self.kernel, self.stride, self.padding, pad_value=self.pad_value)

    def _scatter(self, grad_at: Callable[[int], np.ndarray], x_shape, out_hw) -> np.ndarray:
        """dx = sum over offsets r of ``grad_at(r)`` (N, C, OH, OW) added at the pixels offset r reads."""
        (n, c, h, w), (oh, ow), s, p = x_shape, out_hw, self.stride, self.padding
        dxp = np.zeros((n, c, h + 2 * p, w + 2 * p), dtype=grad_at(0).dtype)
        for r, (i, j) in enumerate(self._offsets()):
            dxp[:, :, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s] += grad_at(r)
        return dxp[:, :, p:h + p, p:w + p]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.kernel}, stride={self.stride}, padding={self.padding})"


class MaxPool2d(_Pool2d):
    """The maximum of each window; backward routes the gradient to the argmax ("switches").

    Ties go to the first maximum in row-major window order, as torch's CPU kernel does. Padding is -inf.
    """

    pad_value = -np.inf

    def forward(self, x: np.ndarray) -> np.ndarray:
        v = self._windows(x)
        out = v[:, :, 0, 0].copy()
        switches = np.zeros(out.shape, dtype=np.int16)  # offset index r = i * k + j of the maximum
        for r, (i, j) in enumerate(self._offsets()[1:], start=1):
            better = v[:, :, i, j] > out  # strict: an equal later value does not take over
            np.copyto(out, v[:, :, i, j], where=better)
            switches[better] = r
        self._cache = (x.shape, switches)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x_shape, switches = self._cache
        return self._scatter(lambda r: np.where(switches == r, dout, 0), x_shape, dout.shape[2:])


class AvgPool2d(_Pool2d):
    """The mean of each window; zero padding counts in the mean (torch's count_include_pad=True)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        v = self._windows(x)
        out = sum(v[:, :, i, j] for i, j in self._offsets()) / (self.kernel * self.kernel)
        self._cache = x.shape
        return out.astype(x.dtype, copy=False)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        share = dout / (self.kernel * self.kernel)
        return self._scatter(lambda r: share, self._cache, dout.shape[2:])


class Flatten(Layer):
    """(N, ...) -> (N, prod(...))."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout.reshape(self._shape)
