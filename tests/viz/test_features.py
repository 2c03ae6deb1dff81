"""Feature maps: hooks against the layers called by hand, tokens on their grid, errors."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab.errors import CnnlabError
from cnnlab.models.base import Stage
from cnnlab.viz.common import as_feature_map, find_layer
from cnnlab.viz.features import feature_maps, plot_feature_maps


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return cnnlab.create_model("resnet18", num_classes=10).eval()


def test_top_channels_match_the_layers_called_by_hand(resnet):
    x = torch.randn(1, 3, 64, 64)
    fm = feature_maps(resnet, x, "layer2", top=5)
    with torch.no_grad():
        m = resnet  # the stem and the first two stages called by hand: no hooks involved
        ref = m.layer2(m.layer1(m.maxpool(m.relu(m.bn1(m.conv1(x))))))[0]
    means = ref.mean(dim=(1, 2))
    expected = torch.argsort(means, descending=True)[:5]
    assert fm.channels == expected.tolist() and fm.num_channels == 128
    assert torch.allclose(fm.maps, ref[expected], atol=1e-5)
    assert fm.means == pytest.approx(means[expected].tolist(), rel=1e-5)
    assert fm.means == sorted(fm.means, reverse=True)


def test_hooks_are_removed_even_after_an_error(resnet):
    module, _ = find_layer(resnet, "layer3")
    feature_maps(resnet, torch.randn(1, 3, 64, 64), "layer3", top=2)
    assert not module._forward_hooks
    with pytest.raises(
        RuntimeError
    ):  # wrong channel count: the forward pass fails inside the hook's lifetime
        feature_maps(resnet, torch.randn(1, 4, 64, 64), "layer3")
    assert not module._forward_hooks


def test_unknown_stage_lists_the_stages(resnet):
    with pytest.raises(CnnlabError, match=r"no stage or module 'layer9'.*layer1, layer2, layer3, layer4"):
        feature_maps(resnet, torch.randn(1, 3, 64, 64), "layer9")
    with pytest.raises(CnnlabError, match="top must be"):
        feature_maps(resnet, torch.randn(1, 3, 64, 64), "layer1", top=0)


def test_any_module_path_works(resnet):
    fm = feature_maps(resnet, torch.randn(1, 3, 64, 64), "layer1.0.conv1", top=3)
    assert fm.maps.shape == (3, 16, 16) and fm.num_channels == 64


def test_vit_tokens_are_laid_out_on_the_patch_grid():
    torch.manual_seed(0)
    vit = cnnlab.create_model("vit_ti_16", num_classes=10).eval()
    x = torch.randn(1, 3, 224, 224)
    stage = vit.stages[0].name
    fm = feature_maps(vit, x, stage, top=4)
    with torch.no_grad():
        # the encoder's first blocks called by hand, up to the stage (no hooks involved)
        t, grid = vit.patchify(x)
        t = torch.cat([vit.class_token.expand(1, -1, -1), t], dim=1) + vit.encoder.pos_embedding
        blocks = list(vit.encoder.layers.named_children())
        for _name, block in blocks[: [n for n, _ in blocks].index(stage.rpartition(".")[2]) + 1]:
            t = block(t)
        tokens = t[0]  # (1 + 196, D)
    maps = tokens[1:].T.reshape(-1, 14, 14)  # class token dropped, row-major patches
    assert fm.maps.shape == (4, 14, 14)
    assert torch.allclose(fm.maps, maps[fm.channels], atol=1e-5)


def test_channel_last_maps_are_permuted():
    nhwc = torch.randn(2, 7, 5, 96)
    stage = Stage("features.1", 96, 4)
    assert torch.equal(as_feature_map(nhwc, stage, (28, 20)), nhwc.permute(0, 3, 1, 2))
    nchw = torch.randn(2, 96, 7, 5)
    assert as_feature_map(nchw, stage, (28, 20)) is nchw


def test_plot(tmp_path, resnet):
    x = torch.randn(1, 3, 64, 64)
    fm = feature_maps(resnet, x, "layer1", top=7)
    plot_feature_maps(x[0].permute(1, 2, 0).clamp(0, 1).numpy(), fm, tmp_path / "m.png")
    with Image.open(tmp_path / "m.png") as im:
        assert im.format == "PNG" and im.width > 300
