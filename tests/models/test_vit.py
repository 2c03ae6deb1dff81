"""ViT: torchvision as the oracle (random weights saved to a file), position-embedding resizing, errors."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.vision_transformer import VisionTransformer, interpolate_embeddings

import cnnlab
from cnnlab.models.vit import VIT_CONFIGS

TOL = 1e-5


def tv_state_dict(tv_model: nn.Module, path) -> dict:
    """Randomise torchvision's zero-initialised head (else every logit is 0) and save the state_dict."""
    torch.manual_seed(1)
    nn.init.normal_(tv_model.heads.head.weight, std=0.05)
    nn.init.normal_(tv_model.heads.head.bias, std=0.05)
    sd = tv_model.state_dict()
    torch.save(sd, path)
    return sd


def tv_tiny(image_size: int = 224) -> VisionTransformer:
    """torchvision's ViT class with the Tiny row (192 wide, 3 heads): the same layout as vit_ti_16."""
    patch, dim, depth, heads, mlp = VIT_CONFIGS["vit_ti_16"]
    return VisionTransformer(image_size, patch, depth, heads, dim, mlp)


def assert_same_logits(ours, theirs, x):
    ours.eval(), theirs.eval()
    with torch.no_grad():
        a, b = ours(x), theirs(x)
    assert a.shape == b.shape
    assert (a - b).abs().max().item() <= TOL
    assert b.abs().max().item() > 1e-3  # not a trivially-zero comparison


# ViT-L/16 is ViT-B/16's code with a larger table (24 blocks of width 1024): its parameter count and
# MACs are checked against torchvision's (tests/reference.py); its 300-million-parameter checkpoint
# would add 30 s to the suite.
@pytest.mark.parametrize("name", [
    "vit_b_16",
    pytest.param("vit_b_32", marks=pytest.mark.slow),
])
def test_torchvision_checkpoint_gives_identical_logits(tmp_path, name):
    torch.manual_seed(0)
    tv = getattr(torchvision.models, name)().eval()
    tv_state_dict(tv, tmp_path / f"{name}.pth")
    ours = cnnlab.create_model(name, weights=tmp_path / f"{name}.pth")
    assert_same_logits(ours, tv, torch.randn(1, 3, 224, 224))


@pytest.fixture(scope="module")
def tiny224(tmp_path_factory):
    """(torchvision ViT with the Tiny row at 224, the path of its saved state_dict)."""
    torch.manual_seed(0)
    tv = tv_tiny(224)
    path = tmp_path_factory.mktemp("vit") / "ti224.pth"
    tv_state_dict(tv, path)
    return tv, path


def test_tiny_layout_matches_torchvision_class(tiny224):
    tv, path = tiny224
    ours = cnnlab.create_model("vit_ti_16", weights=path)
    assert_same_logits(ours, tv, torch.randn(2, 3, 224, 224))


def test_checkpoint_made_at_224_loads_into_384_model(tiny224):
    tv, path = tiny224
    tv384 = tv_tiny(384)
    tv384.load_state_dict(interpolate_embeddings(384, 16, dict(tv.state_dict())))  # torchvision's resizing
    ours = cnnlab.create_model("vit_ti_16", image_size=384, weights=path)
    assert ours.encoder.pos_embedding.shape == (1, 24 * 24 + 1, 192)
    assert ours.default_cfg.input_size == (3, 384, 384)
    assert_same_logits(ours, tv384, torch.randn(1, 3, 384, 384))


def test_run_time_resizing_equals_a_model_built_for_the_size(tiny224):
    _, path = tiny224
    at224 = cnnlab.create_model("vit_ti_16", weights=path).eval()
    at384 = cnnlab.create_model("vit_ti_16", image_size=384, weights=path).eval()
    x = torch.randn(1, 3, 384, 384)
    with torch.no_grad():
        assert torch.allclose(at224(x), at384(x), atol=TOL)
        assert at224.forward_features(torch.randn(1, 3, 160, 320)).shape == (1, 10 * 20 + 1, 192)


@pytest.mark.slow
def test_vit_b_16_at_384_matches_torchvision(tmp_path):
    torch.manual_seed(0)
    sd = tv_state_dict(torchvision.models.vit_b_16(), tmp_path / "b16.pth")
    tv384 = torchvision.models.vit_b_16(image_size=384)
    tv384.load_state_dict(interpolate_embeddings(384, 16, dict(sd)))
    ours = cnnlab.create_model("vit_b_16", weights=tmp_path / "b16.pth")  # built at 224, resized at run time
    assert_same_logits(ours, tv384, torch.randn(1, 3, 384, 384))


def test_attention_is_one_sdpa_call_per_block_over_all_heads(monkeypatch):
    model = cnnlab.create_model("vit_s_16").eval()
    assert not any(isinstance(m, nn.MultiheadAttention) for m in model.modules())
    shapes = []
    real = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, *args, **kwargs):
        shapes.append(tuple(q.shape))
        return real(q, k, v, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 64))
    assert shapes == [(2, 6, 17, 64)] * 12  # (batch, heads, 1 + 4*4 tokens, head_dim)


def test_features_stages_and_head():
    model = cnnlab.create_model("vit_ti_16", num_classes=5).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        tokens = model.forward_features(x)
        assert tokens.shape == (2, 197, 192)
        assert model.forward_head(tokens, pre_logits=True).shape == (2, 192)
    assert [s.name for s in model.stages] == [f"encoder.layers.encoder_layer_{i}" for i in (2, 5, 8, 11)]
    assert {s.reduction for s in model.stages} == {16}


@pytest.mark.parametrize("size", [225, 100])
def test_input_not_divisible_by_patch_is_one_clear_line(size):
    model = cnnlab.create_model("vit_ti_16")
    with pytest.raises(cnnlab.CnnlabError, match=f"{size}x{size}.*patch size 16") as info:
        model(torch.randn(1, 3, size, size))
    assert "\n" not in str(info.value)


def test_image_size_not_divisible_by_patch():
    with pytest.raises(cnnlab.CnnlabError, match="image_size 200 .*patch size 32"):
        cnnlab.create_model("vit_b_32", image_size=200)
