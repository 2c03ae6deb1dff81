"""ZFNet's deconvnet against torch.autograd: exact gradients for conv/pool-only stacks, the deconvnet ReLU
rule through a custom backward, unpooling at the switches, the supported-model list, errors."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

import cnnlab
from cnnlab.errors import CnnlabError
from cnnlab.registry import get_entry
from cnnlab.viz.deconvnet import (
    SUPPORTED_MODELS,
    deconv_projection,
    deconv_stack,
    plot_projection,
    project,
    unpool,
)


class DeconvReLU(torch.autograd.Function):
    """ReLU forward; backward applies ReLU to the incoming gradient (the deconvnet rule)."""

    @staticmethod
    def forward(ctx, x):
        return F.relu(x)

    @staticmethod
    def backward(ctx, grad):
        return F.relu(grad)


class StraightThrough(torch.autograd.Function):
    """Any layer's forward; identity backward (how the deconvnet treats contrast normalisation)."""

    @staticmethod
    def forward(ctx, x, layer):
        return layer(x)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def autograd_projection(stack: nn.Sequential, x: torch.Tensor, index: int, channel: int, pos) -> torch.Tensor:
    """d(a * selected activation)/dx with the deconvnet rules for ReLU and LRN; conv and max-pool
    backward are PyTorch's own."""
    x = x.clone().requires_grad_(True)
    h = x
    for layer in stack[: index + 1]:
        if isinstance(layer, nn.ReLU):
            h = DeconvReLU.apply(h)
        elif isinstance(layer, nn.LocalResponseNorm):
            h = StraightThrough.apply(h, layer)
        else:
            h = layer(h)
    seed = torch.zeros_like(h)
    seed[0, channel, pos[0], pos[1]] = h[0, channel, pos[0], pos[1]].detach()
    h.backward(seed)
    return x.grad[0], h.detach()


def _relu_free(stack):
    return nn.Sequential(*[m for m in stack if not isinstance(m, nn.ReLU)])


def test_unpooling_puts_each_value_at_its_switch():
    x = torch.randn(2, 3, 8, 10)
    y, switches = F.max_pool2d(x, 2, return_indices=True)
    out = unpool(y * 3.0, switches, x.shape)
    windows = x.reshape(2, 3, 4, 2, 5, 2)
    is_max = windows == windows.amax(dim=(3, 5), keepdim=True)  # the argmax found independently
    expected = torch.where(is_max, windows * 3.0, torch.zeros(())).reshape(x.shape)
    assert torch.equal(out, expected)
    assert int((out != 0).sum()) == y.numel()


def test_overlapping_unpooling_adds_up_like_the_max_pool_gradient():
    x = torch.randn(1, 4, 13, 13, requires_grad=True)
    pool = nn.MaxPool2d(3, 2, ceil_mode=True)  # ZFNet's pools
    y, switches = F.max_pool2d(x, 3, 2, ceil_mode=True, return_indices=True)
    g = torch.randn_like(y)
    pool(x).backward(g)
    assert torch.allclose(unpool(g, switches, x.shape), x.grad, atol=1e-6)


def _small_stack(seed=0):
    torch.manual_seed(seed)
    bn = nn.BatchNorm2d(8)
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
    nn.init.normal_(bn.weight)
    return nn.Sequential(
        nn.Conv2d(3, 8, 5, stride=2, padding=1),
        bn,
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.LocalResponseNorm(5, 5e-4, 0.75, 2.0),
        nn.Conv2d(8, 12, 3, padding=1, groups=2),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.MaxPool2d(2),
        nn.Conv2d(12, 6, 3, padding=1),
        nn.ReLU(inplace=True),
    ).eval()


@pytest.mark.parametrize("index", [0, 3, 6, 10])
def test_projection_equals_autograd_with_the_deconvnet_relu_rule(index):
    stack = _small_stack()
    x = torch.randn(1, 3, 45, 45)
    proj = project(stack, x, index)
    expected, act = autograd_projection(stack, x, index, proj.channel, proj.position)
    assert proj.activation == pytest.approx(float(act[0].max()))  # the strongest activation of the layer
    assert proj.image.abs().max() > 0
    assert torch.allclose(proj.image, expected, rtol=1e-4, atol=1e-6 * float(expected.abs().max()))


def test_without_relus_the_projection_is_the_plain_gradient():
    stack = _relu_free(_small_stack(1))
    stack = nn.Sequential(*[m for m in stack if not isinstance(m, nn.LocalResponseNorm)])
    x = torch.randn(1, 3, 45, 45, requires_grad=True)
    last = len(stack) - 1
    proj = project(stack, x.detach(), last, channel=2)
    out = stack(x)
    out[0, 2, proj.position[0], proj.position[1]].backward()
    assert torch.allclose(proj.image, proj.activation * x.grad[0], rtol=1e-4, atol=1e-7)


def test_the_relu_rule_differs_from_the_gradient():
    """Not a vacuous rule: with ReLUs, the deconvnet's projection is not the (masked) gradient."""
    stack = _small_stack(2)
    x = torch.randn(1, 3, 45, 45, requires_grad=True)
    proj = project(stack, x.detach(), 10)
    out = stack(x)
    out[0, proj.channel, proj.position[0], proj.position[1]].backward()
    assert not torch.allclose(proj.image, proj.activation * x.grad[0], atol=1e-6)


@pytest.mark.parametrize("name,size,layer", [("lenet5_relu", 32, None), ("zfnet", 64, "features.3"),
                                             ("zfnet", 64, None)])
def test_registered_models_against_autograd(name, size, layer):
    torch.manual_seed(0)
    model = cnnlab.create_model(name, num_classes=10).eval()
    x = torch.randn(1, 3, size, size)
    proj = deconv_projection(model, x, layer)
    path, stack = deconv_stack(model)
    index = int(proj.layer.rpartition(".")[2])
    assert proj.layer == (layer or model.stages[-1].name)
    expected, _ = autograd_projection(stack, x, index, proj.channel, proj.position)
    assert proj.image.shape == x.shape[1:]
    assert torch.allclose(proj.image, expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max()))


def test_unsupported_models_and_bad_layers():
    model = cnnlab.create_model("resnet18", num_classes=10)
    with pytest.raises(CnnlabError, match="supported models: alexnet, .*zfnet"):
        deconv_projection(model, torch.randn(1, 3, 64, 64))
    lenet = cnnlab.create_model("lenet5_relu", num_classes=10)
    with pytest.raises(CnnlabError, match="layer 'fc' is not in lenet5_relu's deconvnet stack"):
        deconv_projection(lenet, torch.randn(1, 3, 32, 32), "fc")
    with pytest.raises(CnnlabError, match="channel 16 is out of range: layer 5 has 16 channels"):
        deconv_projection(lenet, torch.randn(1, 3, 32, 32), "features.5", channel=16)


def test_the_supported_model_list_is_the_registry_s():
    """SUPPORTED_MODELS (named in the error message) is exactly the models whose trunk qualifies. To stay
    fast, one model per family is built (on the meta device); every variant of a family whose
    representative qualifies (or that has a listed member) is checked."""
    families: dict[str, list[str]] = {}
    for name in cnnlab.list_models():
        families.setdefault(get_entry(name).family, []).append(name)
    found = []
    for members in families.values():
        if _qualifies(members[0]) or any(m in SUPPORTED_MODELS for m in members):
            found += [m for m in members if _qualifies(m)]
    assert tuple(sorted(found)) == SUPPORTED_MODELS


def _qualifies(name: str) -> bool:
    with torch.device("meta"):
        model = get_entry(name).builder(num_classes=10)
    try:
        deconv_stack(model, torch.empty(1, *model.default_cfg.input_size, device="meta"))
        return True
    except CnnlabError:
        return False


def test_plot_projection(tmp_path):
    torch.manual_seed(0)
    model = cnnlab.create_model("lenet5_relu", num_classes=10).eval()
    x = torch.rand(1, 3, 32, 32)
    proj = deconv_projection(model, x, "features.2")
    plot_projection(x[0].permute(1, 2, 0).numpy(), proj, tmp_path / "d.png")
    with Image.open(tmp_path / "d.png") as im:
        assert im.format == "PNG" and im.width > 600
