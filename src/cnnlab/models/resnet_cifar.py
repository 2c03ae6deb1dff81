"""Residual networks for CIFAR (32x32 inputs, 10 classes in their native setting).

* ``resnet20/32/44/56/110``: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition",
  arXiv:1512.03385, section 4.2: a 3x3 conv with 16 filters, then three stages of n basic blocks with
  16, 32, 64 filters on 32x32, 16x16, 8x8 maps (depth = 6n + 2), global average pooling, fc.
  Shortcuts are the paper's option A: identity, and where the width doubles, a stride-2 subsample
  with the new channels zero-padded (half before, half after the old ones); no parameters.
* ``wrn28_10`` and the general WRN-d-k builder :func:`wide_resnet_cifar`: Zagoruyko, Komodakis,
  "Wide Residual Networks", arXiv:1605.07146: pre-activation basic blocks B(3,3) with widths 16k,
  32k, 64k, n = (d - 4) / 6 blocks per stage, optional dropout between the two convs of a block
  (``block_drop_rate``, the paper's dropout option; 0.3 in its CIFAR runs); WRN-28-10 has 36,479,194
  parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CnnlabError
from ..registry import register_model
from .base import CIFAR_CFG, ClassifierModel, Stage
from .layers import PreActResidual, ResidualBlock, init_weights, preact_projection, renamed_kwarg

CIFAR_WIDTHS = (16, 32, 64)  # filters per stage (section 4.2)


class ZeroPadShortcut(nn.Module):
    """Option A: subsample by ``stride`` and zero-pad the channels up to ``out_ch``; no parameters."""

    def __init__(self, out_ch: int, stride: int) -> None:
        super().__init__()
        self.out_ch, self.stride = out_ch, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_ch - x.shape[1]
        return F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))


class CifarBasicBlock(ResidualBlock):
    """conv3x3-BN-ReLU-conv3x3-BN, added to the option-A shortcut, then ReLU."""

    def __init__(self, in_ch: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se = None
        same = stride == 1 and in_ch == planes
        self.downsample = None if same else ZeroPadShortcut(planes, stride)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))


def blocks_per_stage(depth: int, per_block: int, extra: int, what: str) -> int:
    n, rest = divmod(depth - extra, per_block * 3)
    if rest or n < 1:
        raise CnnlabError(
            f"{what} depth {depth} is not {per_block * 3}n + {extra}; pick e.g. {per_block * 3 + extra}"
        )
    return n


class CifarResNet(ClassifierModel):
    """ResNet-(6n+2) of the paper's CIFAR-10 experiments (Table 6)."""

    classifier_path = "fc"

    def __init__(self, depth: int, num_classes: int = 10, in_chans: int = 3) -> None:
        super().__init__()
        n = blocks_per_stage(depth, 2, 2, "CIFAR ResNet")
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(in_chans, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        in_ch, stages = 16, []
        for i, planes in enumerate(CIFAR_WIDTHS):
            stride = 1 if i == 0 else 2
            blocks = [
                CifarBasicBlock(in_ch if j == 0 else planes, planes, stride if j == 0 else 1)
                for j in range(n)
            ]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))  # 32x32, 16x16, 8x8
            in_ch = planes
            stages.append(Stage(f"layer{i + 1}", planes, 2**i))
        self.num_features = in_ch
        self.fc = nn.Linear(in_ch, num_classes) if num_classes > 0 else nn.Identity()
        self.stages = tuple(stages)
        self.default_cfg = CIFAR_CFG.with_channels(in_chans)
        init_weights(
            self, conv="kaiming_fan_out", zero_conv_bias=False, zero_linear_bias=False
        )  # torchvision's

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(x)))


class WideBasic(PreActResidual):
    """BN-ReLU-conv3x3 (stride)-[dropout]-BN-ReLU-conv3x3, plus a shortcut (1x1 conv on the
    pre-activated input where the shape changes, as in the paper's code)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, block_drop_rate: float) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.BatchNorm2d(in_ch), nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.drop = nn.Dropout(block_drop_rate) if block_drop_rate > 0 else nn.Identity()
        self.norm2, self.conv2 = nn.BatchNorm2d(out_ch), nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = preact_projection(in_ch, out_ch, stride)

    def residual(self, pre: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.relu(self.norm2(self.drop(self.conv1(pre)))))


class WideResNetCifar(ClassifierModel):
    """WRN-d-k: conv3x3 (16), three stages of pre-activation B(3,3) blocks, BN-ReLU, GAP, fc."""

    classifier_path = "fc"

    def __init__(self, depth: int, widen_factor: int, block_drop_rate: float = 0.0, num_classes: int = 10,
                 in_chans: int = 3) -> None:
        super().__init__()
        n = blocks_per_stage(depth, 2, 4, "WRN")
        if not isinstance(widen_factor, int) or widen_factor < 1:
            raise CnnlabError(f"widen_factor must be an integer >= 1, got {widen_factor!r}")
        if not 0.0 <= block_drop_rate < 1.0:
            raise CnnlabError(f"block_drop_rate must be in [0, 1), got {block_drop_rate!r}")
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(in_chans, 16, 3, 1, 1, bias=False)
        in_ch, stages = 16, []
        for i, width in enumerate(CIFAR_WIDTHS):
            out_ch, stride = width * widen_factor, 1 if i == 0 else 2
            blocks = [WideBasic(in_ch if j == 0 else out_ch, out_ch, stride if j == 0 else 1, block_drop_rate)
                      for j in range(n)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            in_ch = out_ch
            stages.append(Stage(f"layer{i + 1}", out_ch, 2**i))
        self.norm = nn.BatchNorm2d(in_ch)
        self.relu = nn.ReLU(inplace=True)
        self.num_features = in_ch
        self.fc = nn.Linear(in_ch, num_classes) if num_classes > 0 else nn.Identity()
        self.stages = tuple(stages)
        self.default_cfg = CIFAR_CFG.with_channels(in_chans)
        init_weights(
            self, conv="kaiming_fan_out", zero_conv_bias=False, zero_linear_bias=False
        )  # torchvision's

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        return self.relu(self.norm(x))


def wide_resnet_cifar(depth: int, widen_factor: int, **kwargs) -> WideResNetCifar:
    """The general WRN-d-k builder (d = 6n + 4); keywords as :class:`WideResNetCifar`."""
    kwargs = renamed_kwarg(kwargs, "dropout", "block_drop_rate", "wide_resnet_cifar")
    return WideResNetCifar(depth, widen_factor, **kwargs)


# --- registry ----------------------------------------------------------------------------------

RESNET = "He et al. 2015, arXiv:1512.03385"
WRN = "Zagoruyko & Komodakis 2016, arXiv:1605.07146"
NATIVE = {"num_classes": 10}


@register_model(family="resnet_cifar", paper=RESNET, native=NATIVE)
def resnet20(num_classes: int = 1000, in_chans: int = 3) -> CifarResNet:
    """ResNet-20 for CIFAR (option A shortcuts, 3 blocks per stage)."""
    return CifarResNet(20, num_classes, in_chans)


@register_model(family="resnet_cifar", paper=RESNET, native=NATIVE)
def resnet32(num_classes: int = 1000, in_chans: int = 3) -> CifarResNet:
    """ResNet-32 for CIFAR (option A shortcuts, 5 blocks per stage)."""
    return CifarResNet(32, num_classes, in_chans)


@register_model(family="resnet_cifar", paper=RESNET, native=NATIVE)
def resnet44(num_classes: int = 1000, in_chans: int = 3) -> CifarResNet:
    """ResNet-44 for CIFAR (option A shortcuts, 7 blocks per stage)."""
    return CifarResNet(44, num_classes, in_chans)


@register_model(family="resnet_cifar", paper=RESNET, native=NATIVE)
def resnet56(num_classes: int = 1000, in_chans: int = 3) -> CifarResNet:
    """ResNet-56 for CIFAR (option A shortcuts, 9 blocks per stage)."""
    return CifarResNet(56, num_classes, in_chans)


@register_model(family="resnet_cifar", paper=RESNET, native=NATIVE)
def resnet110(num_classes: int = 1000, in_chans: int = 3) -> CifarResNet:
    """ResNet-110 for CIFAR (option A shortcuts, 18 blocks per stage)."""
    return CifarResNet(110, num_classes, in_chans)


@register_model(family="resnet_cifar", paper=WRN, native=NATIVE)
def wrn28_10(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> WideResNetCifar:
    """WRN-28-10; ``block_drop_rate`` (e.g. 0.3) is the dropout between the two convs of every block."""
    kwargs = renamed_kwarg(kwargs, "dropout", "block_drop_rate", "wrn28_10")
    return wide_resnet_cifar(28, 10, num_classes=num_classes, in_chans=in_chans, **kwargs)
