"""DenseNet: torchvision checkpoints (current and pre-0.3 key names) and the CIFAR DenseNet-BC."""

from __future__ import annotations

import math
import re

import pytest
import torch

import cnnlab
from cnnlab.registry import native_model

from .test_residual import assert_loads_peer

torchvision = pytest.importorskip("torchvision")


def test_densenet121_loads_torchvision(tmp_path):
    assert_loads_peer(torchvision.models.densenet121(weights=None), "densenet121", tmp_path / "d.pth")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["densenet161", "densenet169", "densenet201"])
def test_big_densenets_load_torchvision(name, tmp_path):
    assert_loads_peer(getattr(torchvision.models, name)(weights=None), name, tmp_path / "d.pth")


@pytest.mark.slow
def test_densenet121_loads_timm(tmp_path):
    timm = pytest.importorskip("timm")
    assert_loads_peer(timm.create_model("densenet121"), "densenet121", tmp_path / "d.pth")


def test_old_torchvision_key_names_are_accepted(tmp_path):
    torch.manual_seed(0)
    src = cnnlab.create_model("densenet_bc100_k12").eval()  # same layer names as densenet121, smaller
    old = {
        re.sub(r"(denselayer\d+\.(?:norm|conv))([12])\.", r"\1.\2.", k): v
        for k, v in src.state_dict().items()
    }
    assert "features.denseblock1.denselayer1.norm.1.weight" in old
    torch.save(old, tmp_path / "old.pth")
    dst = cnnlab.create_model("densenet_bc100_k12", weights=tmp_path / "old.pth").eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(src(x), dst(x))


def test_bc100_k12_structure():
    model = native_model("densenet_bc100_k12").eval()
    assert model.default_cfg.input_size == (3, 32, 32) and model.num_classes == 10
    assert sum(p.numel() for p in model.parameters()) == 769_162
    block1 = model.features.denseblock1
    assert len(block1) == 16  # (100 - 4) / 6 bottleneck layers
    assert block1.denselayer1.conv1.out_channels == 4 * 12  # bottleneck 4k
    assert block1.denselayer16.conv1.in_channels == 24 + 15 * 12  # sees every earlier map
    assert model.features.transition1.conv.out_channels == math.floor(0.5 * (24 + 16 * 12))
    seen = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: seen.append(tuple(o.shape[1:])))
             for _, m in model.stage_modules()]
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    for h in hooks:
        h.remove()
    assert out.shape == (2, 10)
    assert seen == [(216, 32, 32), (300, 16, 16), (342, 8, 8)]
    assert [s.channels for s in model.stages] == [216, 300, 342]


def test_bad_drop_rate_is_a_clear_error():
    with pytest.raises(cnnlab.CnnlabError, match="block_drop_rate"):
        cnnlab.create_model("densenet_bc100_k12", block_drop_rate=1.5)
