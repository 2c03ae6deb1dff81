"""The one initialisation routine, models.layers.init_weights, and the families' choices through it."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.models.layers import WEIGHT_INITS, init_weights


def tiny() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(16, 64, 3), nn.BatchNorm2d(64), nn.Conv2d(64, 32, 1, bias=False),
                         nn.Flatten(), nn.Linear(512, 256))


def test_rules_give_the_stated_spread():
    torch.manual_seed(0)
    net = init_weights(tiny(), conv="kaiming_fan_out", linear="normal_0.01")
    assert net[0].weight.std().item() == pytest.approx(
        math.sqrt(2 / (64 * 9)), rel=0.05
    )  # fan_out = 64 * 3 * 3
    assert net[4].weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert not net[0].bias.any() and not net[4].bias.any()
    assert torch.equal(net[1].weight, torch.ones(64)) and not net[1].bias.any()
    torch.manual_seed(0)
    lin = init_weights(tiny(), linear="uniform_fan_out")[4].weight
    assert lin.abs().max().item() <= 1 / math.sqrt(256)


def test_none_keeps_pytorch_default_and_biases_can_be_kept():
    torch.manual_seed(0)
    before = tiny()
    torch.manual_seed(0)
    after = init_weights(tiny(), zero_conv_bias=False, zero_linear_bias=False)
    for a, b in zip(before.parameters(), after.parameters()):
        assert torch.equal(a, b)


def test_module_order_fixes_the_random_stream():
    nets = []
    for _ in range(2):
        torch.manual_seed(3)
        nets.append(init_weights(tiny(), conv="trunc_normal_0.01", linear="trunc_normal_0.02"))
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.equal(a, b)
    assert set(WEIGHT_INITS) >= {"kaiming_fan_out", "kaiming_fan_in", "normal_0.01", "lecun_trunc_normal"}


def test_alexnet_2012_biases_of_the_paper():
    torch.manual_seed(0)
    model = cnnlab.create_model("alexnet_2012")
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    biases = [m.bias.unique().tolist() for m in layers]
    assert biases == [[0.0], [1.0], [0.0], [1.0], [1.0], [1.0], [1.0], [0.0]]  # conv2, 4, 5, fc6, fc7 at 1
    assert layers[0].weight.std().item() == pytest.approx(0.01, rel=0.05)


def test_family_choices_pass_through():
    torch.manual_seed(0)
    vit = cnnlab.create_model("vit_ti_16", num_classes=10)
    assert not vit.heads.head.weight.any() and not vit.heads.head.bias.any()  # torchvision's zero head
    se = cnnlab.create_model("se_resnet50", num_classes=10)
    assert se.layer1[0].se.fc1.bias.any()  # SE biases keep PyTorch's default (torchvision/timm ResNet init)
    dense = cnnlab.create_model("densenet_bc100_k12")
    assert not dense.classifier.bias.any() and dense.classifier.weight.any()
