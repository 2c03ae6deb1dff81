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


def _check(h: int, w: int, kh: int, kw: int, stride: int, padding: int, dilation: int) -> tuple[int, int]:
    oh = conv_output_size(h, kh, stride, padding, dilation)
    ow = conv_output_size(w, kw, stride, padding, dilation)
    if oh < 1 or ow < 1:
        raise ValueError(f"input {h}x{w} is too small for a {kh}x{kw} window "
                         f"(padding {padding}, dilation {dilation})")
    return oh, ow


def patches(x: np.ndarray, kh: int, kw: int, stride: int = 1, padding: int = 0, dilation: int = 1,
            pad_value: float = 0.0) -> np.ndarray:
    """A read-only view (A, B, kh, kw, OH, OW) of a padded (A, B, H, W) array: element [a, b, i, j, y, x]
    is xp[a, b, y*s + i*d, x*s + j*d]. No copy."""
    a, b, h, w = x.shape
    oh, ow = _check(h, w, kh, kw, stride, padding, dilation)
    xp = _pad(x, padding, pad_value)
    sa, sb, sh, sw = xp.strides
    strides = (sa, sb, dilation * sh, dilation * sw, stride * sh, stride * sw)
    return as_strided(xp, shape=(a, b, kh, kw, oh, ow), strides=strides, writeable=False)


def im2col(x: np.ndarray, kh: int, kw: int, stride: int = 1, padding: int = 0, dilation: int = 1,
           pad_value: float = 0.0) -> np.ndarray:
    """(N, C, H, W) -> cols (C * kh * kw, N * OH * OW), a contiguous copy of every patch.

    The input is first made channel-major (C, N, H, W), so the patch view is already in the order of
    ``cols`` and the copy runs along whole output rows.
    """
    n, c = x.shape[:2]
    view = patches(
        np.ascontiguousarray(x.transpose(1, 0, 2, 3)), kh, kw, stride, padding, dilation, pad_value
    )
    oh, ow = view.shape[4:]
    return view.transpose(0, 2, 3, 1, 4, 5).reshape(c * kh * kw, n * oh * ow)  # (C, kh, kw, N, OH, OW)


def col2im(cols: np.ndarray, x_shape: tuple[int, ...], kh: int, kw: int, stride: int = 1,
           padding: int = 0, dilation: int = 1) -> np.ndarray:
    """The adjoint of :func:`im2col`: sum every column entry back onto the input pixel it came from.

    Overlapping patches add up, which is exactly the gradient of the convolution w.r.t. its input.
    One vectorised add per kernel offset (i, j); returns an (N, C, H, W) view of a (C, N, H, W) array.
    """
    n, c, h, w = x_shape
    oh, ow = _check(h, w, kh, kw, stride, padding, dilation)
    cols6 = cols.reshape(c, kh, kw, n, oh, ow)
    dxp = np.zeros((c, n, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            r, q = i * dilation, j * dilation
            dxp[:, :, r : r + stride * (oh - 1) + 1 : stride, q : q + stride * (ow - 1) + 1 : stride] += (
                cols6[:, i, j]
            )
    if padding:
        dxp = dxp[:, :, padding:-padding, padding:-padding]
    return dxp.transpose(1, 0, 2, 3)
