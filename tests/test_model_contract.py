"""Registry-driven tests: every registered model honours the contract of cnnlab.models.base."""

from __future__ import annotations

import pytest
import torch

import cnnlab
from cnnlab.models.base import ClassifierModel, DataConfig, Stage
from cnnlab.registry import get_entry, native_model

from .reference import REFERENCE

ALL = cnnlab.list_models()


def small_input(model: ClassifierModel, in_chans: int | None = None) -> torch.Tensor:
    c, h, w = model.default_cfg.input_size
    size = max(getattr(model, "min_input_size", 0) or 0, min(h, 64))
    return torch.randn(2, in_chans or c, size, size)


@pytest.fixture(scope="module", params=ALL)
def built(request):
    torch.manual_seed(0)
    return request.param, native_model(request.param, num_classes=7)


def test_registry_is_not_empty():
    assert "lenet5" in ALL and len(ALL) == len(set(ALL))


def test_contract_attributes(built):
    name, model = built
    assert isinstance(model, ClassifierModel), name
    assert isinstance(model.default_cfg, DataConfig)
    assert model.stages and all(isinstance(s, Stage) for s in model.stages)
    reductions = [s.reduction for s in model.stages]
    assert reductions == sorted(reductions), "stages must be in order"
    for stage, module in model.stage_modules():
        assert isinstance(module, torch.nn.Module), stage
    assert get_entry(name).paper


def test_forward_backward_and_stages(built):
    name, model = built
    model.train()
    x = small_input(model)
    out = model(x)
    logits = out[0] if isinstance(out, tuple) else out
    assert logits.shape == (2, 7), name
    logits.float().sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads[:5]) and grads[-1] is not None
    model.zero_grad(set_to_none=True)
    model.eval()
    with torch.no_grad():
        feats = model.forward_features(x)
        pooled = model.forward_head(feats, pre_logits=True)
        assert pooled.shape == (2, model.num_features), name
        assert torch.allclose(model.forward_head(feats), model(x), atol=1e-5)


def test_stage_channels_match_outputs(built):
    name, model = built
    model.eval()
    x = small_input(model)
    seen = {}
    hooks = [m.register_forward_hook(lambda _m, _i, o, s=s: seen.setdefault(s.name, o))
             for s, m in model.stage_modules()]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    for stage in model.stages:
        out = seen[stage.name]
        out = out[0] if isinstance(out, tuple) else out
        channel_dim = 1 if out.ndim == 4 and out.shape[1] == stage.channels else -1
        assert out.shape[channel_dim] == stage.channels, (name, stage)


def test_reset_classifier(built):
    name, model = built
    model.reset_classifier(3)
    model.eval()
    with torch.no_grad():
        assert model(small_input(model)).shape == (2, 3)
    model.reset_classifier(0)
    with torch.no_grad():
        assert model(small_input(model)).shape == (2, model.num_features)


def test_head_replaced_and_fine_tuned_with_the_backbone_frozen(built):
    """What ``cnnlab finetune`` does to every model: a new zero head, all but the head frozen (the
    layers after the last stage too when the head has no parameters: LeNet-5's RBF codes), one step."""
    from cnnlab import transfer as T

    name, model = built
    T.replace_head(model, 3)
    T.freeze_stages(model, "all")
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable, name
    before = [p.detach().clone() for p in trainable]
    model.eval()
    opt = torch.optim.SGD(trainable, lr=0.1)
    out = model(small_input(model))
    assert out.shape == (2, 3), name
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 2])).backward()
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, trainable)), name
    T.replace_head(model, 0)
    with torch.no_grad():
        assert model(small_input(model)).shape == (2, model.num_features)


@pytest.mark.parametrize("name", ALL)
def test_in_chans_1(name):
    model = native_model(name, in_chans=1, num_classes=4).eval()
    assert model.default_cfg.input_size[0] == 1
    with torch.no_grad():
        assert model(small_input(model, 1)).shape == (2, 4)


@pytest.mark.parametrize("name", sorted(set(REFERENCE) & set(ALL)))
def test_param_count_matches_reference(name):
    ref = REFERENCE[name]
    if ref.params is None:
        pytest.skip("no figure")
    with torch.device("meta"):
        model = native_model(name, **ref.kwargs)
    params = sum(p.numel() for p in model.parameters())
    if ref.approx:
        assert float(f"{params:.2g}") == float(f"{ref.params:.2g}"), (name, params)
    else:
        assert params == ref.params, (name, params)


def test_unknown_model_suggests_close_names():
    with pytest.raises(cnnlab.CnnlabError, match="did you mean lenet5"):
        cnnlab.create_model("lenet6")


@pytest.mark.parametrize("bad", [-1, 2.5, "ten", True])
def test_nonsense_class_count(bad):
    with pytest.raises(cnnlab.CnnlabError, match="num_classes"):
        cnnlab.create_model("lenet5", num_classes=bad)


def test_list_models_wildcard():
    assert cnnlab.list_models("lenet*") == ["lenet5", "lenet5_relu"]
    assert cnnlab.list_models("nothing*") == []
