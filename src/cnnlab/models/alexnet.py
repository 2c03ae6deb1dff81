"""AlexNet: Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep Convolutional Neural
Networks", NeurIPS 2012 (no arXiv id), and the single-tower variant of Krizhevsky, "One weird trick
for parallelizing convolutional neural networks", arXiv:1404.5997.

Two models, named plainly:

* ``alexnet`` is torchvision's variant (from the "one weird trick" paper): one tower, widths
  64-192-384-256-256, no response normalisation, dropout *before* the two hidden FC layers and an
  adaptive 6x6 average pool. Parameter names equal torchvision's, so its checkpoints load as they are.
  61,100,840 parameters at 1000 classes.
* ``alexnet_2012`` is the 2012 paper (Section 3, Fig. 2): 227x227 input (the figure's "224" does not
  give 55x55 after an 11x11/4 convolution), 96-256-384-384-256 kernels, the two GPU towers as
  ``groups=2`` on conv2, conv4 and conv5 (conv3 and the FC layers see both towers), local response
  normalisation after conv1 and conv2 followed by overlapping 3x3/2 max pooling, and dropout 0.5 on
  the outputs of fc6 and fc7. 60,965,224 parameters at 1000 classes; 0.724 GMACs at 227.

  Deviations: (1) response normalisation uses the paper's formula b = a / (k + alpha * sum a^2)^beta
  with k=2, n=5, alpha=1e-4, beta=0.75; PyTorch's ``LocalResponseNorm`` divides alpha by n, so it is
  given alpha = 5e-4. (2) An adaptive 6x6 average pool before fc6 (an identity at 227) lets the net
  run at other sizes; the paper's shapes hold at 227 only and the stack needs at least 67 pixels.

Layer shapes of ``alexnet_2012`` at 227 (paper): 55x55x96, 27x27x256, 13x13x384, 13x13x384,
13x13x256, 6x6x256 (after pool5).

``ConvFCNet`` (a conv stack, an adaptive pool and three FC layers; ``base.py``) is shared with ZFNet and VGG.
"""

from __future__ import annotations

from ..registry import register_model
from .base import ConvFCNet, DataConfig
from .layers import ConvRow, conv_stack, init_weights, renamed_kwarg

# torchvision's single-tower AlexNet (one weird trick, arXiv:1404.5997)
ALEXNET_TV = (
    ConvRow(64, 11, 4, 2, post=("pool",)),
    ConvRow(192, 5, 1, 2, post=("pool",)),
    ConvRow(384, 3, 1, 1),
    ConvRow(256, 3, 1, 1),
    ConvRow(256, 3, 1, 1, post=("pool",)),
)
# The 2012 paper, Fig. 2 and Section 3.5 (conv3 is the only conv that sees both towers)
ALEXNET_2012 = (
    ConvRow(96, 11, 4, 0, post=("lrn", "pool")),  # 227 -> 55 -> 27
    ConvRow(256, 5, 1, 2, groups=2, post=("lrn", "pool")),  # 27 -> 13
    ConvRow(384, 3, 1, 1),
    ConvRow(384, 3, 1, 1, groups=2),
    ConvRow(256, 3, 1, 1, groups=2, post=("pool",)),  # 13 -> 6
)

# 2012 paper, Section 5: weights ~ N(0, 0.01), and biases 1 in conv2, conv4, conv5, fc6, fc7 (numbered
# from conv1 = 0) so that the ReLUs start with positive inputs; the other biases 0
PAPER_BIAS_ONE = (1, 3, 4, 5, 6)


TV_CFG = DataConfig(input_size=(3, 224, 224), crop_pct=0.875)
PAPER_CFG = DataConfig(input_size=(3, 227, 227), crop_pct=227 / 256)  # 256x256 images, 227 crops


class AlexNet(ConvFCNet):
    """torchvision's single-tower AlexNet; ``drop_rate`` is the dropout before each hidden FC layer."""

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.5) -> None:
        features, stages = conv_stack(ALEXNET_TV, in_chans)
        super().__init__(features, stages, 256, num_classes, TV_CFG.with_channels(in_chans), pool_size=6,
                         drop_rate=drop_rate, dropout_first=True)


class AlexNet2012(ConvFCNet):
    """The 2012 paper's AlexNet (two towers as groups=2, LRN); ``drop_rate`` follows fc6 and fc7."""

    min_input_size = 67  # the smallest input that survives the three 3x3/2 pools

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.5) -> None:
        features, stages = conv_stack(ALEXNET_2012, in_chans)
        super().__init__(features, stages, 256, num_classes, PAPER_CFG.with_channels(in_chans), pool_size=6,
                         drop_rate=drop_rate)
        init_weights(self, conv="normal_0.01", linear="normal_0.01", bias_one=PAPER_BIAS_ONE)


PAPER = "Krizhevsky et al. 2012, NeurIPS (no arXiv)"


@register_model(family="alexnet", paper="Krizhevsky 2014, arXiv:1404.5997", loads=("torchvision:alexnet",))
def alexnet(**kwargs) -> AlexNet:
    """torchvision's single-tower AlexNet (loads its checkpoints)."""
    return AlexNet(**renamed_kwarg(kwargs, "dropout", "drop_rate", "alexnet"))


@register_model(family="alexnet", paper=PAPER)
def alexnet_2012(**kwargs) -> AlexNet2012:
    """The 2012 paper's AlexNet: 227 input, groups=2 towers, LRN, overlapping pooling, dropout."""
    return AlexNet2012(**renamed_kwarg(kwargs, "dropout", "drop_rate", "alexnet_2012"))
