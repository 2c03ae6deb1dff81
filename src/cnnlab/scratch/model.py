"""A Sequential container and LeNet-5 built from the scratch layers.

LeNet-5 here is the textbook variant (LeCun et al. 1998, with the modern simplifications): ReLU,
2x2 max pooling, a dense C3 and a linear output layer - the same network as cnnlab's ``lenet5_relu``,
with the same parameter names and shapes, so a torch state dict loads into it unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .activations import ReLU
from .base import Layer, Param
from .layers import Conv2d, Flatten, Linear, MaxPool2d


class Sequential(Layer):
    """Layers applied in order; backward walks them in reverse. Named like torch's ``nn.Sequential``."""

    def __init__(self, layers: Iterable[Layer | tuple[str, Layer]]) -> None:
        items = [lay if isinstance(lay, tuple) else (str(i), lay) for i, lay in enumerate(layers)]
        self.layers: dict[str, Layer] = dict(items)

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)
        return dout

    def modules(self, prefix: str = "") -> Iterable[tuple[str, Layer]]:
        """Every leaf layer with its dotted name (``features.0``, ``fc``)."""
        for name, layer in self.layers.items():
            if isinstance(layer, Sequential):
                yield from layer.modules(f"{prefix}{name}.")
            else:
                yield f"{prefix}{name}", layer

    def named_params(self) -> dict[str, Param]:
        return {f"{m}.{k}": p for m, layer in self.modules() for k, p in layer.named_params().items()}

    def params(self) -> list[Param]:
        return list(self.named_params().values())

    def state_dict(self) -> dict[str, np.ndarray]:
        state = {k: p.data for k, p in self.named_params().items()}
        state.update({f"{m}.{k}": b for m, layer in self.modules() for k, b in layer.buffers().items()})
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays in by name (in place, keeping this model's dtype); names and shapes must match."""
        own = self.state_dict()
        if set(own) != set(state):
            raise KeyError(f"state names differ: missing {sorted(set(own) - set(state))}, "
                           f"unexpected {sorted(set(state) - set(own))}")
        for k, dst in own.items():
            dst[...] = np.asarray(state[k]).reshape(dst.shape)

    def train(self, mode: bool = True) -> Sequential:
        self.training = mode
        for _, layer in self.modules():
            layer.training = mode
        return self

    def eval(self) -> Sequential:
        return self.train(False)

    def num_params(self) -> int:
        return sum(p.data.size for p in self.params())

    def mac_rows(self, input_size: tuple[int, ...], batch: int = 1) -> list[tuple[str, int]]:
        """(layer name, MACs) for every layer that multiplies, from one forward pass on zeros."""
        was_training = self.training
        self.eval()
        params = self.params()
        dtype = params[0].data.dtype if params else np.float32
        self.forward(np.zeros((batch, *input_size), dtype))
        self.train(was_training)
        return [(name, layer.macs()) for name, layer in self.modules() if layer.macs()]

    def mac_count(self, input_size: tuple[int, ...] = (1, 32, 32), batch: int = 1) -> int:
        """Multiply-accumulates of one forward pass: sum over conv layers of kw*kh*kc*oc*ow*oh*b
        (kc = input channels per group) plus in*out*b over linear layers."""
        return sum(m for _, m in self.mac_rows(input_size, batch))

    def __repr__(self) -> str:
        return "Sequential(\n" + "".join(f"  ({k}): {v!r}\n" for k, v in self.layers.items()) + ")"


def lenet5(num_classes: int = 10, in_chans: int = 1, seed: int = 0, dtype=np.float32) -> Sequential:
    """Textbook LeNet-5 at 32x32: conv5x5 6 - pool - conv5x5 16 - pool - conv5x5 120 - fc 84 - fc."""
    rng = np.random.default_rng(seed)
    kw = {"rng": rng, "dtype": dtype}
    features = Sequential([
        Conv2d(in_chans, 6, 5, **kw), ReLU(), MaxPool2d(2),  # 32 -> 28 -> 14
        Conv2d(6, 16, 5, **kw), ReLU(), MaxPool2d(2),  # 14 -> 10 -> 5
        Conv2d(16, 120, 5, **kw), ReLU(),  # 5 -> 1 (C5)
    ])
    return Sequential([
        ("features", features),
        ("flatten", Flatten()),
        ("pre_logits", Sequential([Linear(120, 84, **kw), ReLU()])),  # F6
        ("fc", Linear(84, num_classes, **kw)),
    ])
