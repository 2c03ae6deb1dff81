"""DenseNet: Huang, Liu, van der Maaten, Weinberger, "Densely Connected Convolutional Networks",
arXiv:1608.06993.

Every layer of a dense block sees the concatenation of all earlier feature maps of the block and adds
``growth_rate`` (k) new ones. The "BC" form is used throughout: a 1x1 bottleneck to ``bn_size * k``
channels before each 3x3 (B), and transitions that shrink the channels by ``compression`` (theta, C).

* ``densenet121/161/169/201``: the ImageNet networks of Table 1 (7x7/2 stem conv + 3x3/2 max-pool,
  four blocks, theta = 0.5, bn_size = 4), with torchvision's parameter names (``features.conv0``,
  ``features.denseblock1.denselayer1.norm1``, ``features.transition1.conv``, ``classifier``). Old
  torchvision checkpoints named ``...denselayer1.norm.1.weight`` are renamed on load.
* ``densenet_bc100_k12``: the CIFAR DenseNet-BC (L = 100, k = 12) of Table 2: a 3x3 stem conv with 2k
  filters, three blocks of 16 bottleneck layers on 32x32, 16x16 and 8x8 maps; 769,162 parameters at
  10 classes.

Deviation: the paper's dropout after each dense layer (0.2, CIFAR without augmentation only) is the
``block_drop_rate`` option (``drop_rate`` until this release, as in torchvision), 0 by default;
torchvision's memory-efficient (checkpointed) mode is not implemented.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CnnlabError
from ..registry import register_model
from .base import CIFAR_CFG, ClassifierModel, DataConfig, Stage
from .layers import init_weights, renamed_kwarg


class DenseNetConfig(NamedTuple):
    growth_rate: int  # k: feature maps each layer adds
    block_config: tuple[int, ...]  # layers per dense block
    num_init_features: int  # channels of the stem conv
    stem: str = "imagenet"  # "imagenet": 7x7/2 conv, BN, ReLU, 3x3/2 max-pool; "cifar": one 3x3 conv
    bn_size: int = 4  # bottleneck width = bn_size * k
    compression: float = 0.5  # theta: a transition keeps floor(theta * channels)


VARIANTS: dict[str, DenseNetConfig] = {
    "densenet121": DenseNetConfig(32, (6, 12, 24, 16), 64),
    "densenet161": DenseNetConfig(48, (6, 12, 36, 24), 96),
    "densenet169": DenseNetConfig(32, (6, 12, 32, 32), 64),
    "densenet201": DenseNetConfig(32, (6, 12, 48, 32), 64),
    "densenet_bc100_k12": DenseNetConfig(12, (16, 16, 16), 24, stem="cifar"),
}


def imagenet_stem(in_chans: int, out_ch: int) -> list[tuple[str, nn.Module]]:
    return [("conv0", nn.Conv2d(in_chans, out_ch, 7, 2, 3, bias=False)), ("norm0", nn.BatchNorm2d(out_ch)),
            ("relu0", nn.ReLU(inplace=True)), ("pool0", nn.MaxPool2d(3, 2, 1))]


def cifar_stem(in_chans: int, out_ch: int) -> list[tuple[str, nn.Module]]:
    return [("conv0", nn.Conv2d(in_chans, out_ch, 3, 1, 1, bias=False))]


STEMS = {
    "imagenet": (imagenet_stem, 4, DataConfig()),
    "cifar": (cifar_stem, 1, CIFAR_CFG),
}  # builder, reduction, data


class DenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (bn_size * k) - BN-ReLU-conv3x3 (k), optional dropout."""

    def __init__(self, in_ch: int, growth_rate: int, bn_size: int, block_drop_rate: float) -> None:
        super().__init__()
        mid = bn_size * growth_rate
        self.norm1, self.relu1 = nn.BatchNorm2d(in_ch), nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_ch, mid, 1, bias=False)
        self.norm2, self.relu2 = nn.BatchNorm2d(mid), nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(mid, growth_rate, 3, 1, 1, bias=False)
        self.block_drop_rate = block_drop_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.relu1(self.norm1(x)))
        x = self.conv2(self.relu2(self.norm2(x)))
        p = self.block_drop_rate
        return F.dropout(x, p, self.training) if p > 0 else x


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers; layer i sees in_ch + i * k channels; output in_ch + L * k."""

    def __init__(self, num_layers: int, in_ch: int, cfg: DenseNetConfig, block_drop_rate: float) -> None:
        layers = {f"denselayer{i + 1}": DenseLayer(in_ch + i * cfg.growth_rate, cfg.growth_rate, cfg.bn_size,
                                                   block_drop_rate) for i in range(num_layers)}
        super().__init__(layers)
        self.out_channels = in_ch + num_layers * cfg.growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


def transition(in_ch: int, out_ch: int) -> nn.Sequential:
    """BN-ReLU-conv1x1-avgpool 2x2/2 between dense blocks."""
    return nn.Sequential(OrderedDict(norm=nn.BatchNorm2d(in_ch), relu=nn.ReLU(inplace=True),
                                     conv=nn.Conv2d(in_ch, out_ch, 1, bias=False), pool=nn.AvgPool2d(2, 2)))


# torchvision's pre-0.3 checkpoints: "denselayer1.norm.1.weight" for "denselayer1.norm1.weight".
OLD_TV_KEY = re.compile(r"(denselayer\d+\.(?:norm|relu|conv))\.([12])\.")


class DenseNet(ClassifierModel):
    """Stem, dense blocks joined by transitions, final BN (``features.norm5``), ReLU, GAP, classifier."""

    classifier_path = "classifier"

    def __init__(self, cfg: DenseNetConfig, num_classes: int = 1000, in_chans: int = 3,
                 block_drop_rate: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= block_drop_rate < 1.0:
            raise CnnlabError(f"block_drop_rate must be in [0, 1), got {block_drop_rate!r}")
        make_stem, reduction, data = STEMS[cfg.stem]
        self.num_classes = num_classes
        layers, stages, ch = make_stem(in_chans, cfg.num_init_features), [], cfg.num_init_features
        for i, num_layers in enumerate(cfg.block_config):
            block = DenseBlock(num_layers, ch, cfg, block_drop_rate)
            layers.append((f"denseblock{i + 1}", block))
            ch = block.out_channels
            stages.append(Stage(f"features.denseblock{i + 1}", ch, reduction))
            if i != len(cfg.block_config) - 1:
                out = math.floor(ch * cfg.compression)
                layers.append((f"transition{i + 1}", transition(ch, out)))
                ch, reduction = out, reduction * 2
        layers.append(("norm5", nn.BatchNorm2d(ch)))
        self.features = nn.Sequential(OrderedDict(layers))
        self.num_features = ch
        self.classifier = nn.Linear(ch, num_classes) if num_classes > 0 else nn.Identity()
        self.stages = tuple(stages)
        self.default_cfg = data.with_channels(in_chans)
        init_weights(self, conv="kaiming_fan_in")  # torchvision's: He (fan-in) convs, zero classifier bias

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.features(x))

    def convert_state_dict(self, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {OLD_TV_KEY.sub(r"\1\2.", k): v for k, v in sd.items()}


PAPER = "Huang et al. 2016, arXiv:1608.06993"


def _densenet(name: str, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> DenseNet:
    # drop_rate was the in-block dropout here (torchvision's name); every family's drop_rate is the head's
    renamed_kwarg(kwargs, "drop_rate", "block_drop_rate", name)
    return DenseNet(VARIANTS[name], num_classes, in_chans, **kwargs)


@register_model(family="densenet", paper=PAPER, loads=("torchvision:densenet121", "timm:densenet121"))
def densenet121(**kwargs) -> DenseNet:
    """DenseNet-121 (k = 32, blocks 6-12-24-16, 64 stem channels)."""
    return _densenet("densenet121", **kwargs)


@register_model(family="densenet", paper=PAPER, loads=("torchvision:densenet161", "timm:densenet161"))
def densenet161(**kwargs) -> DenseNet:
    """DenseNet-161 (k = 48, blocks 6-12-36-24, 96 stem channels)."""
    return _densenet("densenet161", **kwargs)


@register_model(family="densenet", paper=PAPER, loads=("torchvision:densenet169", "timm:densenet169"))
def densenet169(**kwargs) -> DenseNet:
    """DenseNet-169 (k = 32, blocks 6-12-32-32, 64 stem channels)."""
    return _densenet("densenet169", **kwargs)


@register_model(family="densenet", paper=PAPER, loads=("torchvision:densenet201", "timm:densenet201"))
def densenet201(**kwargs) -> DenseNet:
    """DenseNet-201 (k = 32, blocks 6-12-48-32, 64 stem channels)."""
    return _densenet("densenet201", **kwargs)


@register_model(family="densenet", paper=PAPER, native={"num_classes": 10})
def densenet_bc100_k12(**kwargs) -> DenseNet:
    """The CIFAR DenseNet-BC (L = 100, k = 12, three blocks of 16 bottleneck layers)."""
    return _densenet("densenet_bc100_k12", **kwargs)
