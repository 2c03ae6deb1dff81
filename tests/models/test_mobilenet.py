"""MobileNet v1/v2: oracles (timm, torchvision), MACs of the paper's tables, width multiplier checks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.models.mobilenet import MobileNetV1


def randomise_bn(model: nn.Module) -> nn.Module:
    """Non-trivial running statistics, so that the oracle tests exercise the BN layers."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval()


def assert_same_outputs(peer: nn.Module, name: str, tmp_path, size: int = 96, **kw) -> None:
    """Save the peer's state_dict, load it by path into the cnnlab model, compare logits."""
    path = tmp_path / "peer.pth"
    torch.save(randomise_bn(peer).state_dict(), path)
    ours = cnnlab.create_model(name, weights=str(path), **kw).eval()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        diff = (ours(x) - peer(x)).abs().max().item()
    assert diff <= 1e-5, diff


def count_gmacs(model: nn.Module, size: int) -> float:
    """Conv + linear multiply-accumulates for one image (REFERENCE's convention)."""
    total = []

    def hook(m, _inp, out):
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
            total.append(out[0].numel() * k)
        else:
            total.append(m.in_features * m.out_features)

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    return sum(total) / 1e9


def test_timm_mobilenetv1_100_oracle(tmp_path):
    timm = pytest.importorskip("timm")
    assert_same_outputs(timm.create_model("mobilenetv1_100"), "mobilenet_v1", tmp_path)


def test_torchvision_mobilenet_v2_oracle(tmp_path):
    from torchvision.models import mobilenet_v2

    assert_same_outputs(mobilenet_v2(), "mobilenet_v2", tmp_path)


@pytest.mark.parametrize("name, gmacs, "
                         "size", [("mobilenet_v1", 0.569, 224), ("mobilenet_v1_050_160", 0.0765, 160)])
def test_paper_macs_and_resolution_multiplier(name, gmacs, size):
    model = cnnlab.create_model(name)
    assert model.default_cfg.input_size == (3, size, size)
    assert round(count_gmacs(model, size), 4 if gmacs < 0.1 else 3) == gmacs


def test_width_multiplier_scales_every_layer():
    half = cnnlab.create_model("mobilenet_v1_050_224")
    full = cnnlab.create_model("mobilenet_v1")
    assert [s.channels * 2 for s in half.stages] == [s.channels for s in full.stages]
    assert [s.reduction for s in full.stages] == [2, 2, 4, 8, 16, 32]
    v2 = cnnlab.create_model("mobilenet_v2", width_mult=0.5)
    assert v2.num_features == 1280 and v2.stages[1].channels == 8


def test_depthwise_is_one_grouped_convolution():
    block = cnnlab.create_model("mobilenet_v1").blocks[3][1]
    assert block.conv_dw.groups == block.conv_dw.in_channels == 512


@pytest.mark.parametrize("bad", [0, -0.5, 5.0, math.nan, "half", True, None])
@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2"])
def test_impossible_width_multiplier(name, bad):
    with pytest.raises(cnnlab.CnnlabError, match="width_mult must be a number"):
        cnnlab.create_model(name, width_mult=bad)


def test_paper_activation_option():
    model = MobileNetV1(act="relu")
    assert isinstance(model.stem[2], nn.ReLU)
    with pytest.raises(cnnlab.CnnlabError, match="act must be one of"):
        MobileNetV1(act="gelu")
