"""timm ViT and Swin checkpoints: timm itself is the oracle (random weights saved to a file, loaded by
path into the cnnlab model, same logits), in both file formats and both Swin layouts; head changes,
other input sizes and files of other architectures."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.errors import CheckpointError, CnnlabError
from cnnlab.models.vit import resize_pos_embedding

timm = pytest.importorskip("timm")

TOL = 1e-4


def save(sd: dict, path) -> str:
    if str(path).endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    else:
        torch.save(sd, path)
    return str(path)


def timm_model(name: str, **kw) -> nn.Module:
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, **kw).eval()
    head = model.get_classifier()
    if isinstance(head, nn.Linear):  # timm's ViT head starts at zero: every logit would be 0
        nn.init.normal_(head.weight, std=0.05)
        nn.init.normal_(head.bias, std=0.05)
    return model


def max_diff(ours: nn.Module, theirs: nn.Module, size: int = 224) -> float:
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = ours.eval()(x), theirs(x)
    assert a.shape == b.shape
    assert b.abs().max().item() > 1e-2  # not a trivially-zero comparison
    return (a - b).abs().max().item()


@pytest.fixture(scope="module")
def vit_tiny():
    return timm_model("vit_tiny_patch16_224")


@pytest.fixture(scope="module")
def swin_tiny():
    return timm_model("swin_tiny_patch4_window7_224")


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_timm_vit_tiny_gives_the_same_logits(tmp_path, vit_tiny, suffix):
    path = save(vit_tiny.state_dict(), tmp_path / f"vit_tiny{suffix}")
    ours = cnnlab.create_model("vit_ti_16", weights=path)
    assert max_diff(ours, vit_tiny) <= TOL


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_timm_swin_tiny_gives_the_same_logits(tmp_path, swin_tiny, suffix):
    path = save(swin_tiny.state_dict(), tmp_path / f"swin_tiny{suffix}")
    ours = cnnlab.create_model("swin_t", weights=path)
    assert max_diff(ours, swin_tiny) <= TOL


def original_swin_layout(model: nn.Module) -> dict:
    """timm's Swin state_dict in the original release's layout: patch merging at the END of stages 1-3
    (``layers.0-2.downsample``), ``head`` without ``.fc``, and the index / mask buffers saved."""
    sd = {}
    for k, v in model.state_dict().items():
        if ".downsample." in k:
            stage = int(k.split(".")[1])
            k = k.replace(f"layers.{stage}.", f"layers.{stage - 1}.", 1)
        sd[k.replace("head.fc.", "head.")] = v
    for name, module in model.named_modules():
        if hasattr(module, "relative_position_bias_table"):
            sd[f"{name}.relative_position_index"] = module.relative_position_index
    for name, module in model.named_modules():
        if getattr(module, "attn_mask", None) is not None:
            sd[f"{name}.attn_mask"] = module.attn_mask
    return sd


def test_original_swin_layout_gives_the_same_logits(tmp_path, swin_tiny):
    from timm.models.swin_transformer import checkpoint_filter_fn

    old = original_swin_layout(swin_tiny)
    assert any(k.endswith("attn_mask") for k in old) and "layers.0.downsample.reduction.weight" in old
    # timm itself reads this layout back into its current one: the synthesised file is the real format
    back = checkpoint_filter_fn(old, swin_tiny)
    assert back.keys() == swin_tiny.state_dict().keys()
    ours = cnnlab.create_model("swin_t", weights=save(old, tmp_path / "swin_orig.pth"))
    assert max_diff(ours, swin_tiny) <= TOL


def test_class_count_change_reinitialises_the_head_with_a_notice(tmp_path, vit_tiny, swin_tiny, caplog):
    path = save(vit_tiny.state_dict(), tmp_path / "vit.pth")
    ours = cnnlab.create_model("vit_ti_16", num_classes=7, weights=path).eval()
    assert "1000 classes" in caplog.text and "re-initialised" in caplog.text
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert ours(x).shape == (1, 7)
        assert (ours.forward_features(x) - vit_tiny.forward_features(x)).abs().max().item() <= TOL
    caplog.clear()
    path = save(swin_tiny.state_dict(), tmp_path / "swin.safetensors")
    ours = cnnlab.create_model("swin_t", num_classes=7, weights=path).eval()
    assert "re-initialised" in caplog.text
    with torch.no_grad():  # ours is (B, C, H, W), timm's channels-last (B, H, W, C)
        diff = ours.forward_features(x).permute(0, 2, 3, 1) - swin_tiny.forward_features(x)
    assert diff.abs().max().item() <= TOL


def test_timm_vit_file_made_at_224_loads_into_a_384_model(tmp_path, vit_tiny):
    """Position embeddings are resized on loading as for torchvision files: the 384 model equals the
    224 model run at 384 (which resizes the same embeddings at run time)."""
    path = save(vit_tiny.state_dict(), tmp_path / "vit.pth")
    at224 = cnnlab.create_model("vit_ti_16", weights=path).eval()
    at384 = cnnlab.create_model("vit_ti_16", image_size=384, weights=path).eval()
    assert at384.encoder.pos_embedding.shape == (1, 24 * 24 + 1, 192)
    torch.testing.assert_close(
        at384.encoder.pos_embedding, resize_pos_embedding(vit_tiny.pos_embed, (24, 24))
    )
    assert max_diff(at384, at224, size=384) <= TOL


@pytest.mark.parametrize("peer, ours", [
    ("resnet18", "vit_b_16"),  # another family
    ("vit_tiny_patch16_224", "swin_t"),
    ("swin_tiny_patch4_window7_224", "vit_ti_16"),
    ("vit_small_patch16_224", "vit_ti_16"),  # same family, another width
])
def test_file_of_another_architecture_is_a_one_line_error(tmp_path, peer, ours):
    path = save(timm.create_model(peer).state_dict(), tmp_path / "peer.pth")
    with pytest.raises(CheckpointError, match=f"does not fit {ours}") as err:
        cnnlab.create_model(ours, weights=path)
    assert "\n" not in str(err.value)


def test_timm_vit_with_parts_cnnlab_lacks_fails_instead_of_loading_wrongly(tmp_path):
    """global_pool='avg' moves timm's final norm to fc_norm and averages tokens: not our head."""
    path = save(timm.create_model("vit_tiny_patch16_224", global_pool="avg").state_dict(), tmp_path / "v.pth")
    with pytest.raises(CheckpointError, match="fc_norm"):
        cnnlab.create_model("vit_ti_16", weights=path)


def test_swin_file_for_other_windows_names_the_window(tmp_path):
    sd = timm.create_model("swin_tiny_patch4_window7_224", window_size=8, img_size=256).state_dict()
    with pytest.raises(CnnlabError, match="8x8 windows.*7x7") as err:
        cnnlab.create_model("swin_t", weights=save(sd, tmp_path / "w8.pth"))
    assert "\n" not in str(err.value)
