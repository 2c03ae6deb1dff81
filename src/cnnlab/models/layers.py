"""Pieces used by two or more model families (a model file imports only these, ``base`` and the registry).

Owned jointly: add a layer here only when a second family needs it; keep each one small.
"""

from __future__ import annotations

import math
import re
import warnings
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .base import Stage


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor`` without losing more than 10%.

    This is the rounding of the MobileNet/EfficientNet reference code (``_make_divisible``).
    """
    min_value = min_value or divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


class ConvBNAct(nn.Sequential):
    """conv -> batch norm -> activation, as ``0``/``1``/``2`` children (torchvision's naming)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        act_layer: type[nn.Module] | None = nn.ReLU,
        norm_layer: type[nn.Module] | None = nn.BatchNorm2d,
        padding: int | None = None,
        dilation: int = 1,
        conv_layer: type[nn.Module] = nn.Conv2d,
    ) -> None:
        if padding is None:
            padding = (kernel_size - 1) // 2 * dilation
        layers: list[nn.Module] = [
            conv_layer(in_ch, out_ch, kernel_size, stride, padding=padding, dilation=dilation, groups=groups,
                       bias=norm_layer is None)
        ]
        if norm_layer is not None:
            layers.append(norm_layer(out_ch))
        if act_layer is not None:
            layers.append(act_layer(inplace=True) if _takes_inplace(act_layer) else act_layer())
        super().__init__(*layers)
        self.out_channels = out_ch


def _takes_inplace(act_layer) -> bool:
    return act_layer in (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.LeakyReLU)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2017, arXiv:1709.01507): channel gates from global context.

    Children ``fc1``/``fc2`` are 1x1 convolutions, as in torchvision's ``SqueezeExcitation`` and
    timm's ``SEModule``.
    """

    def __init__(self, channels: int, squeeze_channels: int, act_layer=nn.ReLU, gate_layer=nn.Sigmoid):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.act = act_layer(inplace=True) if _takes_inplace(act_layer) else act_layer()
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.gate = gate_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.fc2(self.act(self.fc1(s))))


class ResidualBlock(nn.Module):
    """relu(SE(residual(x)) + shortcut(x)); subclasses build the layers and define ``residual``."""

    se: nn.Module | None
    downsample: nn.Module | None
    relu: nn.Module

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.residual(x)
        if self.se is not None:
            out = self.se(out)
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class PreActResidual(nn.Module):
    """residual(pre) + shortcut, pre = relu(norm1(x)) (He et al. 2016, arXiv:1603.05027): the shortcut is
    ``x`` itself, or :func:`preact_projection` of ``pre`` where the shape changes (the paper's code)."""

    norm1: nn.Module
    relu: nn.Module
    downsample: nn.Module | None

    def residual(self, pre: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu(self.norm1(x))
        shortcut = x if self.downsample is None else self.downsample(pre)
        return self.residual(pre) + shortcut


def preact_projection(in_ch: int, out_ch: int, stride: int) -> nn.Conv2d | None:
    """The 1x1 projection shortcut of a pre-activation block, only where the shape changes."""
    return nn.Conv2d(in_ch, out_ch, 1, stride, bias=False) if stride != 1 or in_ch != out_ch else None


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth (Huang et al. 2016, arXiv:1603.09382): drop whole samples of a residual branch."""
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


class DropPath(nn.Module):
    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow "SAME" padding (before, after) for one spatial dimension; asymmetric at stride 2."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding computed from the input size at run time."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["padding"] = 0
        super().__init__(*args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ph = same_padding(x.shape[-2], self.kernel_size[0], self.stride[0], self.dilation[0])
        pw = same_padding(x.shape[-1], self.kernel_size[1], self.stride[1], self.dilation[1])
        if any(ph) or any(pw):
            x = F.pad(x, (pw[0], pw[1], ph[0], ph[1]))
        return super().forward(x)


def transformer_mlp(dim: int, hidden: int, block_drop_rate: float = 0.0) -> nn.Sequential:
    """The transformer feed-forward block: Linear -> GELU -> Dropout -> Linear -> Dropout.

    Children ``0`` and ``3`` are the two linear layers (torchvision's ``MLP`` naming, used by its
    ViT and Swin), so their checkpoints load unchanged. Init as torchvision: Xavier-uniform weights,
    biases N(0, 1e-6).
    """
    mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(block_drop_rate),
                        nn.Linear(hidden, dim), nn.Dropout(block_drop_rate))
    for layer in (mlp[0], mlp[3]):
        nn.init.xavier_uniform_(layer.weight)
        nn.init.normal_(layer.bias, std=1e-6)
    return mlp


class ConvRow(NamedTuple):
    """One convolution of a table; ``post`` names what follows the ReLU, in order ("lrn", "pool")."""

    out_ch: int
    kernel: int
    stride: int = 1
    padding: int = 0
    groups: int = 1  # 2 = the two GPU towers of the 2012 paper
    post: tuple[str, ...] = ()


# AlexNet 2012, Section 3.3 (ZFNet's "contrast normalisation" too): k=2, n=5, alpha=1e-4, beta=0.75;
# PyTorch divides alpha by n, hence 5 * 1e-4
PAPER_LRN = {"size": 5, "alpha": 5e-4, "beta": 0.75, "k": 2.0}
POST_LAYERS = {
    "lrn": lambda ceil: nn.LocalResponseNorm(**PAPER_LRN),
    "pool": lambda ceil: nn.MaxPool2d(3, 2, ceil_mode=ceil),  # overlapping pooling, z=3, s=2
}


def conv_stack(rows, in_chans: int, ceil_pool: bool = False) -> tuple[nn.Sequential, tuple[Stage, ...]]:
    """Build ``Conv-ReLU-[post...]`` per row; stages = the last module at each total stride."""
    layers: list[nn.Module] = []
    ends: dict[int, Stage] = {}  # reduction -> last stage at it
    in_ch, reduction = in_chans, 1
    for row in rows:
        layers += [nn.Conv2d(in_ch, row.out_ch, row.kernel, row.stride, row.padding, groups=row.groups),
                   nn.ReLU(inplace=True)]
        reduction *= row.stride
        for kind in row.post:
            layers.append(POST_LAYERS[kind](ceil_pool))
            reduction *= 2 if kind == "pool" else 1
        ends[reduction] = Stage(f"features.{len(layers) - 1}", row.out_ch, reduction)
        in_ch = row.out_ch
    return nn.Sequential(*layers), tuple(ends.values())


def rename_keys(sd: dict[str, torch.Tensor], rules) -> dict[str, torch.Tensor]:
    """Apply every ``(pattern, replacement)`` of ``rules`` to each key of a peer's state_dict, in order."""
    out = {}
    for k, v in sd.items():
        for pattern, repl in rules:
            k = re.sub(pattern, repl, k)
        out[k] = v
    return out


# name -> in-place init of a weight tensor (the families' choices; torch.nn.init underneath)
WEIGHT_INITS = {
    "kaiming_fan_out": lambda w: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"),
    "kaiming_fan_in": lambda w: nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu"),
    "normal_0.01": lambda w: nn.init.normal_(w, 0.0, 0.01),
    "trunc_normal_0.01": lambda w: nn.init.trunc_normal_(w, std=0.01, a=-2, b=2),
    "trunc_normal_0.02": lambda w: nn.init.trunc_normal_(w, std=0.02),
    # LeCun normal, truncated at +-2: std 1/sqrt(fan_in), fan_in = in_channels * kernel area
    "lecun_trunc_normal": lambda w: nn.init.trunc_normal_(w, std=math.sqrt(1 / w[0].numel())),
    "uniform_fan_out": lambda w: nn.init.uniform_(w, -1 / math.sqrt(w.shape[0]), 1 / math.sqrt(w.shape[0])),
}


def init_weights(model: nn.Module, conv: str | None = None, linear: str | None = None, *,
                 zero_conv_bias: bool = True, zero_linear_bias: bool = True, bias_one: tuple[int, ...] = (),
                 zero_head: bool = False) -> nn.Module:
    """Initialise a model in one pass over ``model.modules()`` (in order, so the random stream is fixed).

    ``conv`` / ``linear`` name a rule of :data:`WEIGHT_INITS` for every ``nn.Conv2d`` / ``nn.Linear``
    weight (``None`` keeps PyTorch's default); their biases are zeroed unless ``zero_*_bias=False``.
    ``bias_one``: indices among the conv and linear layers, in module order, whose bias starts at 1
    (AlexNet 2012, Section 5). ``zero_head``: the classifier starts at zero (torchvision's ViT).
    Batch norms start at weight 1, bias 0.
    """
    layer = 0
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            rule, zero_bias = (
                (conv, zero_conv_bias) if isinstance(m, nn.Conv2d) else (linear, zero_linear_bias)
            )
            if rule is not None:
                WEIGHT_INITS[rule](m.weight)
            if m.bias is not None and (zero_bias or layer in bias_one):
                nn.init.constant_(m.bias, 1.0 if layer in bias_one else 0.0)
            layer += 1
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    head = model.get_classifier() if zero_head else None
    if isinstance(head, nn.Linear):
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
    return model


def renamed_kwarg(kwargs: dict, old: str, new: str, owner: str) -> dict:
    """Move ``kwargs[old]`` to ``kwargs[new]`` with a one-line FutureWarning; returns ``kwargs``.

    A renamed keyword keeps working for one release. The dropout keywords mean the same in every family:
    ``drop_rate`` the dropout before the classifier, ``block_drop_rate`` dropout inside the blocks,
    ``drop_path_rate`` stochastic depth.
    """
    if old in kwargs:
        if new in kwargs:
            raise TypeError(f"{owner}() got both {old}= and its new name {new}=; pass {new}= only")
        warnings.warn(f"{owner}: {old}= is renamed {new}= (the old name stops working in the next release)",
                      FutureWarning, stacklevel=3)
        kwargs[new] = kwargs.pop(old)
    return kwargs
