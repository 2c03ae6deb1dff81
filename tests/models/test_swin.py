"""Swin: torchvision as the oracle (random weights saved to a file), batched window attention, stages."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import cnnlab
from cnnlab.models.layers import DropPath
from cnnlab.models.swin import relative_position_index, shift_mask

TOL = 1e-5


def saved_torchvision(name: str, path) -> nn.Module:
    torch.manual_seed(0)
    tv = getattr(torchvision.models, name)().eval()
    torch.save(tv.state_dict(), path)
    return tv


def assert_same_logits(ours, theirs, x):
    ours.eval()
    with torch.no_grad():
        a, b = ours(x), theirs(x)
    assert a.shape == b.shape
    assert (a - b).abs().max().item() <= TOL
    assert b.abs().max().item() > 1e-3


@pytest.fixture(scope="module")
def swin_t_pair(tmp_path_factory):
    """(torchvision swin_t, cnnlab swin_t loaded from the former's saved state_dict)."""
    path = tmp_path_factory.mktemp("swin") / "swin_t.pth"
    tv = saved_torchvision("swin_t", path)
    return tv, cnnlab.create_model("swin_t", weights=path).eval()


# 224: the default; 100 and 160: padding to window multiples and odd maps at patch merging
@pytest.mark.parametrize("size", [224, 100, 160])
def test_swin_t_checkpoint_gives_identical_logits(swin_t_pair, size):
    tv, ours = swin_t_pair
    assert_same_logits(ours, tv, torch.randn(1, 3, size, size))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["swin_s", "swin_b"])
def test_torchvision_checkpoint_gives_identical_logits(tmp_path, name):
    tv = saved_torchvision(name, tmp_path / f"{name}.pth")
    ours = cnnlab.create_model(name, weights=tmp_path / f"{name}.pth")
    assert_same_logits(ours, tv, torch.randn(1, 3, 224, 224))


def test_window_attention_is_one_batched_sdpa_call_per_block(swin_t_pair, monkeypatch):
    model = swin_t_pair[1]
    shapes = []
    real = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, *args, **kwargs):
        shapes.append((tuple(q.shape), tuple(kwargs["attn_mask"].shape)))
        return real(q, k, v, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    with torch.no_grad():
        model(torch.randn(2, 3, 224, 224))
    assert len(shapes) == 12  # one call per block: 2 + 2 + 6 + 2
    # (batch * windows, heads, 7*7, head_dim 32): 4-D, as the ONNX exporter needs; the shifted block's
    # mask has one slice per window of each image
    assert shapes[0] == ((2 * 64, 3, 49, 32), (3, 49, 49))
    assert shapes[1] == ((2 * 64, 3, 49, 32), (2 * 64, 3, 49, 49))
    assert shapes[-1] == ((2 * 1, 24, 49, 32), (24, 49, 49))  # 7x7 map: one window, no shift


def test_shift_mask_separates_regions():
    mask = shift_mask(14, 14, 7, (3, 3), "cpu")  # 2 x 2 windows
    assert mask.shape == (4, 49, 49)
    assert mask[0].eq(0).all()  # the top-left window holds one region
    last = mask[3]  # bottom-right window: 4 regions of 4x4, 4x3, 3x4, 3x3 tokens
    assert int(last.eq(0).sum()) == 16**2 + 12**2 + 12**2 + 9**2
    assert torch.equal(last, last.T)


def test_relative_position_index_covers_the_table():
    idx = relative_position_index(7)
    assert idx.shape == (49 * 49,) and idx.min() == 0 and idx.max() == 13 * 13 - 1
    assert idx.view(49, 49).diagonal().eq(6 * 13 + 6).all()  # (dy, dx) = (0, 0)


def test_stages_are_channels_last_with_paper_strides(swin_t_pair):
    model = swin_t_pair[1]
    assert [(s.channels, s.reduction) for s in model.stages] == [(96, 4), (192, 8), (384, 16), (768, 32)]
    seen = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, o: seen.append(tuple(o.shape)))
        for _, m in model.stage_modules()
    ]
    with torch.no_grad():
        feats = model.forward_features(torch.randn(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    assert seen == [(1, 56, 56, 96), (1, 28, 28, 192), (1, 14, 14, 384), (1, 7, 7, 768)]
    assert feats.shape == (1, 768, 7, 7)


def test_stochastic_depth_rises_linearly():
    model = cnnlab.create_model("swin_t")
    rates = [m.p for m in model.modules() if isinstance(m, DropPath)]
    assert len(rates) == 12 and rates[0] == 0 and rates[-1] == pytest.approx(0.2)
    assert rates == sorted(rates)
    model.train()
    x = torch.randn(4, 3, 32, 32)
    torch.manual_seed(1)
    a = model.forward_features(x)
    torch.manual_seed(2)
    assert not torch.allclose(a, model.forward_features(x))  # different paths dropped
    with torch.device("meta"):
        model = cnnlab.create_model("swin_t", drop_path_rate=0.0)
    assert all(m.p == 0 for m in model.modules() if isinstance(m, DropPath))
