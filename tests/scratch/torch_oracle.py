"""Helpers shared by the scratch tests: run a scratch layer and its torch twin on the same data."""

from __future__ import annotations

import numpy as np
import torch

TOL = 1e-8


def t(a: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=grad)


def max_diff(a, b) -> float:
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    return float(np.max(np.abs(np.asarray(a) - b))) if np.size(a) else 0.0


def assert_matches_torch(layer, torch_fn, x: np.ndarray, seed: int = 0) -> None:
    """Forward, input gradient and every parameter gradient of ``layer`` equal torch's (<= TOL).

    ``torch_fn(x, **params)`` is the torch computation with the scratch layer's parameters as tensors.
    """
    params = {k: t(p.data, grad=True) for k, p in layer.named_params().items()}
    out = layer.forward(x)
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    dx = layer.backward(dout)
    xt = t(x, grad=True)
    out_t = torch_fn(xt, **params)
    out_t.backward(t(dout))
    assert out.shape == tuple(out_t.shape)
    assert max_diff(out, out_t) <= TOL
    assert max_diff(dx, xt.grad) <= TOL
    for k, p in layer.named_params().items():
        assert max_diff(p.grad, params[k].grad) <= TOL, k
