"""VGG: Simonyan and Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", arXiv:1409.1556 (ICLR 2015).

Five stages of 3x3/1 convolutions (padding 1) each closed by a 2x2/2 max pool, then three FC
layers (4096-4096-classes, dropout 0.5 after the two hidden ones). The paper's configurations A, B,
D and E (Table 1) are ``vgg11``, ``vgg13``, ``vgg16`` and ``vgg19``; the ``_bn`` variants put a batch
norm after every convolution (not in the paper, which predates batch norm; torchvision's variants).

These are torchvision's models: same module layout and parameter names, so torchvision checkpoints
load as they are; an adaptive 7x7 average pool before fc6 (an identity at 224) lets them run at other
sizes. VGG-16: 138,357,544 parameters, 15.47 GMACs at 224; VGG-19: 143,667,240, 19.63 GMACs.
Deviation from the paper: configuration A-LRN and C (1x1 convolutions) are not offered.
"""

from __future__ import annotations

from torch import nn

from ..registry import register_model
from .base import ConvFCNet, DataConfig, Stage
from .layers import init_weights, renamed_kwarg

STAGE_WIDTHS = (64, 128, 256, 512, 512)
# Table 1: 3x3 convolutions per stage of configurations A, B, D, E
VGG_DEPTHS = {
    "vgg11": (1, 1, 2, 2, 2),  # A
    "vgg13": (2, 2, 2, 2, 2),  # B
    "vgg16": (2, 2, 3, 3, 3),  # D
    "vgg19": (2, 2, 4, 4, 4),  # E
}
VGG_CFG = DataConfig(input_size=(3, 224, 224), crop_pct=0.875)


def vgg_features(depths: tuple[int, ...], in_chans: int, batch_norm: bool) -> tuple[nn.Sequential, list]:
    """torchvision's ``features``: [conv (bn) relu] x depth, maxpool, per stage; stages = the pools."""
    layers: list[nn.Module] = []
    stages = []
    in_ch = in_chans
    for i, (depth, width) in enumerate(zip(depths, STAGE_WIDTHS)):
        for _ in range(depth):
            layers.append(nn.Conv2d(in_ch, width, 3, padding=1))
            layers += [nn.BatchNorm2d(width)] if batch_norm else []
            layers.append(nn.ReLU(inplace=True))
            in_ch = width
        layers.append(nn.MaxPool2d(2, 2))
        stages.append(Stage(f"features.{len(layers) - 1}", width, 2 ** (i + 1)))
    return nn.Sequential(*layers), stages


class VGG(ConvFCNet):
    """torchvision's VGG: ``depths`` 3x3 convs per stage (Table 1), optional batch norm, ``drop_rate``
    after fc6 and fc7."""

    def __init__(self, depths: tuple[int, ...], batch_norm: bool = False, num_classes: int = 1000,
                 in_chans: int = 3, drop_rate: float = 0.5) -> None:
        features, stages = vgg_features(depths, in_chans, batch_norm)
        super().__init__(features, stages, 512, num_classes, VGG_CFG.with_channels(in_chans), pool_size=7,
                         drop_rate=drop_rate)
        # torchvision's init: He (fan-out) convs, N(0, 0.01) FC weights, zero biases (the paper initialised
        # the deeper nets from configuration A, then found Glorot init works too)
        init_weights(self, conv="kaiming_fan_out", linear="normal_0.01")


def _vgg(name: str, batch_norm: bool, **kwargs) -> VGG:
    owner = name + ("_bn" if batch_norm else "")
    return VGG(VGG_DEPTHS[name], batch_norm, **renamed_kwarg(kwargs, "dropout", "drop_rate", owner))


PAPER = "Simonyan & Zisserman 2014, arXiv:1409.1556"


@register_model(family="vgg", paper=PAPER, loads=("torchvision:vgg11",))
def vgg11(**kwargs) -> VGG:
    """VGG-11, configuration A of Table 1 (torchvision layout)."""
    return _vgg("vgg11", batch_norm=False, **kwargs)


@register_model(family="vgg", paper=PAPER, loads=("torchvision:vgg11_bn",))
def vgg11_bn(**kwargs) -> VGG:
    """VGG-11 with batch norm after every conv (torchvision's ``vgg11_bn``)."""
    return _vgg("vgg11", batch_norm=True, **kwargs)


@register_model(family="vgg", paper=PAPER, loads=("torchvision:vgg13",))
def vgg13(**kwargs) -> VGG:
    """VGG-13, configuration B of Table 1 (torchvision layout)."""
    return _vgg("vgg13", batch_norm=False, **kwargs)


@register_model(family="vgg", paper=PAPER, loads=("torchvision:vgg13_bn",))
def vgg13_bn(**kwargs) -> VGG:
    """VGG-13 with batch norm after every conv (torchvision's ``vgg13_bn``)."""
    return _vgg("vgg13", batch_norm=True, **kwargs)


@register_model(family="vgg", paper=PAPER, loads=("torchvision:vgg16",))
def vgg16(**kwargs) -> VGG:
    """VGG-16, configuration D of Table 1 (torchvision layout)."""
    return _vgg("vgg16", batch_norm=False, **kwargs)


@register_model(family="vgg", paper=PAPER, loads=("torchvision:vgg16_bn",))
def vgg16_bn(**kwargs) -> VGG:
    """VGG-16 with batch norm after every conv (torchvision's ``vgg16_bn``)."""
    return _vgg("vgg16", batch_norm=True, **kwargs)


@register_model(family="vgg", paper=PAPER, loads=("torchvision:vgg19",))
def vgg19(**kwargs) -> VGG:
    """VGG-19, configuration E of Table 1 (torchvision layout)."""
    return _vgg("vgg19", batch_norm=False, **kwargs)


@register_model(family="vgg", paper=PAPER, loads=("torchvision:vgg19_bn",))
def vgg19_bn(**kwargs) -> VGG:
    """VGG-19 with batch norm after every conv (torchvision's ``vgg19_bn``)."""
    return _vgg("vgg19", batch_norm=True, **kwargs)
