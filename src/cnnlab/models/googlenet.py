"""GoogLeNet (Inception v1): Szegedy et al., "Going Deeper with Convolutions", arXiv:1409.4842.

Two models, named plainly:

* ``googlenet`` is torchvision's: every convolution is conv (no bias) -> batch norm (eps 1e-3) ->
  ReLU, and the "5x5" branch of each inception module uses a 3x3 kernel (a known torchvision bug,
  pytorch/vision#906, kept so that its checkpoints load as they are). No LRN; 2x2/2 max pool before
  inception 5a; dropout 0.2 before the classifier. 6,624,904 parameters without the aux heads.
* ``googlenet_paper`` is the paper's Table 1: the 5x5 branch is a real 5x5 convolution, local response
  normalisation follows pool1 and conv2 (the 3x3 reduce + 3x3 pair), all pools are 3x3/2 and dropout
  is 0.4. 7,005,832 parameters without the aux heads. Deviation: batch norm (not in the 2014 paper)
  is kept by default, as in torchvision, so that the net trains without the paper's schedule; the
  reference count includes it. ``batch_norm=False`` gives the paper's conv + bias layers instead.

Auxiliary classifiers (``aux_logits=True``, the default, like torchvision): after inception 4a and 4d
a small head (5x5/3 average pool -> 1x1 conv 128 -> FC 1024 -> dropout 0.7 -> FC classes) predicts
the classes too; they add about 6.38M parameters. They run in training mode only: then ``forward``
returns :class:`GoogLeNetOutputs` ``(logits, aux1, aux2)`` - the main logits first, then the aux
logits from 4a and 4d (a trainer weights their losses by 0.3, as the paper does). In eval mode, or
with ``aux_logits=False``, ``forward`` returns the logits tensor. Checkpoints with aux keys load into
a model without aux heads (the keys are dropped with a notice) and checkpoints without them load into
a model with aux heads (the heads keep their fresh initialisation, with a notice).

``drop_rate`` overrides the dropout before the classifier (0.2 / 0.4); the aux heads keep 0.7.

``transform_input=True`` (torchvision's option, off by default) re-normalises an input that was
normalised with ImageNet mean/std to (x - 0.5) / 0.5, as torchvision's ported weights expect.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CnnlabError
from ..registry import register_model
from ..utils.log import notice
from .base import IMAGENET_MEAN, IMAGENET_STD, ClassifierModel, DataConfig, Stage
from .layers import init_weights


class GoogLeNetOutputs(NamedTuple):
    """Training-mode output with aux heads: main logits first, then the aux logits (4a, 4d)."""

    logits: torch.Tensor
    aux1: torch.Tensor
    aux2: torch.Tensor


class InceptionRow(NamedTuple):
    """Table 1 of the paper: output channels of the four branches of one inception module."""

    ch1x1: int
    ch3x3red: int
    ch3x3: int
    ch5x5red: int
    ch5x5: int
    pool_proj: int


INCEPTION = {  # name -> (in_channels, row)
    "inception3a": (192, InceptionRow(64, 96, 128, 16, 32, 32)),
    "inception3b": (256, InceptionRow(128, 128, 192, 32, 96, 64)),
    "inception4a": (480, InceptionRow(192, 96, 208, 16, 48, 64)),
    "inception4b": (512, InceptionRow(160, 112, 224, 24, 64, 64)),
    "inception4c": (512, InceptionRow(128, 128, 256, 24, 64, 64)),
    "inception4d": (512, InceptionRow(112, 144, 288, 32, 64, 64)),
    "inception4e": (528, InceptionRow(256, 160, 320, 32, 128, 128)),
    "inception5a": (832, InceptionRow(256, 160, 320, 32, 128, 128)),
    "inception5b": (832, InceptionRow(384, 192, 384, 48, 128, 128)),
}
LRN = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 1.0}  # the reference Caffe model's norm1/norm2


class BasicConv2d(nn.Module):
    """conv -> BN(eps 1e-3) -> ReLU (torchvision's names), or conv(+bias) -> ReLU without BN."""

    def __init__(self, in_ch: int, out_ch: int, batch_norm: bool = True, **conv_kw) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, bias=not batch_norm, **conv_kw)
        self.bn = nn.BatchNorm2d(out_ch, eps=0.001) if batch_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    """Four parallel branches concatenated on channels: 1x1 | 1x1-3x3 | 1x1-kxk | pool-1x1."""

    def __init__(self, in_ch: int, row: InceptionRow, k5: int, batch_norm: bool) -> None:
        super().__init__()
        bn = batch_norm
        self.branch1 = BasicConv2d(in_ch, row.ch1x1, bn, kernel_size=1)
        self.branch2 = nn.Sequential(BasicConv2d(in_ch, row.ch3x3red, bn, kernel_size=1),
                                     BasicConv2d(row.ch3x3red, row.ch3x3, bn, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(
            BasicConv2d(in_ch, row.ch5x5red, bn, kernel_size=1),
            BasicConv2d(row.ch5x5red, row.ch5x5, bn, kernel_size=k5, padding=k5 // 2),
        )
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, padding=1, ceil_mode=True),
                                     BasicConv2d(in_ch, row.pool_proj, bn, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Aux head: avg pool to 4x4 -> 1x1 conv 128 -> FC 1024 -> ReLU -> dropout -> FC classes.

    torchvision pools adaptively to 4x4; the paper's 5x5/3 average pool gives 4x4 at 224
    (``paper_pool``; it is skipped on maps smaller than 5x5, where the adaptive pool does the work).
    """

    def __init__(
        self, in_ch: int, num_classes: int, batch_norm: bool, paper_pool: bool, drop_rate: float = 0.7
    ):
        super().__init__()
        self.paper_pool = paper_pool
        self.conv = BasicConv2d(in_ch, 128, batch_norm, kernel_size=1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes) if num_classes > 0 else nn.Identity()
        self.dropout = nn.Dropout(drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.paper_pool and min(x.shape[-2:]) >= 5:
            x = F.avg_pool2d(x, 5, 3)
        x = self.conv(F.adaptive_avg_pool2d(x, 4))  # N x 128 x 4 x 4
        x = F.relu(self.fc1(torch.flatten(x, 1)), inplace=True)
        return self.fc2(self.dropout(x))


class GoogLeNetConfig(NamedTuple):
    """What differs between torchvision's and the paper's GoogLeNet."""

    k5: int  # kernel of the "5x5" branch
    lrn: bool
    pool4: int  # kernel of the 2-stride pool before inception 5a
    drop_rate: float  # dropout before the classifier
    paper_aux_pool: bool


TV = GoogLeNetConfig(k5=3, lrn=False, pool4=2, drop_rate=0.2, paper_aux_pool=False)
PAPER_CFG = GoogLeNetConfig(k5=5, lrn=True, pool4=3, drop_rate=0.4, paper_aux_pool=True)
GOOGLENET_DATA = DataConfig(input_size=(3, 224, 224), crop_pct=0.875)
AUX = ("aux1.", "aux2.")


class GoogLeNet(ClassifierModel):
    """See the module docstring; module names are torchvision's."""

    train_only_modules = ("aux1", "aux2")

    classifier_path = "fc"

    def __init__(self, cfg: GoogLeNetConfig, num_classes: int = 1000, in_chans: int = 3,
                 aux_logits: bool = True, transform_input: bool = False, batch_norm: bool = True,
                 drop_rate: float | None = None) -> None:
        super().__init__()
        if transform_input and in_chans != 3:
            raise CnnlabError(
                f"transform_input needs 3 input channels, got in_chans={in_chans}; drop transform_input"
            )
        self.num_classes, self.num_features = num_classes, 1024
        self.aux_logits, self.transform_input = aux_logits, transform_input
        bn = batch_norm
        self.conv1 = BasicConv2d(in_chans, 64, bn, kernel_size=7, stride=2, padding=3)  # 224 -> 112
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # -> 56
        self.lrn1 = nn.LocalResponseNorm(**LRN) if cfg.lrn else nn.Identity()
        self.conv2 = BasicConv2d(64, 64, bn, kernel_size=1)
        self.conv3 = BasicConv2d(64, 192, bn, kernel_size=3, padding=1)
        self.lrn2 = nn.LocalResponseNorm(**LRN) if cfg.lrn else nn.Identity()
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # -> 28
        for name, (in_ch, row) in INCEPTION.items():
            setattr(self, name, Inception(in_ch, row, cfg.k5, bn))
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # after 3b: 28 -> 14
        self.maxpool4 = nn.MaxPool2d(cfg.pool4, stride=2, ceil_mode=True)  # after 4e: 14 -> 7
        self.aux1 = InceptionAux(512, num_classes, bn, cfg.paper_aux_pool) if aux_logits else None
        self.aux2 = InceptionAux(528, num_classes, bn, cfg.paper_aux_pool) if aux_logits else None
        self.dropout = nn.Dropout(cfg.drop_rate if drop_rate is None else drop_rate)
        self.fc = nn.Linear(1024, num_classes) if num_classes > 0 else nn.Identity()
        self.stages = (Stage("conv1", 64, 2), Stage("conv3", 192, 4), Stage("inception3b", 480, 8),
                       Stage("inception4e", 832, 16), Stage("inception5b", 1024, 32))
        self.default_cfg = GOOGLENET_DATA.with_channels(in_chans)
        init_weights(self, conv="trunc_normal_0.01", linear="trunc_normal_0.01")  # torchvision's

    def _transform(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet-normalised input -> (x - 0.5) / 0.5 normalisation, per channel."""
        std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        return x * (std / 0.5) + (mean - 0.5) / 0.5

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        if self.transform_input:
            x = self._transform(x)
        x = self.lrn1(self.maxpool1(self.conv1(x)))
        x = self.maxpool2(self.lrn2(self.conv3(self.conv2(x))))
        return self.maxpool3(self.inception3b(self.inception3a(x)))  # N x 480 x 14 x 14

    def _forward_with_aux(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        aux = []
        x = self.inception4a(self._stem(x))
        if with_aux:
            aux.append(self.aux1(x))
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        if with_aux:
            aux.append(self.aux2(x))
        x = self.maxpool4(self.inception4e(x))
        return self.inception5b(self.inception5a(x)), aux  # N x 1024 x 7 x 7

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward_with_aux(x, with_aux=False)[0]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor | GoogLeNetOutputs:
        feats, aux = self._forward_with_aux(x, with_aux=self.aux_logits and self.training)
        logits = self.forward_head(feats)
        return GoogLeNetOutputs(logits, *aux) if aux else logits

    def reset_classifier(self, num_classes: int) -> None:
        """New main and aux classifiers (``0``: identities)."""
        super().reset_classifier(num_classes)
        for aux in (self.aux1, self.aux2):
            if aux is not None:
                aux.fc2 = (
                    nn.Linear(1024, num_classes).to(aux.fc1.weight.device)
                    if num_classes > 0
                    else nn.Identity()
                )

    def convert_state_dict(self, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Drop aux keys the model lacks; fill aux keys the checkpoint lacks or sizes differently."""
        own = self.state_dict()
        own_aux = {k for k in own if k.startswith(AUX)}
        ckpt_aux = {k for k in sd if k.startswith(AUX)}
        if ckpt_aux and not own_aux:
            notice(
                f"{self.model_name or 'googlenet'}: dropping the checkpoint's {len(ckpt_aux)} aux-classifier "
                "tensors (the model has aux_logits=False)"
            )
        elif own_aux and not ckpt_aux:
            notice(f"{self.model_name or 'googlenet'}: the checkpoint has no aux classifiers; they keep "
                   "their fresh initialisation")
        sd = {k: v for k, v in sd.items() if not k.startswith(AUX) or k in own_aux}
        stale = [k for k in own_aux if k not in sd or sd[k].shape != own[k].shape]
        if ckpt_aux and own_aux and stale:
            notice(f"{self.model_name or 'googlenet'}: {len(stale)} aux-classifier tensors do not fit "
                   "(another class count?); they are re-initialised")
        sd.update({k: own[k] for k in stale})
        return sd


PAPER = "Szegedy et al. 2014, arXiv:1409.4842"


@register_model(family="googlenet", paper=PAPER, loads=("torchvision:googlenet",))
def googlenet(num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = True,
              transform_input: bool = False, drop_rate: float | None = None) -> GoogLeNet:
    """torchvision's GoogLeNet (3x3 in the "5x5" branch, batch norm); loads its checkpoints."""
    return GoogLeNet(TV, num_classes, in_chans, aux_logits, transform_input, drop_rate=drop_rate)


@register_model(family="googlenet", paper=PAPER)
def googlenet_paper(num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = True,
                    transform_input: bool = False, batch_norm: bool = True,
                    drop_rate: float | None = None) -> GoogLeNet:
    """The paper's GoogLeNet (real 5x5 branch, LRN, 3x3/2 pools, dropout 0.4)."""
    return GoogLeNet(PAPER_CFG, num_classes, in_chans, aux_logits, transform_input, batch_norm, drop_rate)
