"""Receptive fields of stage outputs and named layers: analytic, and measured by gradients.

:func:`receptive_field` traces one forward pass at the aten level on meta tensors (no compute, see
:mod:`.fake_run`): a ``TorchDispatchMode`` propagates each tensor's field through every operator
(:mod:`.rf_rules`), so residual additions, concatenations, dilation, pooling, explicit padding,
channel shuffles and layers written with ``F.conv2d`` inside custom modules are all followed without
a symbolic trace (nothing to fall back from: data-dependent Python control flow is simply run).
Operators without a rule make their output ``GLOBAL`` and are listed in ``unknown_ops``.

:func:`receptive_field_gradient` measures the field instead: it backpropagates one centre unit of a
layer to the input of a copy of the model whose weights are all positive (so no ReLU is dead), over a
few random inputs (so every position of a max-pooling window wins once), and reports the extent of
the non-zero input gradient.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary

from ..errors import CnnlabError
from . import rf_rules as R
from .counting import is_free
from .fake_run import ModuleHooks, Probe, fake_forward


@dataclass(frozen=True)
class RF:
    """Receptive field of a layer's first unit along H: ``size`` (pixels), ``jump`` (effective stride,
    pixels between neighbouring units) and ``start`` (centre of the first unit's field, in input pixel
    coordinates; negative = it reaches into the padding). ``width`` holds the W axis when it differs."""

    size: int
    jump: int
    start: float
    width: RF | None = None

    def bounds(self, index: int = 0) -> tuple[float, float]:
        """Input rows seen by unit ``index`` (unclipped)."""
        centre = self.start + index * self.jump
        return centre - (self.size - 1) / 2, centre + (self.size - 1) / 2

    def to_dict(self) -> dict:
        d = {"size": self.size, "jump": self.jump, "start": self.start}
        if self.width is not None:
            d["width"] = self.width.to_dict()
        return d


def _to_rf(track) -> RF | None:
    if not isinstance(track, R.Track):
        return None
    h, w = track.h, track.w
    width = None if w == h else RF(w.size, w.jump, w.start)
    return RF(h.size, h.jump, h.start, width)


class RFTracer(TorchDispatchMode):
    """Attaches a :class:`~.rf_rules.Track` to every tensor computed from the input."""

    def __init__(self, ignore_gates: bool = False) -> None:
        super().__init__()
        self.ignore_gates = ignore_gates
        self.tracks = WeakIdKeyDictionary()
        self.unknown_ops: Counter[str] = Counter()

    def track_input(self, x: torch.Tensor) -> None:
        self.tracks[x] = R.Track(R.Axis(), R.Axis(), (x.ndim - 2, x.ndim - 1))

    def lookup(self, t):
        return self.tracks.get(t) if isinstance(t, torch.Tensor) else None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        flat, _ = tree_flatten((args, kwargs))
        tensors = [t for t in flat if isinstance(t, torch.Tensor) and t in self.tracks]
        if not tensors:
            return out
        tracks = [self.tracks[t] for t in tensors]
        result = self._apply(func, args, out, tensors, tracks)
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.tracks[t] = result
        return out

    def _apply(self, func, args, out, tensors, tracks):
        packet = func.overloadpacket
        if packet in R.MULTI_INPUT:
            return R.MULTI_INPUT[packet](args, out, tracks, tensors)
        if torch.Tag.pointwise in func.tags or packet in R.EXTRA_POINTWISE:
            return R.pointwise_rule(args, out, tracks, tensors, self.ignore_gates)
        rule = R.RULES.get(packet)
        if rule is not None and isinstance(args[0], torch.Tensor) and args[0] in self.tracks:
            return rule(args, out, tracks)
        if any(tr is not R.GLOBAL for tr in tracks) and not is_free(func):
            self.unknown_ops[packet.__name__] += 1
        return R.GLOBAL


def _layer_names(model: nn.Module, layers) -> list[str]:
    if layers == "all":
        return [n for n, _ in model.named_modules() if n]
    names = list(layers or [s.name for s in getattr(model, "stages", ())])
    known = dict(model.named_modules())
    for n in names:
        if n not in known:
            raise CnnlabError(
                f"no layer named {n!r} in {type(model).__name__}; see `cnnlab info` for the names"
            )
    return names


def receptive_field(model: nn.Module, input_size: Sequence[int] = (3, 224, 224), layers=None,
                    *, ignore_gates: bool = False, details: dict | None = None) -> dict[str, RF | None]:
    """Receptive field of each layer's output: ``layers`` = names, ``"all"``, or None = the stages.

    ``None`` values mean the output depends on the whole input (global pooling broadcast back, as in
    squeeze-excitation; attention over tokens) or is not a spatial map. ``ignore_gates=True`` skips
    such global gates where a spatial input remains, giving the local (convolutional) field that
    squeeze-excitation networks share with their plain versions. ``details``, if given, is
    filled with ``unknown_ops`` (operators without a rule, name -> calls).
    """
    names = _layer_names(model, layers)
    if len(input_size) != 3:
        raise CnnlabError(f"receptive fields need a CxHxW input, got {'x'.join(map(str, input_size))}")
    wanted, made = set(names), {}

    def probe() -> Probe:
        made["tracer"] = tracer = RFTracer(ignore_gates)
        made["found"] = found = {}

        def post(name, _module, output):
            if name in wanted:
                t = output if isinstance(output, torch.Tensor) else tree_flatten(output)[0][0]
                found[name] = _to_rf(tracer.lookup(t))

        return Probe(modes=[tracer], hooks=ModuleHooks(post=post), on_input=tracer.track_input)

    fake_forward(model, input_size, probe=probe)
    tracer, found = made["tracer"], made["found"]
    if details is not None:
        details["unknown_ops"] = dict(tracer.unknown_ops)
    return {n: found.get(n) for n in names}


@dataclass(frozen=True)
class MeasuredRF:
    """Extent of the non-zero input gradient of one output unit (``unit`` = its (row, col))."""

    unit: tuple[int, int]
    rows: tuple[int, int]  # first and last input row with a non-zero gradient
    cols: tuple[int, int]

    @property
    def size(self) -> tuple[int, int]:
        return self.rows[1] - self.rows[0] + 1, self.cols[1] - self.cols[0] + 1


class _Stop(Exception):
    pass


def _positive_weights(model: nn.Module, generator: torch.Generator) -> None:
    """Weights U(0.5, 1.5) / fan_in (mean-preserving, so deep nets neither vanish nor explode), 1-D
    scales 1, biases 0, batch-norm statistics (0, 1): every activation stays positive. Random weights
    and inputs let every position of a max-pooling window win for some input."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                p.copy_((torch.rand(p.shape, generator=generator) + 0.5) / max(1, p[0].numel()))
            else:
                p.fill_(1.0 if name.rsplit(".", 1)[-1] == "weight" else 0.0)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()


def receptive_field_gradient(model: nn.Module, input_size: Sequence[int], layer: str, *, trials: int = 4,
                             seed: int = 0) -> MeasuredRF:
    """Measure the receptive field of the centre unit of ``layer`` (see the module docstring)."""
    if any(t.is_meta for t in [*model.parameters(), *model.buffers()]):
        raise CnnlabError("the gradient method needs a model with real tensors; build it off the meta device")
    probe = copy.deepcopy(model).float().eval()
    target = dict(probe.named_modules()).get(layer)
    if target is None:
        raise CnnlabError(f"no layer named {layer!r} in {type(model).__name__}")
    g = torch.Generator().manual_seed(seed)
    _positive_weights(probe, g)
    x = (torch.rand((trials, *input_size), generator=g) + 0.5).requires_grad_(True)
    captured = []

    def stop(_m, _i, out):
        captured.append(out if isinstance(out, torch.Tensor) else tree_flatten(out)[0][0])
        raise _Stop

    handle = target.register_forward_hook(stop)
    try:
        probe(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    y = captured[0]
    if y.ndim != 4:
        raise CnnlabError(f"layer {layer!r} outputs shape {tuple(y.shape)}, not a CxHxW map")
    i, j = y.shape[2] // 2, y.shape[3] // 2
    y[:, :, i, j].sum().backward()
    support = x.grad.abs().sum(dim=(0, 1)) > 0
    rows = torch.nonzero(support.any(dim=1)).flatten()
    cols = torch.nonzero(support.any(dim=0)).flatten()
    return MeasuredRF((i, j), (int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1])))


def expected_bounds(rf: RF | None, unit: tuple[int, int], hw: tuple[int, int]) -> tuple[tuple[int, int], ...]:
    """Analytic rows and cols of ``unit`` clipped to an H x W input (None = the whole input)."""
    if rf is None:
        return (0, hw[0] - 1), (0, hw[1] - 1)
    out = []
    for axis, idx, n in ((rf, unit[0], hw[0]), (rf.width or rf, unit[1], hw[1])):
        lo, hi = axis.bounds(idx)
        out.append((max(0, math.ceil(lo)), min(n - 1, math.floor(hi))))
    return tuple(out)
