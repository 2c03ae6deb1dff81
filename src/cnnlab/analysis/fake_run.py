"""Run a model on meta (or fake) tensors: shapes and dtypes flow, nothing is computed or allocated.

:func:`fake_forward` swaps every parameter and buffer for a meta twin (``torch.func.functional_call``)
and calls the model on a meta input under the ``TorchDispatchMode`` s of the caller's :class:`Probe`
(the MAC counter, the receptive-field tracer); module pre/post hooks report which module is running.
A model that mixes in real tensors made during its forward is retried on ``FakeTensorMode`` tensors.
Everything it sets up (hooks, training flags, the
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


def _twin(t: torch.Tensor, device: str) -> torch.Tensor:
    twin = torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=device)
    return twin.requires_grad_(t.requires_grad) if t.is_floating_point() else twin


def _twin_state(model: nn.Module, device: str) -> dict[str, torch.Tensor]:
    """Twins (same shape, stride, dtype) of every parameter and buffer on ``device``."""
    named = [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]
    return {name: _twin(t, device) for name, t in named}


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


@dataclass
class Probe:
    """What one attempt of :func:`fake_forward` installs: dispatch modes, module hooks, an input tagger."""

    modes: Sequence[object] = ()
    hooks: ModuleHooks | None = None
    on_input: Callable | None = None


def fake_forward(model: nn.Module, input_size: Sequence[int], batch_size: int = 1, *,
                 probe: Callable[[], Probe] = Probe, train: bool = False, grad: bool = False):
    """Call the model on a ``(batch_size, *input_size)`` input made of meta tensors; returns the output.

    Meta tensors (with ``torch.device("meta")`` as the default device, so tensors the forward creates
    are meta too) are fast; a model that mixes in real tensors is retried under ``FakeTensorMode``.
    ``probe()`` is called once per attempt, so its counters start from zero; its modes are entered
    innermost-last and see every aten op.
    """
    if batch_size < 1:
        raise CnnlabError(f"batch size must be >= 1, got {batch_size}")
    try:
        return _attempt(model, input_size, batch_size, probe(), train, grad, fake=False)
    except CnnlabError:
        raise
    except Exception:  # noqa: BLE001  (meta tensors refused: retry with fake tensors, which report it)
        pass
    try:
        return _attempt(model, input_size, batch_size, probe(), train, grad, fake=True)
    except CnnlabError:
        raise
    except (RuntimeError, ValueError, TypeError, IndexError, NotImplementedError, AssertionError) as exc:
        shape = "x".join(map(str, input_size))
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CnnlabError(f"the model cannot run on a {shape} input: {msg}") from exc


def _attempt(model, input_size, batch_size, probe: Probe, train: bool, grad: bool, fake: bool):
    device_ctx = FakeTensorMode(allow_non_fake_inputs=True) if fake else torch.device("meta")
    device = "cpu" if fake else "meta"
    with device_ctx:
        state = _twin_state(model, device)
        floats = [t.dtype for t in state.values() if t.is_floating_point()]
        x = torch.empty(
            (batch_size, *input_size), dtype=floats[0] if floats else torch.float32, device=device
        )
    if probe.on_input:
        probe.on_input(x)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_training_flags(model, train))
        stack.enter_context(_module_hooks(model, probe.hooks or ModuleHooks()))
        stack.enter_context(torch.set_grad_enabled(grad))
        stack.enter_context(device_ctx)
        for mode in probe.modes:
            stack.enter_context(mode)
        return torch.func.functional_call(model, state, (x,), strict=False, tie_weights=True)
