"""ResNet and the families that are options of it, for ImageNet-size inputs.

* ResNet: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", arXiv:1512.03385.
* Wide ResNet: Zagoruyko, Komodakis, "Wide Residual Networks", arXiv:1605.07146 (torchvision's
  ImageNet form: the bottleneck's 3x3 twice as wide).
* ResNeXt: Xie, Girshick, Dollar, Tu, He, "Aggregated Residual Transformations for Deep Neural
  Networks", arXiv:1611.05431 (cardinality = ``groups`` of one grouped 3x3 conv, form (c) of Fig. 3).
* SENet: Hu, Shen, Sun, "Squeeze-and-Excitation Networks", arXiv:1709.01507 (an SE gate after the last
  BN of each residual branch, reduction r = 16).

Two placements of the stride in a bottleneck are offered, named plainly:

* **v1** (``*_v1``, the paper and its Caffe release): stride 2 on the first 1x1 conv, and the stem's
  max-pool is 3x3/2 without padding in ceil mode (Caffe's pooling; timm's ``legacy_seresnet50`` keeps it).
* **v1.5** (no suffix, torchvision's): stride 2 on the 3x3 conv and a padded max-pool. Same
  parameters, more MACs (ResNet-50: 4.09 G vs 3.86 G at 224x224), about +0.5% top-1.

Parameter names are torchvision's (``conv1``, ``bn1``, ``layer1.0.conv2``, ``downsample.0``,
``fc``); the SE gate is ``layerX.Y.se.fc1/fc2`` as in timm's ``seresnet50``. Other layouts (timm's legacy
SENet) are renamed by ``convert_state_dict`` when a checkpoint is loaded.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..errors import CnnlabError
from ..registry import register_model
from ..utils.log import notice
from .base import ClassifierModel, DataConfig, Stage
from .layers import ResidualBlock, SqueezeExcite, init_weights, rename_keys


class ResNetConfig(NamedTuple):
    """One row of the stage table; every field can be overridden as a ``create_model`` keyword."""

    block: str  # "basic" (3x3, 3x3) or "bottleneck" (1x1, 3x3, 1x1; expansion 4)
    depths: tuple[int, ...]  # residual blocks in conv2_x .. conv5_x (paper Table 1)
    cardinality: int = 1  # groups of the 3x3 conv (ResNeXt's C)
    base_width: int = 64  # width of one group of the 3x3 at stage 1 (ResNeXt's d; Wide ResNet: 128)
    stride_on_1x1: bool = False  # True: the paper's v1; False: torchvision's v1.5
    caffe_pool: bool = False  # stem pool 3x3/2, no padding, ceil mode (the v1 Caffe models)
    attn_layer: str | None = None  # "se": squeeze-and-excitation on each residual branch
    se_reduction: int = 16  # SE squeeze ratio r (SENet section 6.1)


D18, D34, D50, D101, D152 = (2, 2, 2, 2), (3, 4, 6, 3), (3, 4, 6, 3), (3, 4, 23, 3), (3, 8, 36, 3)
V1 = {"stride_on_1x1": True, "caffe_pool": True}
SE = {"attn_layer": "se"}

VARIANTS: dict[str, ResNetConfig] = {
    "resnet18": ResNetConfig("basic", D18),
    "resnet34": ResNetConfig("basic", D34),
    "resnet50": ResNetConfig("bottleneck", D50),
    "resnet101": ResNetConfig("bottleneck", D101),
    "resnet152": ResNetConfig("bottleneck", D152),
    "resnet50_v1": ResNetConfig("bottleneck", D50, **V1),
    "resnet101_v1": ResNetConfig("bottleneck", D101, **V1),
    "resnet152_v1": ResNetConfig("bottleneck", D152, **V1),
    "wide_resnet50_2": ResNetConfig("bottleneck", D50, base_width=128),
    "wide_resnet101_2": ResNetConfig("bottleneck", D101, base_width=128),
    "resnext50_32x4d": ResNetConfig("bottleneck", D50, cardinality=32, base_width=4),
    "resnext101_32x8d": ResNetConfig("bottleneck", D101, cardinality=32, base_width=8),
    "resnext101_64x4d": ResNetConfig("bottleneck", D101, cardinality=64, base_width=4),
    "se_resnet50": ResNetConfig("bottleneck", D50, **SE),
    "se_resnet101": ResNetConfig("bottleneck", D101, **SE),
    "se_resnext50_32x4d": ResNetConfig("bottleneck", D50, cardinality=32, base_width=4, **SE),
    "se_resnet50_v1": ResNetConfig("bottleneck", D50, **V1, **SE),
}
STAGE_PLANES = (64, 128, 256, 512)


ATTN_LAYERS = {"se": lambda channels, reduction: SqueezeExcite(channels, channels // reduction)}


def make_attn(cfg: ResNetConfig, channels: int) -> nn.Module | None:
    if cfg.attn_layer is None:
        return None
    if cfg.attn_layer not in ATTN_LAYERS:
        raise CnnlabError(
            f"unknown attn_layer {cfg.attn_layer!r}; choose one of {sorted(ATTN_LAYERS)} or None"
        )
    return ATTN_LAYERS[cfg.attn_layer](channels, cfg.se_reduction)


def projection(in_ch: int, out_ch: int, stride: int) -> nn.Sequential | None:
    """Shortcut option B of the paper: a 1x1 conv + BN only where the shape changes."""
    if stride == 1 and in_ch == out_ch:
        return None
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))


class BasicBlock(ResidualBlock):
    """Two 3x3 convs (ResNet-18/34); the stride is on the first."""

    expansion = 1

    def __init__(self, in_ch: int, planes: int, stride: int, cfg: ResNetConfig) -> None:
        super().__init__()
        if cfg.cardinality != 1 or cfg.base_width != 64:
            raise CnnlabError("the basic block has no cardinality/base_width; use a bottleneck variant")
        self.conv1 = nn.Conv2d(in_ch, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se = make_attn(cfg, planes)
        self.downsample = projection(in_ch, planes, stride)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))


class Bottleneck(ResidualBlock):
    """1x1 (reduce) - 3x3 (grouped for ResNeXt) - 1x1 (expand x4); see ``ResNetConfig`` for the stride."""

    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int, cfg: ResNetConfig) -> None:
        super().__init__()
        width = int(planes * cfg.base_width / 64) * cfg.cardinality
        out_ch = planes * self.expansion
        s1, s3 = (stride, 1) if cfg.stride_on_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(in_ch, width, 1, s1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, s3, 1, groups=cfg.cardinality, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.se = make_attn(cfg, out_ch)
        self.downsample = projection(in_ch, out_ch, stride)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        return self.bn3(self.conv3(x))


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}

# timm's legacy SENet (``legacy_seresnet50``) -> our names.
LEGACY_SENET_RENAMES = (
    (r"^layer0\.(conv1|bn1)\.", r"\1."),
    (r"\.se_module\.", ".se."),
    (r"^last_linear\.", "fc."),
)


def check_cfg(cfg: ResNetConfig) -> ResNetConfig:
    """Refuse a stage-table row (usually keyword overrides) that cannot build a network."""
    if cfg.block not in BLOCKS:
        raise CnnlabError(f"unknown block {cfg.block!r}; choose one of {sorted(BLOCKS)}")
    for field in ("cardinality", "base_width", "se_reduction"):
        value = getattr(cfg, field)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CnnlabError(f"{field} must be an integer >= 1, got {value!r}")
    if len(cfg.depths) != len(STAGE_PLANES) or any(not isinstance(d, int) or d < 1 for d in cfg.depths):
        raise CnnlabError(f"depths must be {len(STAGE_PLANES)} integers >= 1, got {cfg.depths!r}")
    return cfg


class ResNet(ClassifierModel):
    """7x7/2 stem, 3x3/2 max-pool, four stages of residual blocks (strides 1, 2, 2, 2), GAP, fc."""

    classifier_path = "fc"

    def __init__(self, cfg: ResNetConfig, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.0):
        super().__init__()
        block = BLOCKS[check_cfg(cfg).block]
        self.cfg, self.num_classes = cfg, num_classes
        self.conv1 = nn.Conv2d(in_chans, 64, 7, 2, 3, bias=False)  # H -> H/2
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        pool = nn.MaxPool2d(3, 2, 0, ceil_mode=True) if cfg.caffe_pool else nn.MaxPool2d(3, 2, 1)
        self.maxpool = pool  # H/2 -> H/4
        in_ch, stages = 64, []
        for i, (planes, depth) in enumerate(zip(STAGE_PLANES, cfg.depths)):
            stride = 1 if i == 0 else 2
            blocks = [
                block(in_ch if j == 0 else planes * block.expansion, planes, stride if j == 0 else 1, cfg)
                for j in range(depth)
            ]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            in_ch = planes * block.expansion
            stages.append(Stage(f"layer{i + 1}", in_ch, 4 * 2**i))
        self.num_features = in_ch
        self.head_drop = nn.Dropout(drop_rate) if drop_rate > 0 else None
        self.fc = nn.Linear(in_ch, num_classes) if num_classes > 0 else nn.Identity()
        self.stages = tuple(stages)
        self.default_cfg = DataConfig().with_channels(in_chans)
        init_weights(
            self, conv="kaiming_fan_out", zero_conv_bias=False, zero_linear_bias=False
        )  # torchvision's

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def convert_state_dict(self, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """torchvision and timm ``resnet*``/``seres*`` keys are ours; timm legacy SENet keys are renamed."""
        if "layer0.conv1.weight" in sd and not self.cfg.stride_on_1x1:
            notice(
                f"{self.model_name or 'model'}: a timm legacy SENet checkpoint holds v1 weights (stride on "
                "the 1x1); this model is v1.5, so outputs will differ - use the *_v1 variant"
            )
        return rename_keys(sd, LEGACY_SENET_RENAMES)


RESNET = "He et al. 2015, arXiv:1512.03385"
WRN = "Zagoruyko & Komodakis 2016, arXiv:1605.07146"
RESNEXT = "Xie et al. 2016, arXiv:1611.05431"
SENET = "Hu et al. 2017, arXiv:1709.01507"


def _resnet(name: str, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """The row ``name`` of :data:`VARIANTS`; keywords that name a ``ResNetConfig`` field override it."""
    cfg = VARIANTS[name]
    cfg = cfg._replace(**{k: kwargs.pop(k) for k in list(kwargs) if k in cfg._fields})
    return ResNet(cfg, num_classes, in_chans, **kwargs)


@register_model(family="resnet", paper=RESNET, loads=("torchvision:resnet18", "timm:resnet18"))
def resnet18(**kwargs) -> ResNet:
    """ResNet-18: basic blocks (2, 2, 2, 2)."""
    return _resnet("resnet18", **kwargs)


@register_model(family="resnet", paper=RESNET, loads=("torchvision:resnet34", "timm:resnet34"))
def resnet34(**kwargs) -> ResNet:
    """ResNet-34: basic blocks (3, 4, 6, 3)."""
    return _resnet("resnet34", **kwargs)


@register_model(family="resnet", paper=RESNET, loads=("torchvision:resnet50", "timm:resnet50"))
def resnet50(**kwargs) -> ResNet:
    """ResNet-50 v1.5 (torchvision: stride on the 3x3): bottlenecks (3, 4, 6, 3)."""
    return _resnet("resnet50", **kwargs)


@register_model(family="resnet", paper=RESNET, loads=("torchvision:resnet101", "timm:resnet101"))
def resnet101(**kwargs) -> ResNet:
    """ResNet-101 v1.5: bottlenecks (3, 4, 23, 3)."""
    return _resnet("resnet101", **kwargs)


@register_model(family="resnet", paper=RESNET, loads=("torchvision:resnet152", "timm:resnet152"))
def resnet152(**kwargs) -> ResNet:
    """ResNet-152 v1.5: bottlenecks (3, 8, 36, 3)."""
    return _resnet("resnet152", **kwargs)


@register_model(family="resnet", paper=RESNET)
def resnet50_v1(**kwargs) -> ResNet:
    """ResNet-50 v1 (the paper: stride on the first 1x1, Caffe pooling)."""
    return _resnet("resnet50_v1", **kwargs)


@register_model(family="resnet", paper=RESNET)
def resnet101_v1(**kwargs) -> ResNet:
    """ResNet-101 v1 (the paper: stride on the first 1x1, Caffe pooling)."""
    return _resnet("resnet101_v1", **kwargs)


@register_model(family="resnet", paper=RESNET)
def resnet152_v1(**kwargs) -> ResNet:
    """ResNet-152 v1 (the paper: stride on the first 1x1, Caffe pooling)."""
    return _resnet("resnet152_v1", **kwargs)


@register_model(family="resnet", paper=WRN, loads=("torchvision:wide_resnet50_2",))
def wide_resnet50_2(**kwargs) -> ResNet:
    """Wide ResNet-50-2: ResNet-50 v1.5 with the 3x3 twice as wide."""
    return _resnet("wide_resnet50_2", **kwargs)


@register_model(family="resnet", paper=WRN, loads=("torchvision:wide_resnet101_2",))
def wide_resnet101_2(**kwargs) -> ResNet:
    """Wide ResNet-101-2: ResNet-101 v1.5 with the 3x3 twice as wide."""
    return _resnet("wide_resnet101_2", **kwargs)


@register_model(family="resnet", paper=RESNEXT, loads=("torchvision:resnext50_32x4d",))
def resnext50_32x4d(**kwargs) -> ResNet:
    """ResNeXt-50 32x4d: cardinality 32, 4 channels per group at stage 1, v1.5."""
    return _resnet("resnext50_32x4d", **kwargs)


@register_model(family="resnet", paper=RESNEXT, loads=("torchvision:resnext101_32x8d",))
def resnext101_32x8d(**kwargs) -> ResNet:
    """ResNeXt-101 32x8d: cardinality 32, 8 channels per group at stage 1, v1.5."""
    return _resnet("resnext101_32x8d", **kwargs)


@register_model(family="resnet", paper=RESNEXT, loads=("torchvision:resnext101_64x4d",))
def resnext101_64x4d(**kwargs) -> ResNet:
    """ResNeXt-101 64x4d: cardinality 64, 4 channels per group at stage 1, v1.5."""
    return _resnet("resnext101_64x4d", **kwargs)


@register_model(family="resnet", paper=SENET, loads=("timm:seresnet50",))
def se_resnet50(**kwargs) -> ResNet:
    """SE-ResNet-50 v1.5: an SE gate (r = 16) on every residual branch."""
    return _resnet("se_resnet50", **kwargs)


@register_model(family="resnet", paper=SENET, loads=("timm:seresnet101",))
def se_resnet101(**kwargs) -> ResNet:
    """SE-ResNet-101 v1.5: an SE gate (r = 16) on every residual branch."""
    return _resnet("se_resnet101", **kwargs)


@register_model(family="resnet", paper=SENET, loads=("timm:seresnext50_32x4d",))
def se_resnext50_32x4d(**kwargs) -> ResNet:
    """SE-ResNeXt-50 32x4d v1.5: ResNeXt-50 with SE gates (r = 16)."""
    return _resnet("se_resnext50_32x4d", **kwargs)


@register_model(family="resnet", paper=SENET, loads=("timm:legacy_seresnet50",))
def se_resnet50_v1(**kwargs) -> ResNet:
    """SE-ResNet-50 v1 (the paper's Caffe model, timm ``legacy_seresnet50``)."""
    return _resnet("se_resnet50_v1", **kwargs)
