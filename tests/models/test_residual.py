"""ResNet / Wide ResNet / ResNeXt / SE-ResNet / pre-activation and CIFAR residual nets.

Oracles: randomly initialised torchvision / timm peers, saved to a file and loaded through
``create_model(name, weights=path)``, must give the peer's outputs (eval, float32, max |diff| <= 1e-5).
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

import cnnlab
from cnnlab.errors import CnnlabError
from cnnlab.models.resnet_cifar import ZeroPadShortcut, wide_resnet_cifar
from cnnlab.registry import native_model

torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")


def randomise_bn(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Random BN affine parameters (timm zero-inits the last BN of a block), then running statistics
    from one training-mode pass, so eval-mode activations stay of order one and every block counts."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data = torch.rand(m.weight.shape, generator=gen) + 0.5
            m.bias.data = torch.randn(m.bias.shape, generator=gen) * 0.1
            m.reset_running_stats()
            m.momentum = None  # cumulative average: one batch gives that batch's statistics
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()


def assert_loads_peer(peer: torch.nn.Module, name: str, path, size: int = 64) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, size, size)
    randomise_bn(peer, torch.randn(4, 3, size, size))
    sd = {k: v.contiguous() for k, v in peer.state_dict().items()}
    if str(path).endswith(".safetensors"):
        save_file(sd, str(path))
    else:
        torch.save(sd, path)
    model = cnnlab.create_model(name, weights=str(path)).eval()
    with torch.no_grad():
        want, got = peer(x), model(x)
    assert got.shape == want.shape == (2, 1000)
    assert (got - want).abs().max().item() <= 1e-5, name


def tv(name: str) -> torch.nn.Module:
    return getattr(torchvision.models, name)(weights=None)


FAST_TV = ["resnet18", "resnext50_32x4d"]
SLOW_TV = ["resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2", "wide_resnet101_2",
           "resnext101_32x8d", "resnext101_64x4d"]


@pytest.mark.parametrize("name", FAST_TV)
def test_torchvision_checkpoint_gives_same_outputs(name, tmp_path):
    assert_loads_peer(tv(name), name, tmp_path / f"{name}.pth")


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW_TV)
def test_torchvision_checkpoint_gives_same_outputs_big(name, tmp_path):
    assert_loads_peer(tv(name), name, tmp_path / f"{name}.pth")


# cnnlab name -> timm name; the v1.5 SE nets share timm's names, the v1 one is renamed on load.
TIMM_PEERS = {"se_resnet50": "seresnet50", "se_resnet50_v1": "legacy_seresnet50"}
SLOW_TIMM_PEERS = {"se_resnext50_32x4d": "seresnext50_32x4d", "preact_resnet50": "resnetv2_50",
                   "resnet18": "resnet18", "se_resnet101": "seresnet101"}


@pytest.mark.parametrize("name", sorted(TIMM_PEERS))
def test_timm_checkpoint_gives_same_outputs(name, tmp_path):
    suffix = ".safetensors" if name == "se_resnet50" else ".pth"
    assert_loads_peer(timm.create_model(TIMM_PEERS[name]), name, tmp_path / f"peer{suffix}")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SLOW_TIMM_PEERS))
def test_timm_checkpoint_gives_same_outputs_big(name, tmp_path):
    assert_loads_peer(timm.create_model(SLOW_TIMM_PEERS[name]), name, tmp_path / "peer.pth")


def test_v1_strides_on_first_1x1_v15_on_3x3():
    with torch.device("meta"):
        v1, v15 = cnnlab.create_model("resnet50_v1"), cnnlab.create_model("resnet50")
    assert v1.layer2[0].conv1.stride == (2, 2) and v1.layer2[0].conv2.stride == (1, 1)
    assert v15.layer2[0].conv1.stride == (1, 1) and v15.layer2[0].conv2.stride == (2, 2)
    assert v1.maxpool.ceil_mode and v1.maxpool.padding == 0
    assert "v1.5" in cnnlab.models.resnet.__doc__


def test_se_and_cardinality_are_options_of_one_class():
    with torch.device("meta"):
        se_opt = cnnlab.create_model("resnet50", attn_layer="se")
        se = cnnlab.create_model("se_resnet50")
        rx = cnnlab.create_model("resnext101_64x4d")
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert type(se_opt) is type(se) is type(rx)
    assert count(se_opt) == count(se) == 28_088_024
    assert se.layer1[0].se.fc1.out_channels == 256 // 16
    assert rx.layer1[0].conv2.groups == 64  # one grouped conv, no loop over groups
    with torch.device("meta"):
        r8 = cnnlab.create_model("resnet50", attn_layer="se", se_reduction=8)
    assert r8.layer4[0].se.fc1.out_channels == 2048 // 8


@pytest.mark.parametrize("kwargs, match", [({"attn_layer": "cbam"}, "attn_layer"),
                                           ({"cardinality": 0}, "cardinality"),
                                           ({"depths": (3, 4)}, "depths"), ({"block": "huge"}, "block"),
                                           ({"se_reduction": 2.5}, "se_reduction")])
def test_impossible_options_are_clear_errors(kwargs, match):
    with pytest.raises(CnnlabError, match=match):
        cnnlab.create_model("resnet50", **kwargs)


def test_legacy_v1_checkpoint_into_v15_model_gives_a_notice(tmp_path, caplog):
    with torch.device("meta"):
        v1_keys = timm.create_model("legacy_seresnet50").state_dict()
    sd = {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in v1_keys.items()}
    torch.save(sd, tmp_path / "legacy.pth")
    cnnlab.create_model("se_resnet50", weights=tmp_path / "legacy.pth")
    assert "use the *_v1 variant" in caplog.text


# --- CIFAR -------------------------------------------------------------------------------------


def test_option_a_shortcut_has_no_parameters_and_zero_pads():
    model = native_model("resnet20")
    shortcuts = [b.downsample for layer in (model.layer1, model.layer2, model.layer3) for b in layer
                 if b.downsample is not None]
    assert len(shortcuts) == 2 and all(isinstance(s, ZeroPadShortcut) for s in shortcuts)
    assert sum(p.numel() for s in shortcuts for p in s.parameters()) == 0
    x = torch.randn(1, 16, 8, 8)
    y = ZeroPadShortcut(32, 2)(x)
    assert y.shape == (1, 32, 4, 4)
    assert torch.equal(y[:, 8:24], x[:, :, ::2, ::2])
    assert not y[:, :8].any() and not y[:, 24:].any()


def stage_shapes(model) -> list[tuple[int, ...]]:
    seen = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: seen.append(tuple(o.shape[1:])))
             for _, m in model.stage_modules()]
    with torch.no_grad():
        model.eval()(torch.randn(1, 3, 32, 32))
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("name, widths", [("resnet20", (16, 32, 64)), ("resnet56", (16, 32, 64)),
                                          ("preact_resnet164", (64, 128, 256))])
def test_cifar_stage_shapes(name, widths):
    model = native_model(name)
    assert model.default_cfg.input_size == (3, 32, 32) and model.num_classes == 10
    assert stage_shapes(model) == [(c, s, s) for c, s in zip(widths, (32, 16, 8))]
    assert [s.reduction for s in model.stages] == [1, 2, 4]


def test_wrn_builder_shapes_and_depth_check():
    model = wide_resnet_cifar(16, 4)
    assert stage_shapes(model) == [(64, 32, 32), (128, 16, 16), (256, 8, 8)]
    assert len(model.layer1) == 2  # (16 - 4) / 6
    with pytest.raises(CnnlabError, match="depth 27"):
        wide_resnet_cifar(27, 10)


def test_wrn_dropout_sits_between_the_two_convs():
    torch.manual_seed(0)
    model = wide_resnet_cifar(10, 2, block_drop_rate=0.3)
    block = model.layer2[0]
    assert isinstance(block.drop, torch.nn.Dropout) and block.drop.p == 0.3
    calls = []
    for part in ("conv1", "drop", "norm2", "conv2"):
        getattr(block, part).register_forward_hook(lambda *_a, p=part: calls.append(p))
    x = torch.randn(2, 3, 32, 32)
    model.train()
    with torch.no_grad():
        a, b = model(x), model(x)
    assert calls[:4] == ["conv1", "drop", "norm2", "conv2"]
    assert not torch.allclose(a, b)  # dropout is active in training
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    plain = wide_resnet_cifar(10, 2)
    assert isinstance(plain.layer2[0].drop, torch.nn.Identity)
    with torch.device("meta"):
        assert isinstance(native_model("wrn28_10", block_drop_rate=0.3).layer1[0].drop, torch.nn.Dropout)
