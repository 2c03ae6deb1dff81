"""MobileNet v1 and v2.

* v1: Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
  Applications", arXiv:1704.04861 (Table 1: the body; Tables 6-7: width and resolution multipliers).
* v2: Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", arXiv:1801.04381
  (Table 2: the bottleneck rows).

A depthwise convolution is one ``nn.Conv2d`` with ``groups = channels`` (no Python loop over groups).

v1 notes and deviations:

* The resolution multiplier of the paper is simply the input size (224/192/160/128); it lives in the
  default data config of the registered variants ``mobilenet_v1_<width*100>_<size>``.
* Activation: the paper writes ReLU; the TensorFlow reference code and timm use ReLU6, which is the
  default here (``act="relu"`` gives the paper's text).
* Table 1 prints stride 2 for the second-last depthwise layer; the reference code (and every released
  checkpoint) uses stride 1 there, so the network reduces the input by 32, as here.
* Channels are ``make_divisible(c * width_mult, 8)``; for the paper's multipliers (0.25, 0.5, 0.75,
  1.0) this equals the paper's ``c * width_mult``.
* Parameter names: ``stem.0``/``stem.1`` and ``blocks.S.B.{conv_dw,bn1,conv_pw,bn2}``, ``classifier``.
  timm's ``mobilenetv1_100`` differs only in the stem (``conv_stem``/``bn1``): ``convert_state_dict``
  renames it.

v2 follows torchvision's ``mobilenet_v2`` names (``features.N``, ``classifier.1``) and its rounding.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import CnnlabError
from ..registry import register_model
from .base import HALF_MEAN, HALF_STD, IMAGENET_MEAN, IMAGENET_STD, ClassifierModel, DataConfig, Stage
from .layers import ConvBNAct, init_weights, make_divisible

ACTIVATIONS = {"relu6": nn.ReLU6, "relu": nn.ReLU}


def check_width_mult(width_mult) -> float:
    """A width multiplier must be a finite number in (0, 4]; the papers use 0.25 ... 1.4."""
    ok = (
        isinstance(width_mult, int | float) and not isinstance(width_mult, bool) and math.isfinite(width_mult)
    )
    if not ok or not 0 < width_mult <= 4:
        raise CnnlabError(f"width_mult must be a number in (0, 4] (the paper uses 0.25, 0.5, 0.75, 1.0), "
                          f"got {width_mult!r}")
    return float(width_mult)


# ---------------------------------------------------------------------------------------------------
# MobileNet v1
# ---------------------------------------------------------------------------------------------------


V1_STEM = 32  # channels of the full 3x3/2 convolution
V1_STAGES = (  # (out_channels, stride of the first layer, layers)
    (64, 1, 1),
    (128, 2, 2),
    (256, 2, 2),
    (512, 2, 6),
    (1024, 2, 2),
)
V1_VARIANTS = {  # name -> (width_mult, input size); the paper's Tables 6, 7 and 9 combinations
    "mobilenet_v1": (1.0, 224),
    "mobilenet_v1_075_224": (0.75, 224),
    "mobilenet_v1_050_224": (0.5, 224),
    "mobilenet_v1_025_224": (0.25, 224),
    "mobilenet_v1_100_192": (1.0, 192),
    "mobilenet_v1_100_160": (1.0, 160),
    "mobilenet_v1_100_128": (1.0, 128),
    "mobilenet_v1_050_160": (0.5, 160),
    "mobilenet_v1_025_128": (0.25, 128),
}


class DepthwiseSeparable(nn.Module):
    """3x3 depthwise conv -> BN -> act -> 1x1 pointwise conv -> BN -> act (paper Fig. 3, right)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, act_layer: type[nn.Module]) -> None:
        super().__init__()
        self.conv_dw = nn.Conv2d(in_ch, in_ch, 3, stride, 1, groups=in_ch, bias=False)
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.act1 = act_layer(inplace=True)
        self.conv_pw = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.act2 = act_layer(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv_dw(x)))
        return self.act2(self.bn2(self.conv_pw(x)))


class MobileNetV1(ClassifierModel):
    """MobileNet v1 (see the module docstring); ``width_mult`` is the paper's alpha."""

    classifier_path = "classifier"

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, width_mult: float = 1.0,
                 input_size: int = 224, act: str = "relu6", drop_rate: float = 0.0) -> None:
        super().__init__()
        width_mult = check_width_mult(width_mult)
        if act not in ACTIVATIONS:
            raise CnnlabError(f"act must be one of {', '.join(ACTIVATIONS)}, got {act!r}")
        act_layer = ACTIVATIONS[act]
        ch = make_divisible(V1_STEM * width_mult)
        self.stem = ConvBNAct(in_chans, ch, 3, 2, act_layer=act_layer)  # /2
        stages, stage_rows, reduction = [], [Stage("stem", ch, 2)], 2
        for i, (out, stride, n) in enumerate(V1_STAGES):
            out = make_divisible(out * width_mult)
            layers = [DepthwiseSeparable(ch if j == 0 else out, out, stride if j == 0 else 1, act_layer)
                      for j in range(n)]
            stages.append(nn.Sequential(*layers))
            reduction *= stride
            stage_rows.append(Stage(f"blocks.{i}", out, reduction))
            ch = out
        self.blocks = nn.Sequential(*stages)
        self.num_classes, self.num_features = num_classes, ch
        self.head_drop = nn.Dropout(drop_rate) if drop_rate > 0 else None
        self.classifier = nn.Linear(ch, num_classes) if num_classes > 0 else nn.Identity()
        self.stages = tuple(stage_rows)
        cfg = DataConfig((3, input_size, input_size), HALF_MEAN, HALF_STD, "bilinear", 0.875)
        self.default_cfg = cfg.with_channels(in_chans)
        init_weights(self, conv="kaiming_fan_out", linear="normal_0.01")  # torchvision's

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))

    def convert_state_dict(self, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """timm ``mobilenetv1_*``: ``conv_stem``/``bn1`` -> ``stem.0``/``stem.1``; others unchanged."""
        renames = {"conv_stem.": "stem.0.", "bn1.": "stem.1."}
        out = {}
        for k, v in sd.items():
            prefix = next((p for p in renames if k.startswith(p)), None)
            out[renames[prefix] + k[len(prefix):] if prefix else k] = v
        return out


# ---------------------------------------------------------------------------------------------------
# MobileNet v2
# ---------------------------------------------------------------------------------------------------

V2_STEM, V2_LAST = 32, 1280
V2_ROWS = (  # Table 2: (expansion t, output channels c, repeats n, first stride s)
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class InvertedResidual(nn.Module):
    """1x1 expansion (skipped when t = 1) -> 3x3 depthwise -> linear 1x1 projection; residual when
    the shape is kept. Children follow torchvision (``conv.N``)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = round(in_ch * expand_ratio)
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNAct(in_ch, hidden, 1, act_layer=nn.ReLU6))
        layers += [ConvBNAct(hidden, hidden, 3, stride, groups=hidden, act_layer=nn.ReLU6),
                   nn.Conv2d(hidden, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)]
        self.conv = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(ClassifierModel):
    """MobileNet v2 with torchvision's parameter names; ``width_mult`` scales every layer but the
    last 1x1 (1280 channels unless ``width_mult > 1``), as in the paper."""

    classifier_path = "classifier.1"

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, width_mult: float = 1.0,
                 drop_rate: float = 0.2, round_nearest: int = 8) -> None:
        super().__init__()
        width_mult = check_width_mult(width_mult)
        ch = make_divisible(V2_STEM * width_mult, round_nearest)
        last = make_divisible(V2_LAST * max(1.0, width_mult), round_nearest)
        layers: list[nn.Module] = [ConvBNAct(in_chans, ch, 3, 2, act_layer=nn.ReLU6)]
        stage_rows, reduction = [Stage("features.0", ch, 2)], 2
        for t, c, n, s in V2_ROWS:
            out = make_divisible(c * width_mult, round_nearest)
            layers += [InvertedResidual(ch if j == 0 else out, out, s if j == 0 else 1, t) for j in range(n)]
            reduction *= s
            stage_rows.append(Stage(f"features.{len(layers) - 1}", out, reduction))
            ch = out
        layers.append(ConvBNAct(ch, last, 1, act_layer=nn.ReLU6))
        stage_rows.append(Stage(f"features.{len(layers) - 1}", last, reduction))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(drop_rate),
                                        nn.Linear(last, num_classes) if num_classes > 0 else nn.Identity())
        self.num_classes, self.num_features = num_classes, last
        self.stages = tuple(stage_rows)
        self.default_cfg = DataConfig((3, 224, 224), IMAGENET_MEAN, IMAGENET_STD, "bilinear",
                                      0.875).with_channels(in_chans)
        init_weights(self, conv="kaiming_fan_out", linear="normal_0.01")  # torchvision's

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return x if pre_logits else self.classifier(x)


# ---------------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------------

PAPER_V1 = "Howard et al. 2017, arXiv:1704.04861"
PAPER_V2 = "Sandler et al. 2018, arXiv:1801.04381"



def _mobilenet_v1(name: str, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> MobileNetV1:
    width_mult, input_size = V1_VARIANTS[name]
    kwargs = {"width_mult": width_mult, "input_size": input_size, **kwargs}
    return MobileNetV1(num_classes, in_chans, **kwargs)


@register_model(family="mobilenet", paper=PAPER_V1, loads=("timm:mobilenetv1_100",))
def mobilenet_v1(**kwargs) -> MobileNetV1:
    return _mobilenet_v1("mobilenet_v1", **kwargs)


@register_model(family="mobilenet", paper=PAPER_V1)
def mobilenet_v1_075_224(**kwargs) -> MobileNetV1:
    return _mobilenet_v1("mobilenet_v1_075_224", **kwargs)


@register_model(family="mobilenet", paper=PAPER_V1)
def mobilenet_v1_050_224(**kwargs) -> MobileNetV1:
    return _mobilenet_v1("mobilenet_v1_050_224", **kwargs)


@register_model(family="mobilenet", paper=PAPER_V1)
def mobilenet_v1_025_224(**kwargs) -> MobileNetV1:
    return _mobilenet_v1("mobilenet_v1_025_224", **kwargs)


@register_model(family="mobilenet", paper=PAPER_V1, loads=("timm:mobilenetv1_100",))
def mobilenet_v1_100_192(**kwargs) -> MobileNetV1:
    return _mobilenet_v1("mobilenet_v1_100_192", **kwargs)


@register_model(family="mobilenet", paper=PAPER_V1, loads=("timm:mobilenetv1_100",))
def mobilenet_v1_100_160(**kwargs) -> MobileNetV1:
    return _mobilenet_v1("mobilenet_v1_100_160", **kwargs)


@register_model(family="mobilenet", paper=PAPER_V1, loads=("timm:mobilenetv1_100",))
def mobilenet_v1_100_128(**kwargs) -> MobileNetV1:
    return _mobilenet_v1("mobilenet_v1_100_128", **kwargs)


@register_model(family="mobilenet", paper=PAPER_V1)
def mobilenet_v1_050_160(**kwargs) -> MobileNetV1:
    return _mobilenet_v1("mobilenet_v1_050_160", **kwargs)


@register_model(family="mobilenet", paper=PAPER_V1)
def mobilenet_v1_025_128(**kwargs) -> MobileNetV1:
    return _mobilenet_v1("mobilenet_v1_025_128", **kwargs)


@register_model(family="mobilenet", paper=PAPER_V2, loads=("torchvision:mobilenet_v2",))
def mobilenet_v2(num_classes: int = 1000, in_chans: int = 3, **kw) -> MobileNetV2:
    return MobileNetV2(num_classes, in_chans, **kw)
