"""Network in Network: Lin, Chen, Yan, "Network In Network", arXiv:1312.4400 (ICLR 2014).

An *mlpconv* block is a spatial convolution followed by two 1x1 convolutions (a small MLP shared
over positions), each with a ReLU. There are no fully connected layers: the last 1x1 convolution
outputs one map per class and global average pooling turns the maps into logits (Section 3.2).

* ``nin`` is the ImageNet model the authors released with the paper (Caffe model zoo, "NIN
  ImageNet"): four mlpconv blocks 96-256-384-1024 with 11x11/4, 5x5, 3x3, 3x3 spatial kernels, 3x3/2
  max pooling (ceil mode) between them and dropout 0.5 before the last block. 7,595,176 parameters at
  1000 classes. Shapes at 224: 54x54x96, 27x27x96 (pool), 27x27x256, 13x13x256, 13x13x384, 6x6x384,
  6x6x1024, 6x6x1000, then 1000 logits.
* ``nin_cifar`` is the CIFAR-10 model of the paper's experiments (Section 4.2, three mlpconv blocks
  of 192-160-96, 192-192-192, 192-192-classes; max then average 3x3/2 pooling; dropout 0.5 after the
  first two blocks). 966,986 parameters at 10 classes. Shapes at 32: 32x32x96, 16x16x96,
  16x16x192, 8x8x192, 8x8x192, 8x8x10, then 10 logits.

The classifier is the last 1x1 convolution (``classifier``), followed, as in the released models, by a
ReLU and the global average pool. ``forward_features`` returns the map that feeds it (1024 or 192
channels) and ``forward_head(pre_logits=True)`` its global average (B, num_features).
``reset_classifier`` puts a new 1x1 convolution there.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..registry import register_model
from .base import CIFAR_CFG, ClassifierModel, DataConfig, Stage


class MlpConv(NamedTuple):
    """One block: a ``kernel`` x ``kernel`` conv then 1x1 convs to ``widths[1:]``, then ``post``."""

    widths: tuple[int, ...]  # conv, 1x1, 1x1 output channels (the classifier's 1x1 is left out)
    kernel: int
    stride: int
    padding: int
    post: tuple[str, ...] = ()  # "maxpool" | "avgpool" | "dropout", in order


NIN_IMAGENET = (
    MlpConv((96, 96, 96), 11, 4, 0, ("maxpool",)),  # 224 -> 54 -> 27
    MlpConv((256, 256, 256), 5, 1, 2, ("maxpool",)),  # 27 -> 13
    MlpConv((384, 384, 384), 3, 1, 1, ("maxpool", "dropout")),  # 13 -> 6
    MlpConv((1024, 1024), 3, 1, 1),  # + the classifier 1x1 conv
)
NIN_CIFAR = (
    MlpConv((192, 160, 96), 5, 1, 2, ("maxpool", "dropout")),  # 32 -> 16
    MlpConv((192, 192, 192), 5, 1, 2, ("avgpool", "dropout")),  # 16 -> 8
    MlpConv((192, 192), 3, 1, 1),  # + the classifier 1x1 conv
)
POST_LAYERS = {
    "maxpool": lambda: nn.MaxPool2d(3, 2, ceil_mode=True),
    "avgpool": lambda: nn.AvgPool2d(3, 2, ceil_mode=True),
    "dropout": lambda: nn.Dropout(0.5),
}


def mlpconv(row: MlpConv, in_ch: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(in_ch, row.widths[0], row.kernel, row.stride, row.padding),
                               nn.ReLU(inplace=True)]
    for a, b in zip(row.widths, row.widths[1:]):
        layers += [nn.Conv2d(a, b, 1), nn.ReLU(inplace=True)]
    layers += [POST_LAYERS[kind]() for kind in row.post]
    return nn.Sequential(*layers)


class NiN(ClassifierModel):
    """Stacked mlpconv blocks (``block1`` ...), a 1x1 conv ``classifier`` and global average pooling."""

    classifier_path = "classifier"
    head_relu = True  # the class maps pass through a ReLU: a zero-initialised head would get no gradient

    def __init__(self, rows, num_classes: int, in_chans: int, cfg: DataConfig) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_features = rows[-1].widths[-1]
        self.blocks = nn.Sequential()
        stages, in_ch, reduction = [], in_chans, 1
        for i, row in enumerate(rows):
            self.blocks.add_module(f"block{i + 1}", mlpconv(row, in_ch))
            in_ch = row.widths[-1]
            reduction *= row.stride * 2 ** sum(kind.endswith("pool") for kind in row.post)
            stages.append(Stage(f"blocks.block{i + 1}", in_ch, reduction))
        self.classifier = self._new_classifier(num_classes)
        self.stages = tuple(stages)
        self.default_cfg = cfg.with_channels(in_chans)

    def _new_classifier(self, num_classes: int) -> nn.Module:
        return nn.Conv2d(self.num_features, num_classes, 1) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if not pre_logits:
            x = torch.relu(self.classifier(x))  # one map per class (the ReLU of the released models)
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)

    def reset_classifier(self, num_classes: int) -> None:
        device = next(self.blocks.parameters()).device
        self.classifier = self._new_classifier(num_classes).to(device)
        self.num_classes = num_classes


PAPER = "Lin et al. 2013, arXiv:1312.4400"
NIN_IMAGENET_CFG = DataConfig(input_size=(3, 224, 224), crop_pct=0.875)


@register_model(family="nin", paper=PAPER)
def nin(num_classes: int = 1000, in_chans: int = 3) -> NiN:
    """The authors' ImageNet NIN (four mlpconv blocks, no FC layer)."""
    return NiN(NIN_IMAGENET, num_classes, in_chans, NIN_IMAGENET_CFG)


@register_model(family="nin", paper=PAPER, native={"num_classes": 10})
def nin_cifar(num_classes: int = 1000, in_chans: int = 3) -> NiN:
    """The paper's CIFAR-10 NIN (three mlpconv blocks, no FC layer)."""
    return NiN(NIN_CIFAR, num_classes, in_chans, CIFAR_CFG)
