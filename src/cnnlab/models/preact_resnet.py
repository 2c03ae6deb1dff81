"""Pre-activation ResNets: He, Zhang, Ren, Sun, "Identity Mappings in Deep Residual Networks",
arXiv:1603.05027.

Each unit is BN-ReLU-conv three times (the bottleneck of Fig. 4e) added to an untouched shortcut, so
the identity path runs from the stem to the final BN-ReLU without a non-linearity on it.

* ``preact_resnet50``: the ImageNet network (7x7/2 stem conv + 3x3/2 max-pool, stages of 3-4-6-3
  bottlenecks of widths 64-128-256-512, output 4x); 25,549,352 parameters, as timm's ``resnetv2_50``,
  whose checkpoints ``convert_state_dict`` renames.
* ``preact_resnet164``: the CIFAR network (one 3x3 conv with 16 filters, 18 bottleneck units per
  stage, depth = 9n + 2, 64/128/256 output channels, projection shortcuts where the shape changes);
  1,703,258 parameters, 0.248 GMACs.

The stride sits on the 3x3 conv, as in timm's ``resnetv2_50`` and the paper's Torch code. Parameter
names follow ours for ResNet: ``stem``, ``layerN.M.{norm1,conv1,...}``, ``downsample``, ``norm``, ``fc``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..registry import register_model
from .base import CIFAR_CFG, ClassifierModel, DataConfig, Stage
from .layers import PreActResidual, init_weights, preact_projection, rename_keys


class PreActConfig(NamedTuple):
    depths: tuple[int, ...]  # bottleneck units per stage
    planes: tuple[int, ...]  # bottleneck widths per stage (output = 4x)
    stem: str  # "imagenet": 7x7/2 conv + 3x3/2 pool; "cifar": 3x3 conv, 16 channels


VARIANTS: dict[str, PreActConfig] = {
    "preact_resnet50": PreActConfig((3, 4, 6, 3), (64, 128, 256, 512), "imagenet"),
    "preact_resnet164": PreActConfig((18, 18, 18), (16, 32, 64), "cifar"),
}
STEMS = {  # name -> (builder, output channels, reduction)
    "imagenet": (
        lambda c: nn.Sequential(nn.Conv2d(c, 64, 7, 2, 3, bias=False), nn.MaxPool2d(3, 2, 1)),
        64,
        4,
    ),
    "cifar": (lambda c: nn.Sequential(nn.Conv2d(c, 16, 3, 1, 1, bias=False)), 16, 1),
}
# timm ``resnetv2_50`` -> our names.
RESNETV2_RENAMES = (
    (r"^stem\.conv\.", "stem.0."),
    (r"^stages\.(\d+)\.blocks\.", lambda m: f"layer{int(m[1]) + 1}."),
    (r"\.downsample\.conv\.", ".downsample."),
    (r"^head\.fc\.", "fc."),
)


class PreActBottleneck(PreActResidual):
    """BN-ReLU-1x1, BN-ReLU-3x3 (stride), BN-ReLU-1x1 (x4), added to an untouched shortcut (Fig. 4e).

    Where the shape changes, the 1x1 projection shortcut takes the pre-activated input, so the first
    BN-ReLU is shared by both paths (the paper's code for the unit after a stand-alone conv).
    """

    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = planes * self.expansion
        self.norm1, self.conv1 = nn.BatchNorm2d(in_ch), nn.Conv2d(in_ch, planes, 1, bias=False)
        self.norm2, self.conv2 = nn.BatchNorm2d(planes), nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.norm3, self.conv3 = nn.BatchNorm2d(planes), nn.Conv2d(planes, out_ch, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = preact_projection(in_ch, out_ch, stride)

    def residual(self, pre: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.relu(self.norm2(self.conv1(pre))))
        return self.conv3(self.relu(self.norm3(out)))


class PreActResNet(ClassifierModel):
    """Stem, stages of pre-activation bottlenecks (stride 2 on the 3x3 from stage 2), final BN-ReLU, GAP,
    fc."""

    classifier_path = "fc"

    def __init__(
        self, cfg: PreActConfig, num_classes: int = 1000, in_chans: int = 3, data: DataConfig | None = None
    ):
        super().__init__()
        make_stem, in_ch, reduction = STEMS[cfg.stem]
        self.num_classes = num_classes
        self.stem = make_stem(in_chans)
        stages = []
        for i, (planes, depth) in enumerate(zip(cfg.planes, cfg.depths)):
            stride = 1 if i == 0 else 2
            reduction *= stride
            units = [PreActBottleneck(in_ch if j == 0 else planes * 4, planes, stride if j == 0 else 1)
                     for j in range(depth)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*units))
            in_ch = planes * 4
            stages.append(Stage(f"layer{i + 1}", in_ch, reduction))
        self.norm = nn.BatchNorm2d(in_ch)  # the last unit's output is not yet normalised
        self.relu = nn.ReLU(inplace=True)
        self.num_features = in_ch
        self.fc = nn.Linear(in_ch, num_classes) if num_classes > 0 else nn.Identity()
        self.stages = tuple(stages)
        self.default_cfg = (data or DataConfig()).with_channels(in_chans)
        init_weights(
            self, conv="kaiming_fan_out", zero_conv_bias=False, zero_linear_bias=False
        )  # torchvision's

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i in range(len(self.stages)):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.relu(self.norm(x))

    def convert_state_dict(self, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """timm ``resnetv2_50`` keys are renamed; its 1x1-conv classifier becomes our linear one."""
        sd = rename_keys(sd, RESNETV2_RENAMES)
        if sd.get("fc.weight") is not None and sd["fc.weight"].ndim == 4:
            sd["fc.weight"] = sd["fc.weight"].flatten(1)
        return sd


PREACT = "He et al. 2016, arXiv:1603.05027"


@register_model(family="resnet", paper=PREACT, loads=("timm:resnetv2_50",))
def preact_resnet50(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> PreActResNet:
    """Pre-activation ResNet-50 for ImageNet: 25,549,352 parameters (= timm ``resnetv2_50``)."""
    return PreActResNet(VARIANTS["preact_resnet50"], num_classes, in_chans, **kwargs)


@register_model(family="resnet_cifar", paper=PREACT, native={"num_classes": 10})
def preact_resnet164(num_classes: int = 1000, in_chans: int = 3) -> PreActResNet:
    """Pre-activation ResNet-164 (bottleneck): 1,703,258 parameters at 10 classes."""
    return PreActResNet(VARIANTS["preact_resnet164"], num_classes, in_chans, data=CIFAR_CFG)
