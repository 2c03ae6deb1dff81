"""One meaning per dropout keyword in every family, and the renamed keywords' deprecation.

``drop_rate`` is the dropout before the classifier, ``block_drop_rate`` dropout inside the blocks,
``drop_path_rate`` stochastic depth. The old names (``dropout=`` of AlexNet/ZFNet/VGG/ViT/Swin/WRN,
DenseNet's ``drop_rate=``) still work for one release, with a FutureWarning.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.models.layers import renamed_kwarg
from cnnlab.models.resnet_cifar import wide_resnet_cifar


def build(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return cnnlab.create_model(name, num_classes=10, **kwargs)


def head_dropout(model: nn.Module) -> nn.Dropout:
    """The last nn.Dropout in module order: the one right before the classifier."""
    return [m for m in model.modules() if isinstance(m, nn.Dropout)][-1]


# one model per family with a dropout before its classifier
HEAD = [
    "alexnet",
    "alexnet_2012",
    "zfnet",
    "vgg11_bn",
    "googlenet",
    "googlenet_paper",
    "resnet18",
    "xception",
    "mobilenet_v1",
    "mobilenet_v2",
    "efficientnet_b0",
    "efficientnet_lite0",
]


@pytest.mark.parametrize("name", HEAD)
def test_drop_rate_is_the_head_dropout(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new name never warns
        model = build(name, drop_rate=0.123)
    assert head_dropout(model).p == 0.123


def test_drop_rate_sets_every_hidden_fc_dropout_of_the_conv_fc_nets():
    for name in ("alexnet", "zfnet", "vgg16"):
        ps = [m.p for m in build(name, drop_rate=0.25).classifier if isinstance(m, nn.Dropout)]
        assert ps == [0.25, 0.25], name


def block_dropouts(name: str, model: nn.Module) -> list[float]:
    if name.startswith("densenet"):
        return [m.block_drop_rate for m in model.modules() if hasattr(m, "block_drop_rate")]
    if name.startswith("wrn"):
        return [
            getattr(b.drop, "p", 0.0) for layer in (model.layer1, model.layer2, model.layer3) for b in layer
        ]
    return [m.p for m in model.modules() if isinstance(m, nn.Dropout)]  # ViT / Swin: all in the blocks


@pytest.mark.parametrize("name", ["vit_ti_16", "swin_t", "wrn28_10", "densenet_bc100_k12"])
def test_block_drop_rate_is_the_dropout_inside_the_blocks(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = build(name, block_drop_rate=0.2)
    rates = block_dropouts(name, model)
    assert rates and set(rates) == {0.2}, name
    assert set(block_dropouts(name, build(name))) == {0.0}  # off by default


# (model, old keyword, new keyword)
RENAMED = [
    ("alexnet", "dropout", "drop_rate"),
    ("alexnet_2012", "dropout", "drop_rate"),
    ("zfnet", "dropout", "drop_rate"),
    ("vgg11", "dropout", "drop_rate"),
    ("vgg16_bn", "dropout", "drop_rate"),
    ("vit_ti_16", "dropout", "block_drop_rate"),
    ("swin_t", "dropout", "block_drop_rate"),
    ("wrn28_10", "dropout", "block_drop_rate"),
    ("densenet_bc100_k12", "drop_rate", "block_drop_rate"),
    ("densenet121", "drop_rate", "block_drop_rate"),
]


@pytest.mark.parametrize("name, old, new", RENAMED)
def test_old_keyword_still_works_and_warns(name, old, new):
    with pytest.warns(FutureWarning, match=f"{old}= is renamed {new}="):
        old_model = build(name, **{old: 0.3})
    new_model = build(name, **{new: 0.3})
    assert repr(old_model) == repr(new_model)  # the same modules with the same p


def test_old_and_new_keyword_together_is_a_clear_error():
    with pytest.raises(cnnlab.CnnlabError, match="pass drop_rate= only"):
        build("vgg11", dropout=0.1, drop_rate=0.2)


def test_wide_resnet_cifar_old_keyword():
    with pytest.warns(FutureWarning, match="wide_resnet_cifar: dropout= is renamed block_drop_rate="):
        model = wide_resnet_cifar(10, 2, dropout=0.3)
    assert model.layer2[0].drop.p == 0.3


def test_renamed_kwarg_leaves_other_keywords_alone():
    kwargs = {"width_mult": 0.5}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert renamed_kwarg(kwargs, "dropout", "drop_rate", "x") == {"width_mult": 0.5}
