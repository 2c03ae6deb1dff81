"""MAC counting: unit rules against hand counts, registered models against REFERENCE.md and
torchvision's published metadata, and the promise that profiling leaves the model untouched."""

from __future__ import annotations

import functools

import pytest
import torch
import torchvision
from torch import nn

import cnnlab
from cnnlab.analysis import profile
from cnnlab.analysis.counting import MacCounter
from cnnlab.errors import CnnlabError
from cnnlab.registry import native_model

from ..reference import REFERENCE

ALL = cnnlab.list_models()
# Cheap enough for every run; the rest are marked slow (they still run in CI).
FAST = {
    "lenet5_relu",
    "alexnet_2012",
    "zfnet",
    "vgg16",
    "resnet50",
    "resnet50_v1",
    "googlenet",
    "mobilenet_v2",
    "mobilenet_v1",
    "vit_b_16",
    "wrn28_10",
    "efficientnet_b0",
    "resnext50_32x4d",
    "nin",
}


def _param(name):
    return pytest.param(name, marks=() if name in FAST else pytest.mark.slow)


@functools.cache
def profiled(name: str, size: tuple[int, ...] | None = None):
    """``size`` None: the REFERENCE input, else the model's default."""
    ref = REFERENCE.get(name)
    with torch.device("meta"):
        model = native_model(name, **(ref.kwargs if ref else {}))
    size = size or (ref.input if ref and ref.input else model.default_cfg.input_size)
    return profile(model, size)


def sig3(x: float) -> float:
    return float(f"{x:.3g}")


@pytest.mark.parametrize("name", [_param(n) for n in ALL if n in REFERENCE and REFERENCE[n].gmacs])
def test_macs_match_reference(name):
    assert sig3(profiled(name).macs / 1e9) == sig3(REFERENCE[name].gmacs)


def _tv_weights():
    out = {}
    for name in ALL:
        if name in torchvision.models.list_models():
            try:
                weights = torchvision.models.get_model_weights(name).DEFAULT
                crop = list(weights.transforms().crop_size)
                out[name] = weights.meta, tuple(crop * 2 if len(crop) == 1 else crop)
            except (ValueError, KeyError):
                continue
    return out


TV = _tv_weights()


@pytest.mark.parametrize("name", [_param(n) for n in sorted(TV)])
def test_params_and_macs_match_torchvision_metadata(name):
    (meta, crop), ref = TV[name], REFERENCE.get(name)
    model_input = ref.input if ref and ref.input else None
    # torchvision's figures are at its weights' evaluation crop (EfficientNet-B2..B7 differ from the paper's)
    prof = profiled(name, (3, *crop) if model_input is None or model_input[1:] != crop else None)
    assert prof.params == meta["num_params"]
    decimals = len(repr(meta["_ops"]).partition(".")[2])
    assert round(prof.macs / 1e9, decimals) == meta["_ops"]


@pytest.mark.parametrize("name, gmacs", [("vit_b_16", 17.56), ("swin_t", 4.49), ("resnet50", 4.09)])
def test_torchvision_models_directly(name, gmacs):
    with torch.device("meta"):
        model = torchvision.models.get_model(name)
    prof = profile(model)
    assert round(prof.macs / 1e9, 2) == gmacs
    assert prof.flops == 2 * prof.macs


def counted(fn, *shapes, device="meta") -> int:
    xs = [torch.empty(s, device=device) for s in shapes]
    with MacCounter() as counter:
        fn(*xs)
    return counter.macs


def test_conv_rule_groups_dilation_stride():
    conv = nn.Conv2d(8, 16, 3, stride=2, padding=2, dilation=2, groups=4, device="meta")
    # output 16 x 16 x 16 (floor((32 + 4 - 5) / 2) + 1 = 16); 3*3*(8/4) per output element
    assert counted(conv, (2, 8, 32, 32)) == 2 * 16 * 16 * 16 * 9 * 2


def test_matmul_family():
    assert counted(lambda a, b: a @ b, (5, 7), (7, 3)) == 5 * 7 * 3
    assert counted(lambda a, b: torch.bmm(a, b), (4, 5, 7), (4, 7, 3)) == 4 * 5 * 7 * 3
    assert counted(lambda a, b: torch.einsum("bij,bjk->bik", a, b), (4, 5, 7), (4, 7, 3)) == 4 * 5 * 7 * 3
    assert counted(lambda c, a, b: torch.baddbmm(c, a, b), (4, 5, 3), (4, 5, 7), (4, 7, 3)) == 4 * 5 * 7 * 3
    lin = nn.Linear(7, 3, device="meta")
    assert counted(lin, (2, 5, 7)) == 2 * 5 * 7 * 3


ATTN = (2, 4, 10, 8)  # batch, heads, tokens, head dim
ATTN_MACS = 2 * 4 * 10 * 10 * (8 + 8)


def test_attention_manual_and_sdpa():
    def manual(q, k, v):
        return (q @ k.transpose(-2, -1)).softmax(-1) @ v

    assert counted(manual, ATTN, ATTN, ATTN) == ATTN_MACS
    sdpa = nn.functional.scaled_dot_product_attention
    assert counted(sdpa, ATTN, ATTN, ATTN) == ATTN_MACS
    assert counted(sdpa, ATTN, ATTN, ATTN, device="cpu") == ATTN_MACS


FUSED_ATTENTION = ["_scaled_dot_product_efficient_attention", "_scaled_dot_product_flash_attention",
                   "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_cudnn_attention"]


@pytest.mark.parametrize("op", FUSED_ATTENTION)
def test_fused_attention_kernels(op):
    fn = getattr(torch.ops.aten, op, None)
    if fn is None:
        pytest.skip(f"{op} is not in this torch")
    extra = {"_scaled_dot_product_efficient_attention": (None, False),
             "_scaled_dot_product_cudnn_attention": (None, False)}.get(op, ())
    try:
        macs = counted(lambda q, k, v: fn(q, k, v, *extra), ATTN, ATTN, ATTN)
    except (RuntimeError, NotImplementedError, TypeError) as exc:
        pytest.skip(f"{op} has no meta kernel here: {exc}")
    assert macs == ATTN_MACS


@pytest.mark.parametrize("train", [False, True])
def test_multihead_attention_fast_and_slow_paths(train):
    mha = nn.MultiheadAttention(32, 4, batch_first=True)

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = mha

        def forward(self, x):
            return self.mha(x, x, x, need_weights=False)[0]

    prof = profile(Wrap(), (10, 32), batch_size=2, train=train)
    projections = 2 * 10 * 32 * 32 * 4  # q, k, v and out
    assert prof.macs == projections + 2 * 10 * 10 * 32 * 2


def test_rows_shapes_params_and_uncounted():
    model = cnnlab.create_model("lenet5_relu", num_classes=10, in_chans=1)
    prof = profile(model, (1, 32, 32), batch_size=3)
    conv1 = prof.row("features.0")
    assert conv1.output_shape == (3, 6, 28, 28)
    assert conv1.params == 156 and conv1.macs == 3 * 28 * 28 * 6 * 25
    assert conv1.activation_bytes == 3 * 6 * 28 * 28 * 4
    assert prof.row("features").macs == sum(prof.row(f"features.{i}").macs for i in range(8))
    assert prof.params == 61_706 and prof.macs == 3 * 416_520
    assert "max_pool2d_with_indices" in prof.uncounted and "relu_" in prof.uncounted
    assert not any(n in prof.uncounted for n in ("view", "empty", "convolution"))


def _state(model):
    return {
        "tensors": {k: v.clone() for k, v in model.state_dict(keep_vars=True).items()},
        "training": [m.training for m in model.modules()],
        "grad": [p.requires_grad for p in model.parameters()],
        "devices": {t.device for t in model.state_dict().values()},
    }


def test_profile_leaves_model_untouched():
    model = cnnlab.create_model("resnet18")
    model.train()
    model.layer1.eval()
    model.fc.weight.requires_grad_(False)
    before = _state(model)
    profile(model)
    after = _state(model)
    assert before["training"] == after["training"] and before["grad"] == after["grad"]
    assert before["devices"] == after["devices"] == {torch.device("cpu")}
    assert before["tensors"].keys() == after["tensors"].keys()
    assert all(torch.equal(before["tensors"][k], after["tensors"][k]) for k in before["tensors"])
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
    assert all(p.grad is None for p in model.parameters())


def test_bad_input_is_a_cnnlab_error():
    model = cnnlab.create_model("lenet5_relu", num_classes=10, in_chans=1)
    with pytest.raises(CnnlabError, match="cannot run on a 3x32x32 input"):
        profile(model, (3, 32, 32))
    with pytest.raises(CnnlabError):
        profile(model, (1, 32, 32), batch_size=0)


class MixesCpuTensors(nn.Module):
    """Adds a CPU tensor made in forward: meta tensors refuse it, fake tensors accept it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return nn.functional.hardswish(self.conv(x) + torch.ones(4, 1, 1, device="cpu"))


def test_falls_back_to_fake_tensors():
    from cnnlab.analysis import receptive_field
    from cnnlab.analysis.fake_run import Probe, _attempt

    model = MixesCpuTensors()
    with pytest.raises(RuntimeError):
        _attempt(model, (3, 8, 8), 1, Probe(), train=False, grad=False, fake=False)
    assert profile(model, (3, 8, 8)).macs == 4 * 6 * 6 * 27
    assert receptive_field(model, (3, 8, 8), ["conv"])["conv"].size == 3
