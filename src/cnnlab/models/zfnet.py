"""ZFNet: Zeiler and Fergus, "Visualizing and Understanding Convolutional Networks",
arXiv:1311.2901 (ECCV 2014), the model of Fig. 3.

AlexNet re-tuned after looking at its filters with a deconvnet: conv1 is 7x7 with stride 2 (not 11x11/4)
and conv2 has stride 2, which keeps more mid-frequency information; conv3-5 are dense (one tower:
384-384-256 maps). Each of the first two layers is conv -> ReLU -> 3x3/2 max pool -> contrast
normalisation across feature maps; dropout 0.5 on fc6 and fc7. 62,357,608 parameters at 1000 classes.

Layer shapes at 224 (Fig. 3): 110x110x96 (conv1), 55x55x96 (pool1), 26x26x256 (conv2),
13x13x256 (pool2), 13x13x384, 13x13x384, 13x13x256 (conv3-5), 6x6x256 (pool5).

Deviations: the figure states no padding; conv1 has padding 1 and the pools round up (Caffe's
ceil mode), which are the choices that give the figure's 110 / 55 / 13 sizes. The "contrast
normalisation" is AlexNet's local response normalisation (k=2, n=5, alpha=1e-4, beta=0.75). An
adaptive 6x6 average pool (an identity at 224) lets the net run at other input sizes. The paper's
renormalisation of conv filters whose RMS exceeds 0.1 is a training rule and is not part of the model.
"""

from __future__ import annotations

from ..registry import register_model
from .base import ConvFCNet, DataConfig
from .layers import ConvRow, conv_stack, init_weights, renamed_kwarg

ZFNET = (
    ConvRow(96, 7, 2, 1, post=("pool", "lrn")),  # 224 -> 110 -> 55
    ConvRow(256, 5, 2, 0, post=("pool", "lrn")),  # 55 -> 26 -> 13
    ConvRow(384, 3, 1, 1),
    ConvRow(384, 3, 1, 1),
    ConvRow(256, 3, 1, 1, post=("pool",)),  # 13 -> 6
)
ZFNET_CFG = DataConfig(input_size=(3, 224, 224), crop_pct=0.875)  # 256 short side, 224 crops


class ZFNet(ConvFCNet):
    """The model of the paper's Fig. 3; ``drop_rate`` follows fc6 and fc7."""

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.5) -> None:
        features, stages = conv_stack(ZFNET, in_chans, ceil_pool=True)
        super().__init__(features, stages, 256, num_classes, ZFNET_CFG.with_channels(in_chans), pool_size=6,
                         drop_rate=drop_rate)
        init_weights(self, conv="normal_0.01", linear="normal_0.01")  # Section 3: N(0, 0.01), biases 0


@register_model(family="zfnet", paper="Zeiler & Fergus 2013, arXiv:1311.2901")
def zfnet(**kwargs) -> ZFNet:
    """The model of the paper's Fig. 3 (weights ~ N(0, 0.01), biases 0: Section 3)."""
    return ZFNet(**renamed_kwarg(kwargs, "dropout", "drop_rate", "zfnet"))
