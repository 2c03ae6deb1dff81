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

``ConvFCNet`` (a conv stack, an adaptive pool and three FC layers) is shared with ZFNet and VGG.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..registry import register_model
from .base import ClassifierModel, DataConfig, Stage
from .layers import init_weights


class ConvRow(NamedTuple):
    """One convolution of a table; ``post`` names what follows the ReLU, in order ("lrn", "pool")."""

    out_ch: int
    kernel: int
    stride: int = 1
    padding: int = 0
    groups: int = 1  # 2 = the two GPU towers of the 2012 paper
    post: tuple[str, ...] = ()


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

# paper Section 3.3: k=2, n=5, alpha=1e-4, beta=0.75; PyTorch divides alpha by n, hence 5 * 1e-4
PAPER_LRN = {"size": 5, "alpha": 5e-4, "beta": 0.75, "k": 2.0}
POST_LAYERS = {
    "lrn": lambda ceil: nn.LocalResponseNorm(**PAPER_LRN),
    "pool": lambda ceil: nn.MaxPool2d(3, 2, ceil_mode=ceil),  # overlapping pooling, z=3, s=2
}


def conv_stack(rows, in_chans: int, ceil_pool: bool = False) -> tuple[nn.Sequential, tuple[Stage, ...]]:
    """Build ``Conv-ReLU-[post...]`` per row; stages = the last module at each total stride."""
    layers: list[nn.Module] = []
    ends: dict[int, Stage] = {}  # reduction -> last stage at it
    in_ch, reduction = in_chans, 1
    for row in rows:
        layers += [nn.Conv2d(in_ch, row.out_ch, row.kernel, row.stride, row.padding, groups=row.groups),
                   nn.ReLU(inplace=True)]
        reduction *= row.stride
        for kind in row.post:
            layers.append(POST_LAYERS[kind](ceil_pool))
            reduction *= 2 if kind == "pool" else 1
        ends[reduction] = Stage(f"features.{len(layers) - 1}", row.out_ch, reduction)
        in_ch = row.out_ch
    return nn.Sequential(*layers), tuple(ends.values())


def fc_head(in_features: int, hidden: int, num_classes: int, drop: float, dropout_first: bool) -> nn.Sequential:
    """Three FC layers as indices 0-6 (logits at ``6``), dropout before (torchvision AlexNet) or
    after (the papers, torchvision VGG) each hidden ReLU."""
    last = nn.Linear(hidden, num_classes) if num_classes > 0 else nn.Identity()
    if dropout_first:
        return nn.Sequential(nn.Dropout(drop), nn.Linear(in_features, hidden), nn.ReLU(inplace=True),
                             nn.Dropout(drop), nn.Linear(hidden, hidden), nn.ReLU(inplace=True), last)
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Dropout(drop),
                         nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(drop), last)


class ConvFCNet(ClassifierModel):
    """``features`` (a conv stack) -> ``avgpool`` (adaptive) -> ``classifier`` (three FC layers).

    The module names are torchvision's (AlexNet, VGG). ``forward_head(pre_logits=True)`` returns the
    output of the second hidden FC layer (``num_features`` = 4096).
    """

    classifier_path = "classifier.6"

    def __init__(self, features: nn.Sequential, stages, out_ch: int, num_classes: int, cfg: DataConfig,
                 pool_size: int, dropout: float = 0.5, dropout_first: bool = False) -> None:
        super().__init__()
        self.num_classes, self.num_features = num_classes, 4096
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((pool_size, pool_size))
        self.classifier = fc_head(out_ch * pool_size * pool_size, 4096, num_classes, dropout, dropout_first)
        self.stages = tuple(stages)
        self.default_cfg = cfg

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        for layer in self.classifier[:-1]:
            x = layer(x)
        return x if pre_logits else self.classifier[-1](x)


# 2012 paper, Section 5: weights ~ N(0, 0.01), and biases 1 in conv2, conv4, conv5, fc6, fc7 (numbered
# from conv1 = 0) so that the ReLUs start with positive inputs; the other biases 0
PAPER_BIAS_ONE = (1, 3, 4, 5, 6)


TV_CFG = DataConfig(input_size=(3, 224, 224), crop_pct=0.875)
PAPER_CFG = DataConfig(input_size=(3, 227, 227), crop_pct=227 / 256)  # 256x256 images, 227 crops


class AlexNet2012(ConvFCNet):
    """The 2012 paper's AlexNet (two towers as groups=2, LRN); see the module docstring."""

    min_input_size = 67  # the smallest input that survives the three 3x3/2 pools


PAPER = "Krizhevsky et al. 2012, NeurIPS (no arXiv)"


@register_model(family="alexnet", paper="Krizhevsky 2014, arXiv:1404.5997", loads=("torchvision:alexnet",))
def alexnet(num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> ConvFCNet:
    """torchvision's single-tower AlexNet (loads its checkpoints)."""
    features, stages = conv_stack(ALEXNET_TV, in_chans)
    return ConvFCNet(features, stages, 256, num_classes, TV_CFG.with_channels(in_chans), pool_size=6,
                     dropout=dropout, dropout_first=True)


@register_model(family="alexnet", paper=PAPER)
def alexnet_2012(num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> AlexNet2012:
    """The 2012 paper's AlexNet: 227 input, groups=2 towers, LRN, overlapping pooling, dropout."""
    features, stages = conv_stack(ALEXNET_2012, in_chans)
    model = AlexNet2012(features, stages, 256, num_classes, PAPER_CFG.with_channels(in_chans), pool_size=6,
                        dropout=dropout)
    return init_weights(model, conv="normal_0.01", linear="normal_0.01", bias_one=PAPER_BIAS_ONE)
