"""Multiply-accumulate (MAC) rules per aten operator, and a dispatch mode that applies them.

One MAC is one fused multiply-add. Counted, as in REFERENCE.md (and torchvision's ``_ops``):
convolutions (groups and dilation included: the weight shape says it), matrix products (mm, addmm,
bmm, baddbmm; ``linear``, ``matmul`` and ``einsum`` reach the dispatcher as these) and attention
(``scaled_dot_product_attention`` in every backend, and the fused aten kernels it dispatches to).
Not counted: normalisation, activations, pooling, additions and other elementwise work. Such ops
are listed by name (:attr:`MacCounter.uncounted`) so that nothing is dropped silently; pure
layout/creation ops (views, copies, ``empty``) are neither counted nor listed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten


def _prod(xs) -> int:
    return math.prod(int(v) for v in xs)


def conv_macs(args, out) -> int:
    """``aten.convolution``: every output (transposed: every input) element costs
    (C_in/groups) * prod(kernel) MACs, which is the weight's shape without its first dimension."""
    x, w = args[0], args[1]
    transposed = bool(args[6]) if len(args) > 6 else False
    return (x.numel() if transposed else _first(out).numel()) * _prod(w.shape[1:])


def backend_conv_macs(args, out) -> int:
    """Backend kernels (cudnn, mkldnn, slow_conv...): forward convolutions only."""
    return _first(out).numel() * _prod(args[1].shape[1:])


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def mm_macs(args, out) -> int:
    a, b = args[0], args[1]  # (m, k) @ (k, n)
    return a.shape[0] * a.shape[1] * b.shape[1]


def addmm_macs(args, out) -> int:
    return mm_macs(args[1:], out)


def bmm_macs(args, out) -> int:
    a, b = args[0], args[1]  # (b, m, k) @ (b, k, n)
    return a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]


def baddbmm_macs(args, out) -> int:
    return bmm_macs(args[1:], out)


def attention_macs(args, out) -> int:
    """softmax(q k^T) v: L*S*E for the scores plus L*S*Ev for the weighted sum, per batch and head."""
    q, k, v = args[0], args[1], args[2]
    batch_heads = _prod(q.shape[:-2])
    length, embed, source, value = q.shape[-2], q.shape[-1], k.shape[-2], v.shape[-1]
    return batch_heads * length * source * (embed + value)


def attention_bshd_macs(args, out) -> int:
    """The ``_flash_attention_forward`` / ``_efficient_attention_forward`` layout: (B, L, H, E)."""
    q, k, v = args[0], args[1], args[2]
    b, length, heads, embed = q.shape
    return b * heads * length * k.shape[1] * (embed + v.shape[-1])


def native_mha_macs(args, out) -> int:
    """``_native_multi_head_attention`` (the eval fast path of ``nn.MultiheadAttention``): the q, k, v
    and output projections (E x E each, per token) plus the attention itself (L*S*E twice)."""
    q, k = args[0], args[1]
    embed = int(args[3])
    batch, length, source = _prod(q.shape[:-2]), q.shape[-2], k.shape[-2]
    projections = batch * (2 * length + 2 * source) * embed * embed
    return projections + batch * length * source * 2 * embed


def _attention_ops() -> dict:
    names = (
        "scaled_dot_product_attention",
        "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_cudnn_attention",
        "_scaled_dot_product_flash_attention_for_cpu",
        "_scaled_dot_product_fused_attention_overrideable",
        "_scaled_dot_product_attention_math",
    )
    rules = {getattr(aten, n): attention_macs for n in names if hasattr(aten, n)}
    for n in ("_flash_attention_forward", "_efficient_attention_forward"):
        if hasattr(aten, n):
            rules[getattr(aten, n)] = attention_bshd_macs
    if hasattr(aten, "_native_multi_head_attention"):
        rules[aten._native_multi_head_attention] = native_mha_macs
    return rules


MAC_RULES: dict[object, Callable] = {
    aten.convolution: conv_macs,
    aten._convolution: conv_macs,
    aten.mm: mm_macs,
    aten.addmm: addmm_macs,
    aten.bmm: bmm_macs,
    aten.baddbmm: baddbmm_macs,
    **_attention_ops(),
}
for _name in ("cudnn_convolution", "mkldnn_convolution", "miopen_convolution", "_slow_conv2d_forward",
              "slow_conv3d_forward", "slow_conv_dilated2d", "thnn_conv2d", "convolution_overrideable"):
    if hasattr(aten, _name):
        MAC_RULES[getattr(aten, _name)] = backend_conv_macs

# Ops that move or create data without arithmetic: neither counted nor listed as uncounted.
FREE_OPS = frozenset(
    {
        "empty",
        "empty_strided",
        "empty_like",
        "zeros",
        "zeros_like",
        "ones",
        "ones_like",
        "full",
        "full_like",
        "new_empty",
        "new_empty_strided",
        "new_zeros",
        "new_ones",
        "new_full",
        "arange",
        "scalar_tensor",
        "_to_copy",
        "copy_",
        "clone",
        "contiguous",
        "detach",
        "lift_fresh",
        "lift_fresh_copy",
        "alias",
        "cat",
        "stack",
        "split",
        "split_with_sizes",
        "chunk",
        "unbind",
        "index_select",
        "index_copy",
        "gather",
        "roll",
        "constant_pad_nd",
        "index",
        "index_put_",
        "fill_",
        "zero_",
        "_unsafe_view",
        "repeat",
        "set_",
        "resize_",
        "t",
        "expand_copy",
        "slice_scatter",
        "select_scatter",
        "masked_fill",
        "masked_fill_",
        "randint",
        "rand",
        "randn",
        "bernoulli_",
        "uniform_",
        "normal_",
        "sym_size",
        "sym_stride",
        "sym_numel",
        "_local_scalar_dense",
        "item",
        "device",
        "dim",
        "size",
        "stride",
        "numel",
        "is_contiguous",
        "is_same_size",
        "_has_compatible_shallow_copy_type",
    }
)


def op_name(func) -> str:
    return func.overloadpacket.__name__ if hasattr(func, "overloadpacket") else str(func)


def is_free(func) -> bool:
    return getattr(func, "is_view", False) or op_name(func) in FREE_OPS


class MacCounter(TorchDispatchMode):
    """Counts MACs of every aten op it sees; ``on_macs(n)`` attributes them (e.g. to modules)."""

    def __init__(self, on_macs: Callable[[int], None] | None = None) -> None:
        super().__init__()
        self.macs = 0
        self.by_op: Counter[str] = Counter()
        self.uncounted: Counter[str] = Counter()
        self.on_macs = on_macs

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        rule = MAC_RULES.get(func.overloadpacket) if hasattr(func, "overloadpacket") else None
        if rule is not None:
            n = int(rule(args, out))
            self.macs += n
            self.by_op[op_name(func)] += n
            if self.on_macs:
                self.on_macs(n)
        elif not is_free(func):
            self.uncounted[op_name(func)] += 1
        return out
