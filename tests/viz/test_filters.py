"""First-layer filters: the first conv is found for any model, per-filter min-max scaling, the picture."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torch import nn

import cnnlab
from cnnlab.viz.filters import filter_tiles, first_conv, plot_filters


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_lite0", "vit_ti_16", "zfnet", "densenet121"])
def test_first_conv_is_the_stem(name):
    with torch.device("meta"):
        model = cnnlab.create_model(name)
    path, conv = first_conv(model)
    assert isinstance(conv, nn.Conv2d) and conv.in_channels == 3
    # the stem: the input of no other conv comes before it in a forward pass
    x = torch.empty(1, 3, *model.default_cfg.input_size[1:], device="meta")
    order = []
    hooks = [m.register_forward_pre_hook(lambda m, i, n=n: order.append(n))
             for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    model(x)
    for h in hooks:
        h.remove()
    assert order[0] == path


def test_tiles_are_min_max_scaled_per_filter():
    w = torch.randn(5, 3, 4, 4) * torch.arange(1, 6).view(5, 1, 1, 1)  # different ranges per filter
    tiles = filter_tiles(w)
    assert tiles.shape == (5, 4, 4, 3)
    for f, tile in zip(w, tiles):
        expected = ((f - f.min()) / (f.max() - f.min())).permute(1, 2, 0).numpy()
        assert abs(tile - expected).max() < 1e-6
        assert tile.min() == 0 and abs(tile.max() - 1) < 1e-6


def test_grey_tiles_for_one_channel_and_the_mean_for_others():
    assert filter_tiles(torch.randn(6, 1, 5, 5)).shape == (6, 5, 5)
    w = torch.randn(4, 2, 3, 3)
    tiles = filter_tiles(w)
    m = w.mean(1)
    assert abs(tiles[0] - ((m[0] - m[0].min()) / (m[0].max() - m[0].min())).numpy()).max() < 1e-6


def test_plot_filters_writes_a_png(tmp_path):
    model = cnnlab.native_model("lenet5_relu")  # 1 input channel: grey tiles
    what = plot_filters(model, tmp_path / "f.png")
    assert "6 filters 5x5 x 1 channels" in what
    with Image.open(tmp_path / "f.png") as im:
        assert im.format == "PNG" and im.width > 150 and im.height > 60
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]  # no temporary file left
