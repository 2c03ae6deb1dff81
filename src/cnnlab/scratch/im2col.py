"""im2col / col2im: convolution as one matrix product (GEMM).

A convolution's output at (n, o, y, x) is the dot product of kernel o with the input patch under
(y, x). ``im2col`` copies every patch into a column, so the whole layer is ``W (OC, K) @ cols (K, M)``
with K = C * kh * kw (the patch length) and M = N * OH * OW (the number of output positions).

Layout of ``cols``: rows ordered (c, i, j) like torch's weight ``(OC, C, kh, kw)`` flattened; columns
ordered (n, y, x). The patches are read through a strided view of the padded input (no Python loop
over pixels); ``col2im`` adds the columns back, looping only over the kh * kw kernel offsets.

Output size per axis: floor((n + 2p - d (k - 1) - 1) / s) + 1.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided


def conv_output_size(n: int, k: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution or pooling along one axis (no ceil mode)."""
    return (n + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def _pad(x: np.ndarray, padding: int, value: float) -> np.ndarray:
    if padding == 0:
        return x
    widths = ((0, 0), (0, 0), (padding, padding), (padding, padding))
    return np.pad(x, widths, mode="constant", constant_values=value)


def patches(x: np.ndarray, kh: int, kw: int, stride: int = 1, padding: int = 0, dilation: int = 1,
            pad_value: float = 0.0) -> np.ndarray:
    """A read-only view (N, C, kh, kw, OH, OW) of the padded input: element [n, c, i, j, y, x] is
    xp[n, c, y*s + i*d, x*s + j*d]."""
    n, c, h, w = x.shape
    oh = conv_output_size(h, kh, stride, padding, dilation)
    ow = conv_output_size(w, kw, stride, padding, dilation)
    if oh < 1 or ow < 1:
        raise ValueError(f"input {h}x{w} is too small for a {kh}x{kw} window "
                         f"(padding {padding}, dilation {dilation})")
    xp = _pad(x, padding, pad_value)
    sn, sc, sh, sw = xp.strides
    shape = (n, c, kh, kw, oh, ow)
    strides = (sn, sc, dilation * sh, dilation * sw, stride * sh, stride * sw)
    return as_strided(xp, shape=shape, strides=strides, writeable=False)


def im2col(x: np.ndarray, kh: int, kw: int, stride: int = 1, padding: int = 0, dilation: int = 1,
           pad_value: float = 0.0) -> np.ndarray:
    """(N, C, H, W) -> cols (C * kh * kw, N * OH * OW), a contiguous copy of every patch."""
    view = patches(x, kh, kw, stride, padding, dilation, pad_value)
    n, c, _, _, oh, ow = view.shape
    cols = np.ascontiguousarray(view.transpose(1, 2, 3, 0, 4, 5))  # (C, kh, kw, N, OH, OW)
    return cols.reshape(c * kh * kw, n * oh * ow)


def col2im(cols: np.ndarray, x_shape: tuple[int, ...], kh: int, kw: int, stride: int = 1,
           padding: int = 0, dilation: int = 1) -> np.ndarray:
    """The adjoint of :func:`im2col`: sum every column entry back onto the input pixel it came from.

    Overlapping patches add up, which is exactly the gradient of the convolution w.r.t. its input.
    """
    n, c, h, w = x_shape
    oh = conv_output_size(h, kh, stride, padding, dilation)
    ow = conv_output_size(w, kw, stride, padding, dilation)
    cols6 = cols.reshape(c, kh, kw, n, oh, ow)
    dxp = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            r, q = i * dilation, j * dilation
            window = dxp[:, :, r:r + stride * (oh - 1) + 1:stride, q:q + stride * (ow - 1) + 1:stride]
            window += cols6[:, i, j].transpose(1, 0, 2, 3)
    if padding:
        return dxp[:, :, padding:-padding, padding:-padding]
    return dxp
