"""Receptive fields: the REFERENCE fixtures, hand-checked toy nets, and analytic == gradient."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import cnnlab
from cnnlab.analysis import receptive_field, receptive_field_gradient
from cnnlab.analysis.receptive_fields import expected_bounds
from cnnlab.errors import CnnlabError
from cnnlab.models.layers import Conv2dSame


def _vgg16():
    if "vgg16" in cnnlab.list_models():
        with torch.device("meta"):
            return cnnlab.create_model("vgg16")
    return torchvision.models.vgg16()


def test_vgg16_fixtures():
    model = _vgg16()
    rf = receptive_field(model, (3, 224, 224), ["features.28", "features.29", "features.30"])
    assert rf["features.28"].size == 196 and rf["features.29"].size == 196  # conv5_3 (and its ReLU)
    assert rf["features.30"].size == 212 and rf["features.30"].jump == 32  # pool5


@pytest.mark.parametrize("source", ["torchvision", "cnnlab"])
def test_resnet50_fixtures(source):
    if source == "cnnlab" and "resnet50" not in cnnlab.list_models():
        pytest.skip("cnnlab resnet50 is not registered")
    with torch.device("meta"):
        model = torchvision.models.resnet50() if source == "torchvision" else cnnlab.create_model("resnet50")
    rf = receptive_field(model, (3, 224, 224), ["layer1", "layer2", "layer3", "layer4"])
    assert (rf["layer3"].size, rf["layer3"].jump) == (267, 16)
    assert (rf["layer4"].size, rf["layer4"].jump) == (427, 32)


def test_stages_are_the_default_layers():
    model = cnnlab.create_model("lenet5_relu", num_classes=10, in_chans=1)
    rf = receptive_field(model, (1, 32, 32))
    assert list(rf) == [s.name for s in model.stages]
    assert [rf[s.name].size for s in model.stages] == [6, 16, 32]


class Toy(nn.Module):
    """Dilation, explicit asymmetric padding, a residual with a strided 1x1 shortcut, a
    concatenation of branches with different fields, TF-style "same" padding, a channel shuffle."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.dilated = nn.Conv2d(8, 8, 3, padding=2, dilation=2)
        self.down = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.short = nn.Conv2d(8, 8, 1, stride=2)
        self.branch_a = nn.Conv2d(8, 4, 1)
        self.branch_b = nn.Conv2d(8, 4, 5, padding=2)
        self.same = Conv2dSame(8, 8, 3, stride=2)
        self.pool = nn.MaxPool2d(3, 2, 1)

    def forward(self, x):
        x = torch.relu(self.dilated(self.stem(x)))
        x = nn.functional.pad(x, (1, 0, 1, 0))[:, :, :-1, :-1]  # shift by one pixel
        x = torch.relu(self.down(x) + self.short(x))
        x = torch.cat([self.branch_a(x), self.branch_b(x)], 1)
        n, c, h, w = x.shape
        x = x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        return self.pool(self.same(x))


def test_toy_by_hand():
    rf = receptive_field(Toy(), (3, 32, 32), ["stem", "dilated", "down", "short", "branch_b", "same", "pool"])
    assert (rf["stem"].size, rf["dilated"].size) == (3, 3 + 4)
    assert (rf["down"].size, rf["down"].jump) == (9, 2)
    # the 1x1 shortcut sees 7; the addition takes the hull, so the next layers build on 9
    assert rf["short"].size == 7
    assert (rf["branch_b"].size, rf["same"].size, rf["same"].jump) == (9 + 4 * 2, 17 + 2 * 2, 4)
    assert (rf["pool"].size, rf["pool"].jump) == (21 + 2 * 4, 8)


def _probe(model, size, layer):
    rf = receptive_field(model, (3, size, size), [layer])[layer]
    measured = receptive_field_gradient(model, (3, size, size), layer)
    assert (measured.rows, measured.cols) == expected_bounds(rf, measured.unit, (size, size)), (
        layer,
        rf,
        measured,
    )
    return rf, measured


TOY_LAYERS = ["stem", "dilated", "down", "branch_b", "same", "pool"]


@pytest.mark.parametrize("layer", TOY_LAYERS)
def test_toy_analytic_equals_gradient(layer):
    torch.manual_seed(0)
    _probe(Toy(), 48, layer)


# A dozen architectures (torchvision, where the cnnlab family may not be registered yet): the layer's
# field must fit well inside the input so that the comparison is not trivially clipped.
GRADIENT_CASES = [
    ("lenet5_relu", 32, "features.5"),
    ("squeezenet1_0", 80, "features.4"),
    ("shufflenet_v2_x0_5", 80, "stage2"),
    ("mobilenet_v2", 80, "features.3"),
    ("regnet_x_400mf", 64, "trunk_output.block1"),
    ("mnasnet0_5", 80, "layers.8"),
    ("alexnet", 112, "features.5"),
    ("resnet18", 96, "layer1"),
    ("googlenet", 96, "inception3a"),
    ("densenet121", 96, "features.transition1"),
    ("vgg11", 96, "features.10"),
    ("resnext50_32x4d", 96, "layer1"),
    ("efficientnet_b0", 64, "features.2"),  # squeeze-excitation: the whole input
]
CHEAP = {"lenet5_relu", "squeezenet1_0", "shufflenet_v2_x0_5"}


def _build(name):
    torch.manual_seed(0)
    if name in cnnlab.list_models():
        return cnnlab.native_model(name)
    return torchvision.models.get_model(name)


@pytest.mark.parametrize("name, size, layer", [
    pytest.param(*case, marks=() if case[0] in CHEAP else pytest.mark.slow) for case in GRADIENT_CASES])
def test_analytic_equals_gradient(name, size, layer):
    model = _build(name)
    if name == "lenet5_relu":
        size = 32
        rf = receptive_field(model, (1, 32, 32), [layer])[layer]
        measured = receptive_field_gradient(model, (1, 32, 32), layer)
        assert (measured.rows, measured.cols) == expected_bounds(rf, measured.unit, (32, 32))
        return
    rf, measured = _probe(model, size, layer)
    if name == "efficientnet_b0":
        assert rf is None and measured.size == (size, size)
    else:
        assert rf is not None and measured.size[0] == rf.size < size


@pytest.mark.slow
def test_cnnlab_stage_outputs_agree_with_gradient():
    if "resnet20" not in cnnlab.list_models():
        pytest.skip("resnet20 is not registered")
    model = _build("resnet20")
    rfs = receptive_field(model, (3, 64, 64))
    for stage in model.stages[:2]:
        measured = receptive_field_gradient(model, (3, 64, 64), stage.name)
        assert (measured.rows, measured.cols) == expected_bounds(rfs[stage.name], measured.unit, (64, 64))


def test_receptive_field_leaves_no_hooks_and_bad_names_fail():
    model = cnnlab.create_model("lenet5_relu", num_classes=10, in_chans=1)
    receptive_field(model, (1, 32, 32), "all")
    receptive_field_gradient(model, (1, 32, 32), "features.2")
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    with pytest.raises(CnnlabError, match="no layer named"):
        receptive_field(model, (1, 32, 32), ["nope"])
    with torch.device("meta"):
        meta = cnnlab.create_model("lenet5_relu")
    with pytest.raises(CnnlabError, match="real tensors"):
        receptive_field_gradient(meta, (3, 32, 32), "features.2")


def test_squeeze_excitation_is_global_unless_gates_are_ignored():
    pair = ("se_resnet50", "resnet50")
    if not set(pair) <= set(cnnlab.list_models()):
        pytest.skip("se_resnet50 / resnet50 are not registered")
    with torch.device("meta"):
        se, plain = (cnnlab.create_model(n) for n in pair)
    assert set(receptive_field(se, (3, 224, 224)).values()) == {None}
    local = receptive_field(se, (3, 224, 224), ignore_gates=True)
    assert local == receptive_field(plain, (3, 224, 224))
    assert local["layer4"].size == 427
