"""Receptive-field propagation rules for aten operators.

Every tracked tensor carries a :class:`Track`: the receptive field along H and W of its first spatial
unit (size, jump = effective stride, start = centre of that field in input pixel coordinates) and
which tensor dimensions are H and W. ``GLOBAL`` marks tensors that depend on the whole input (global
pooling followed by broadcasting, attention over flattened tokens). A convolution or pooling with
kernel k, stride s, padding p and dilation d maps (size, jump, start) to
``(size + (k_eff - 1) jump, jump s, start + ((k_eff - 1) / 2 - p) jump)`` with ``k_eff = d (k - 1) + 1``;
elementwise ops and concatenations take the hull (the union's extent) of their inputs' fields, which
is exact for residual additions and concatenations of branches with different fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

aten = torch.ops.aten


@dataclass(frozen=True)
class Axis:
    """Receptive field of the first unit along one axis (pixels of the input)."""

    size: int = 1
    jump: int = 1
    start: float = 0.0

    def layer(self, kernel: int, stride: int = 1, pad_before: int = 0, dilation: int = 1) -> Axis:
        k_eff = dilation * (kernel - 1) + 1
        return Axis(self.size + (k_eff - 1) * self.jump, self.jump * stride,
                    self.start + ((k_eff - 1) / 2 - pad_before) * self.jump)

    @property
    def bounds(self) -> tuple[float, float]:
        half = (self.size - 1) / 2
        return self.start - half, self.start + half


def hull(axes: list[Axis]) -> Axis:
    lo = min(a.bounds[0] for a in axes)
    hi = max(a.bounds[1] for a in axes)
    return Axis(int(round(hi - lo + 1)), max(a.jump for a in axes), (lo + hi) / 2)


@dataclass(frozen=True)
class Track:
    h: Axis
    w: Axis
    dims: tuple[int, int]  # tensor dimensions holding H and W


GLOBAL = "global"


def _pair(v, default=None):
    if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
        return default
    if isinstance(v, (list, tuple)):
        return (int(v[0]), int(v[-1])) if len(v) <= 2 else None
    return int(v), int(v)


def _nchw(track) -> bool:
    return isinstance(track, Track) and track.dims == (2, 3)


def window(track, kernel, stride, padding, dilation=1):
    """A convolution/pooling window on an NCHW tensor."""
    if not _nchw(track):
        return GLOBAL
    k, s = _pair(kernel), _pair(stride, _pair(kernel))
    p, d = _pair(padding, (0, 0)), _pair(dilation, (1, 1))
    if None in (k, s, p, d):
        return GLOBAL
    return Track(track.h.layer(k[0], s[0], p[0], d[0]), track.w.layer(k[1], s[1], p[1], d[1]), (2, 3))


def conv_rule(args, out, tracks):
    w = args[1]
    if w.ndim != 4 or (len(args) > 6 and args[6]):  # 2-D forward convolutions only
        return GLOBAL
    return window(tracks[0], tuple(w.shape[2:]), args[3], args[4], args[5])


def maxpool_rule(args, out, tracks):
    get = lambda i, d: args[i] if len(args) > i else d  # noqa: E731
    return window(tracks[0], args[1], get(2, None), get(3, 0), get(4, 1))


def avgpool_rule(args, out, tracks):
    get = lambda i, d: args[i] if len(args) > i else d  # noqa: E731
    return window(tracks[0], args[1], get(2, None), get(3, 0))


def adaptive_rule(args, out, tracks):
    """Adaptive pooling with an integer ratio is a k = s = in/out pooling (out = 1: the whole map)."""
    x, track = args[0], tracks[0]
    if not _nchw(track):
        return GLOBAL
    out0 = out[0] if isinstance(out, (tuple, list)) else out
    (ih, iw), (oh, ow) = x.shape[-2:], out0.shape[-2:]
    if ih % oh or iw % ow:
        return GLOBAL
    return Track(track.h.layer(ih // oh, ih // oh), track.w.layer(iw // ow, iw // ow), (2, 3))


def pointwise_rule(args, out, tracks, tensors, ignore_gates: bool = False):
    """Elementwise ops (broadcasting, right-aligned): the hull of the inputs' fields.

    A global input (a pooled map broadcast back, as in squeeze-excitation) makes the output global,
    unless ``ignore_gates``: then it is skipped when a spatial input remains (the "local" field)."""
    out0 = out[0] if isinstance(out, (tuple, list)) else out
    live, gated = [], False
    for t, tr in zip(tensors, tracks):
        broadcast = tr is not GLOBAL and t.ndim >= 2 and tuple(t.shape[d] for d in tr.dims) != tuple(
            out0.shape[out0.ndim - t.ndim + d] for d in tr.dims)
        if tr is GLOBAL or broadcast:
            gated = True
            continue
        live.append((t, tr))
    if not live or (gated and not ignore_gates):
        return GLOBAL
    t0, tr0 = live[0]
    dims = tuple(out0.ndim - t0.ndim + d for d in tr0.dims)
    return Track(hull([tr.h for _, tr in live]), hull([tr.w for _, tr in live]), dims)


def first_rule(args, out, tracks):
    """Ops that act per position along H and W (eval batch norm, dropout): pass the field on."""
    return tracks[0]


def _dim(d, ndim):
    return d % ndim if ndim else 0


def reduce_rule(args, out, tracks):
    """Reductions (mean/sum/amax) over H or W make the field the whole input."""
    x, track = args[0], tracks[0]
    dims = args[1] if len(args) > 1 else None
    dims = (
        list(range(x.ndim))
        if dims is None or dims == []
        else ([dims] if isinstance(dims, int) else list(dims))
    )
    dims = {_dim(d, x.ndim) for d in dims}
    if track is GLOBAL or dims & set(track.dims):
        return GLOBAL
    keep = len(args) > 2 and bool(args[2])
    return track if keep else _shift_dims(track, dims)


def _shift_dims(track, removed):
    return replace(track, dims=tuple(d - sum(r < d for r in removed) for d in track.dims))


def cat_rule(args, out, tracks, tensors):
    dim = args[1] if len(args) > 1 else 0
    live = [tr for tr in tracks]
    if any(tr is GLOBAL for tr in live):
        return GLOBAL
    if _dim(dim, out.ndim) in live[0].dims or len({tr.dims for tr in live}) != 1:
        return GLOBAL
    return Track(hull([tr.h for tr in live]), hull([tr.w for tr in live]), live[0].dims)


def pad_rule(args, out, tracks):
    """``constant_pad_nd``/reflection/replication: pads (last dim first) shift the field's start."""
    x, track, pad = args[0], tracks[0], list(args[1])
    if track is GLOBAL:
        return GLOBAL
    axes = []
    for axis, d in zip((track.h, track.w), track.dims):
        e = x.ndim - 1 - d
        before = pad[2 * e] if len(pad) > 2 * e else 0
        axes.append(replace(axis, start=axis.start - before * axis.jump))
    return Track(axes[0], axes[1], track.dims)


def reshape_rule(args, out, tracks):
    """Views and copies: find H and W again by matching the element counts around them."""
    x, track = args[0], tracks[0]
    out0 = out[0] if isinstance(out, (tuple, list)) else out
    if track is GLOBAL or not isinstance(out0, torch.Tensor):
        return GLOBAL
    if tuple(out0.shape) == tuple(x.shape):
        return track
    dh, dw = track.dims
    s = list(x.shape)
    pre, mid, post = math.prod(s[:dh]), math.prod(s[dh + 1:dw]), math.prod(s[dw + 1:])
    o = list(out0.shape)
    for i in range(len(o)):
        if o[i] != s[dh] or math.prod(o[:i]) != pre:
            continue
        for j in range(i + 1, len(o)):
            if o[j] == s[dw] and math.prod(o[i + 1:j]) == mid and math.prod(o[j + 1:]) == post:
                return replace(track, dims=(i, j))
    return GLOBAL


def permute_rule(args, out, tracks):
    track, order = tracks[0], [_dim(d, args[0].ndim) for d in args[1]]
    if track is GLOBAL:
        return GLOBAL
    return replace(track, dims=tuple(order.index(d) for d in track.dims))


def transpose_rule(args, out, tracks):
    track = tracks[0]
    if track is GLOBAL:
        return GLOBAL
    a, b = _dim(args[1], args[0].ndim), _dim(args[2], args[0].ndim)
    swap = {a: b, b: a}
    return replace(track, dims=tuple(swap.get(d, d) for d in track.dims))


def slice_rule(args, out, tracks):
    x, track = args[0], tracks[0]
    if track is GLOBAL:
        return GLOBAL
    dim = _dim(args[1] if len(args) > 1 else 0, x.ndim)
    if dim not in track.dims:
        return track
    begin = args[2] if len(args) > 2 and args[2] is not None else 0
    begin = max(0, begin + x.shape[dim]) if begin < 0 else begin
    step = args[4] if len(args) > 4 else 1
    axes = [track.h, track.w]
    k = track.dims.index(dim)
    axes[k] = Axis(axes[k].size, axes[k].jump * step, axes[k].start + begin * axes[k].jump)
    return Track(axes[0], axes[1], track.dims)


def select_rule(args, out, tracks):
    track = tracks[0]
    dim = _dim(args[1], args[0].ndim)
    return GLOBAL if track is GLOBAL or dim in track.dims else _shift_dims(track, {dim})


def split_rule(args, out, tracks):
    track = tracks[0]
    dim = _dim(args[2] if len(args) > 2 else 0, args[0].ndim)
    return GLOBAL if track is GLOBAL or dim in track.dims else track


def softmax_rule(args, out, tracks):
    track = tracks[0]
    return GLOBAL if track is GLOBAL or _dim(args[1], args[0].ndim) in track.dims else track


def layer_norm_rule(args, out, tracks):
    track, x = tracks[0], args[0]
    normalized = set(range(x.ndim - len(args[1]), x.ndim))
    return GLOBAL if track is GLOBAL or normalized & set(track.dims) else track


def _ops(*names):
    return [getattr(aten, n) for n in names if hasattr(aten, n)]


RULES: dict = {}
for _op in _ops("convolution", "_convolution"):
    RULES[_op] = conv_rule
for _op in _ops("max_pool2d_with_indices", "max_pool2d"):
    RULES[_op] = maxpool_rule
for _op in _ops("avg_pool2d"):
    RULES[_op] = avgpool_rule
for _op in _ops("_adaptive_avg_pool2d", "adaptive_max_pool2d", "adaptive_avg_pool2d"):
    RULES[_op] = adaptive_rule
for _op in _ops(
    "native_batch_norm",
    "_native_batch_norm_legit",
    "_native_batch_norm_legit_no_training",
    "native_dropout",
    "dropout",
    "feature_dropout",
    "alpha_dropout",
    "lift_fresh_copy",
    "_to_copy",
    "clone",
    "contiguous",
    "detach",
    "alias",
    "copy_",
    "fill_",
    "zero_",
    "native_group_norm",
):
    RULES[_op] = first_rule
for _op in _ops("mean", "sum", "amax", "amin", "max", "min", "var", "std", "var_mean"):
    RULES[_op] = reduce_rule
for _op in _ops("constant_pad_nd", "reflection_pad2d", "replication_pad2d", "reflection_pad1d"):
    RULES[_op] = pad_rule
for _op in _ops("view", "_unsafe_view", "reshape", "unsqueeze", "squeeze", "flatten", "expand", "unflatten",
                "view_as"):
    RULES[_op] = reshape_rule
for _op in _ops("split", "split_with_sizes", "chunk", "split_copy"):
    RULES[_op] = split_rule
RULES.update(
    {
        aten.select: select_rule,
        aten.permute: permute_rule,
        aten.transpose: transpose_rule,
        aten.slice: slice_rule,
        aten._softmax: softmax_rule,
        aten.native_layer_norm: layer_norm_rule,
    }
)
MULTI_INPUT = {aten.cat: cat_rule}
# Elementwise ops that lack torch's ``pointwise`` tag.
EXTRA_POINTWISE = frozenset(
    _ops(
        "hardswish",
        "hardswish_",
        "hardsigmoid",
        "hardsigmoid_",
        "mish",
        "mish_",
        "leaky_relu",
        "leaky_relu_",
        "elu",
        "elu_",
        "softplus",
        "prelu",
        "_prelu_kernel",
        "threshold",
        "threshold_",
        "rrelu_with_noise",
    )
)
