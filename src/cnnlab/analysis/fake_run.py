"""Run a model on fake tensors: shapes and dtypes flow, but nothing is computed or allocated.

:func:`fake_forward` swaps every parameter and buffer for a fake twin (``torch.func.functional_call``),
feeds a fake input and calls one of the model's forward methods under a chain of
``TorchDispatchMode`` s given by the caller (the MAC counter, the receptive-field tracer). Module
pre/post hooks report which module is running. Everything it sets up (hooks, training flags, the
swapped tensors) is undone in ``finally``: the model is left exactly as it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from ..errors import CnnlabError


@dataclass
class ModuleHooks:
    """Callbacks ``pre(name, module)`` and ``post(name, module, output)`` for every submodule."""

    pre: Callable[[str, nn.Module], None] | None = None
    post: Callable[[str, nn.Module, object], None] | None = None


def parse_input_size(text: str | Sequence[int]) -> tuple[int, ...]:
    """``"3x224x224"`` or ``(3, 224, 224)`` -> ``(3, 224, 224)``; raises CnnlabError on bad input."""
    try:
        size = tuple(int(s) for s in (text.lower().split("x") if isinstance(text, str) else text))
    except (ValueError, TypeError):
        raise CnnlabError(f"bad input size {text!r}; write it as CxHxW, e.g. 3x224x224") from None
    if not size or any(s <= 0 for s in size):
        raise CnnlabError(f"bad input size {text!r}; every dimension must be a positive integer")
    return size


def _fake_state(model: nn.Module, mode: FakeTensorMode) -> dict[str, torch.Tensor]:
    """Fake twins (same shape, stride, dtype; CPU) of every parameter and buffer."""
    state = {}
    with mode:
        for name, t in [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]:
            fake = torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="cpu")
            state[name] = fake.requires_grad_(t.requires_grad) if t.is_floating_point() else fake
    return state


@contextlib.contextmanager
def _module_hooks(model: nn.Module, hooks: ModuleHooks):
    handles = []
    try:
        for name, module in model.named_modules():
            if hooks.pre:
                handles.append(module.register_forward_pre_hook(lambda m, _a, n=name: hooks.pre(n, m)))
            if hooks.post:
                handles.append(module.register_forward_hook(lambda m, _a, o, n=name: hooks.post(n, m, o)))
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def _training_flags(model: nn.Module, train: bool):
    flags = [(m, m.training) for m in model.modules()]
    try:
        model.train(train)
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def fake_forward(model: nn.Module, input_size: Sequence[int], batch_size: int = 1, *,
                 modes: Sequence[object] = (), hooks: ModuleHooks | None = None, train: bool = False,
                 method: str = "forward", grad: bool = False, on_input: Callable | None = None):
    """Call ``getattr(model, method)`` on a fake ``(batch_size, *input_size)`` input; returns its output.

    ``modes`` are entered innermost-last, inside the fake mode, so they see every aten op with fake
    arguments. ``on_input(x)`` is called with the fake input before the forward (e.g. to tag it).
    """
    if batch_size < 1:
        raise CnnlabError(f"batch size must be >= 1, got {batch_size}")
    fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
    state = _fake_state(model, fake_mode)
    dtype = next((t.dtype for t in state.values() if t.is_floating_point()), torch.float32)
    with fake_mode:
        x = torch.empty((batch_size, *input_size), dtype=dtype, device="cpu")
    if on_input:
        on_input(x)
    fn = getattr(model, method) if method != "forward" else model
    with contextlib.ExitStack() as stack:
        stack.enter_context(_training_flags(model, train))
        stack.enter_context(_module_hooks(model, hooks or ModuleHooks()))
        stack.enter_context(torch.set_grad_enabled(grad))
        stack.enter_context(fake_mode)
        for mode in modes:
            stack.enter_context(mode)
        try:
            return torch.func.functional_call(model, state, (x,), strict=False, tie_weights=True) \
                if method == "forward" else _call_method(model, state, fn, x)
        except CnnlabError:
            raise
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            shape = "x".join(map(str, input_size))
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CnnlabError(f"the model cannot run on a {shape} input: {msg}") from exc


def _call_method(model: nn.Module, state: dict, fn: Callable, x: torch.Tensor):
    from torch.nn.utils.stateless import _reparametrize_module

    with _reparametrize_module(model, state, tie_weights=True, strict=False):
        return fn(x)
