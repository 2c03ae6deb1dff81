"""Per-module profile of a model: output shapes, parameters, MACs and activation memory.

``profile(model, (3, 224, 224))`` runs one forward pass on meta tensors (nothing is computed or
allocated, see :mod:`.fake_run`) with a :class:`~.counting.MacCounter`; module hooks attribute each
op's MACs to every module that is running at the time, so a row's MACs include its children's.
FLOPs are reported as 2 x MACs. The model is left untouched (no hooks, buffers, modes or devices
changed), in the eval mode by default (training-only branches such as auxiliary heads excluded).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .counting import MacCounter
from .fake_run import ModuleHooks, Probe, fake_forward


@dataclass
class LayerRow:
    """One module: ``macs`` includes its children's; ``activation_bytes`` = bytes of its output(s)."""

    name: str
    type: str
    depth: int
    output_shape: tuple[int, ...] | None = None
    params: int = 0
    macs: int = 0
    activation_bytes: int = 0
    calls: int = 0

    @property
    def flops(self) -> int:
        return 2 * self.macs


@dataclass
class Profile:
    """Totals and per-module rows (in call order) of one forward pass."""

    model: str
    input_size: tuple[int, ...]
    batch_size: int
    params: int
    trainable_params: int
    macs: int
    output_shape: tuple[int, ...] | None
    rows: list[LayerRow] = field(default_factory=list)
    macs_by_op: dict[str, int] = field(default_factory=dict)
    uncounted: dict[str, int] = field(default_factory=dict)  # op name -> number of calls

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def row(self, name: str) -> LayerRow:
        return next(r for r in self.rows if r.name == name)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["flops"] = self.flops
        for r, row in zip(d["rows"], self.rows):
            r["flops"] = row.flops
        return d


def _first_tensor(obj):
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, (tuple, list)):
        return next((t for t in map(_first_tensor, obj) if t is not None), None)
    if isinstance(obj, dict):
        return next((t for t in map(_first_tensor, obj.values()) if t is not None), None)
    return None


def _tensor_bytes(obj) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, (tuple, list)):
        return sum(map(_tensor_bytes, obj))
    if isinstance(obj, dict):
        return sum(map(_tensor_bytes, obj.values()))
    return 0


def module_params(model: nn.Module) -> dict[str, int]:
    """Parameters of every submodule, its children's included (shared tensors counted once)."""
    return {name: sum(p.numel() for p in m.parameters()) for name, m in model.named_modules()}


class _Attribution:
    """Keeps the stack of running modules and adds each op's MACs to all of them."""

    def __init__(self, model: nn.Module) -> None:
        params = module_params(model)
        self.rows: dict[str, LayerRow] = {}
        self.stack: list[LayerRow] = []
        self.params = params

    def pre(self, name: str, module: nn.Module) -> None:
        row = self.rows.get(name)
        if row is None:
            row = LayerRow(
                name, type(module).__name__, name.count(".") + 1 if name else 0, params=self.params[name]
            )
            self.rows[name] = row
        row.calls += 1
        self.stack.append(row)

    def post(self, name: str, module: nn.Module, output) -> None:
        if self.stack and self.stack[-1].name == name:
            self.stack.pop()
        row = self.rows[name]
        t = _first_tensor(output)
        row.output_shape = tuple(t.shape) if t is not None else None
        row.activation_bytes += _tensor_bytes(output)

    def add(self, macs: int) -> None:
        for row in self.stack:
            row.macs += macs


def profile(model: nn.Module, input_size: Sequence[int] = (3, 224, 224), batch_size: int = 1,
            *, train: bool = False) -> Profile:
    """Profile ``model`` on a ``(batch_size, *input_size)`` input (see the module docstring)."""
    made = {}

    def probe() -> Probe:
        made["rows"] = attribution = _Attribution(model)
        made["counter"] = counter = MacCounter(on_macs=attribution.add)
        return Probe(modes=[counter], hooks=ModuleHooks(attribution.pre, attribution.post))

    out = fake_forward(model, input_size, batch_size, probe=probe, train=train)
    attribution, counter = made["rows"], made["counter"]
    params = list({id(p): p for p in model.parameters()}.values())
    out_t = _first_tensor(out)
    rows = [r for r in attribution.rows.values() if r.name]
    return Profile(
        model=getattr(model, "model_name", "") or type(model).__name__,
        input_size=tuple(input_size), batch_size=batch_size,
        params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        macs=counter.macs, output_shape=tuple(out_t.shape) if out_t is not None else None,
        rows=rows, macs_by_op=dict(counter.by_op), uncounted=dict(Counter(counter.uncounted)),
    )
