"""Xception: Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions",
arXiv:1610.02357 (CVPR 2017), Fig. 5.

Entry flow (two 3x3 convs, three strided residual blocks 128-256-728), middle flow (eight residual
blocks of three 728-channel separable convs) and exit flow (a strided 728->1024 block, separable
convs to 1536 and 2048), then global average pooling and one FC layer. A separable convolution is a
depthwise 3x3 (``groups`` = channels) followed by a pointwise 1x1, with no ReLU between them (the
paper's finding, Section 4.7); every one is followed by batch norm. Residual shortcuts of strided or
widening blocks are 1x1/2 convs with batch norm. 22,855,952 parameters at 1000 classes, as the paper's
Table 3 says; 8.36 GMACs at 299.

Parameter names are those of timm's ``legacy_xception`` (``conv1``, ``block1.rep.0.conv1``,
``block1.skip``, ``block12.rep.4.pointwise``, ``fc``, ...), so its checkpoints load as they are.
Dropout 0.5 before the classifier is the paper's ImageNet setting (``drop_rate``; timm uses 0).
Data config: 299 input, mean = std = 0.5 and bicubic resizing with crop 0.8975, as timm's port of the
Keras weights.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..registry import register_model
from .base import HALF_MEAN, HALF_STD, ClassifierModel, DataConfig, Stage
from .layers import init_weights


class BlockRow(NamedTuple):
    """One residual block of Fig. 5."""

    in_ch: int
    out_ch: int
    reps: int  # separable convolutions in the block
    stride: int  # 2: the block ends with a 3x3/2 max pool and has a 1x1/2 conv shortcut
    start_with_relu: bool = True
    grow_first: bool = True  # False: widen on the last conv (the exit flow's 728 -> 1024 block)


XCEPTION_BLOCKS = (
    BlockRow(64, 128, 2, 2, start_with_relu=False),  # entry flow
    BlockRow(128, 256, 2, 2),
    BlockRow(256, 728, 2, 2),
    *(BlockRow(728, 728, 3, 1),) * 8,  # middle flow, repeated eight times
    BlockRow(728, 1024, 2, 2, grow_first=False),  # exit flow
)


class SeparableConv2d(nn.Module):
    """Depthwise k x k (groups = in channels) then pointwise 1x1, both without bias."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, padding: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, in_ch, kernel, stride, padding, groups=in_ch, bias=False)
        self.pointwise = nn.Conv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.conv1(x))


def block_widths(row: BlockRow) -> list[tuple[int, int]]:
    """(in, out) channels of each separable conv: widen on the first or on the last one."""
    if row.grow_first:
        return [(row.in_ch, row.out_ch)] + [(row.out_ch, row.out_ch)] * (row.reps - 1)
    return [(row.in_ch, row.in_ch)] * (row.reps - 1) + [(row.in_ch, row.out_ch)]


class Block(nn.Module):
    """``rep`` = [ReLU, SeparableConv, BN] x reps (+ 3x3/2 max pool), plus the shortcut."""

    def __init__(self, row: BlockRow) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(block_widths(row)):
            # the first ReLU may not work in place: the block's input also feeds the shortcut
            layers += [nn.ReLU(inplace=i > 0), SeparableConv2d(a, b), nn.BatchNorm2d(b)]
        if not row.start_with_relu:
            layers = layers[1:]
        if row.stride != 1:
            layers.append(nn.MaxPool2d(3, row.stride, 1))
        widen = row.out_ch != row.in_ch or row.stride != 1
        self.skip = nn.Conv2d(row.in_ch, row.out_ch, 1, stride=row.stride, bias=False) if widen else None
        self.skipbn = nn.BatchNorm2d(row.out_ch) if widen else None
        self.rep = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.skip is None else self.skipbn(self.skip(x))
        return self.rep(x) + shortcut


XCEPTION_CFG = DataConfig(input_size=(3, 299, 299), mean=HALF_MEAN, std=HALF_STD, interpolation="bicubic",
                          crop_pct=0.8975)


class Xception(ClassifierModel):
    """See the module docstring."""

    classifier_path = "fc"

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.5) -> None:
        super().__init__()
        self.num_classes, self.num_features = num_classes, 2048
        self.conv1 = nn.Conv2d(in_chans, 32, 3, 2, 0, bias=False)  # 299 -> 149
        self.bn1 = nn.BatchNorm2d(32)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(32, 64, 3, bias=False)  # -> 147
        self.bn2 = nn.BatchNorm2d(64)
        self.act2 = nn.ReLU(inplace=True)
        self.block_names = tuple(f"block{i + 1}" for i in range(len(XCEPTION_BLOCKS)))
        for name, row in zip(self.block_names, XCEPTION_BLOCKS):
            setattr(self, name, Block(row))  # 147 -> 74 -> 37 -> 19 (entry), 19 -> 10 (block12)
        self.conv3 = SeparableConv2d(1024, 1536)
        self.bn3 = nn.BatchNorm2d(1536)
        self.act3 = nn.ReLU(inplace=True)
        self.conv4 = SeparableConv2d(1536, 2048)
        self.bn4 = nn.BatchNorm2d(2048)
        self.act4 = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(drop_rate)
        self.fc = nn.Linear(2048, num_classes) if num_classes > 0 else nn.Identity()
        self.stages = (Stage("act2", 64, 2), Stage("block1", 128, 4), Stage("block2", 256, 8),
                       Stage("block11", 728, 16), Stage("act4", 2048, 32))
        self.default_cfg = XCEPTION_CFG.with_channels(in_chans)
        init_weights(self, conv="kaiming_fan_out", zero_linear_bias=False)  # timm's

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act2(self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x))))))
        for name in self.block_names:
            x = getattr(self, name)(x)
        x = self.act3(self.bn3(self.conv3(x)))
        return self.act4(self.bn4(self.conv4(x)))  # N x 2048 x 10 x 10 at 299

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
        return x if pre_logits else self.fc(x)


@register_model(family="xception", paper="Chollet 2016, arXiv:1610.02357", loads=("timm:legacy_xception",))
def xception(num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.5) -> Xception:
    """The paper's Xception (timm ``legacy_xception`` names)."""
    return Xception(num_classes, in_chans, drop_rate)
