"""Oracle tests for the classic families: torchvision / timm peers loaded through ``weights=``.

Each peer is built with random weights (scaled by fan-in so that activations keep a unit-ish scale,
and batch-norm statistics that are not the identity), saved to a real file and loaded by name;
eval-mode float32 outputs must agree to 1e-5.
"""

from __future__ import annotations

import logging
import math

import pytest
import torch
import torchvision
from safetensors.torch import save_file

import cnnlab
from cnnlab.models.googlenet import GoogLeNetOutputs

TOL = 1e-5


def randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Fill every parameter and buffer with random values of a sensible scale, in place."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
                bound = math.sqrt(3.0 / (m.weight[0].numel()))  # variance 1 / fan_in
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 2 * bound - bound)
                if m.bias is not None:
                    m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 0.2 - 0.1)
            elif isinstance(m, torch.nn.BatchNorm2d):
                for t, lo, hi in ((m.weight, 0.5, 1.5), (m.bias, -0.1, 0.1),
                                  (m.running_mean, -0.1, 0.1), (m.running_var, 0.5, 1.5)):
                    t.copy_(torch.rand(t.shape, generator=g) * (hi - lo) + lo)
    return model.eval()


def tv_peer(name: str, **kw) -> torch.nn.Module:
    """A torchvision model with random weights, built on the meta device first (no slow init)."""
    with torch.device("meta"):
        model = getattr(torchvision.models, name)(weights=None, **kw)
    return randomise(model.to_empty(device="cpu"))


def save(peer: torch.nn.Module, path) -> str:
    sd = {k: v.contiguous() for k, v in peer.state_dict().items()}
    save_file(sd, str(path)) if str(path).endswith(".safetensors") else torch.save(sd, path)
    return str(path)


def assert_same_outputs(peer, ours, size: int = 64) -> None:
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    ours.eval()
    with torch.no_grad():
        want, got = peer(x), ours(x)
    assert isinstance(got, torch.Tensor) and got.shape == want.shape
    assert want.std() > 1e-2, "outputs too small for a meaningful comparison"
    assert (want - got).abs().max().item() <= TOL


def test_alexnet_from_torchvision_safetensors(tmp_path):
    peer = tv_peer("alexnet")
    ours = cnnlab.create_model("alexnet", weights=save(peer, tmp_path / "alexnet.safetensors"))
    assert_same_outputs(peer, ours)


# The eight VGGs are one class with four layer tables, with and without BatchNorm: the smallest and
# the largest table each way, and VGG-16 with BN, load torchvision's checkpoints here; every variant's
# parameter count and MACs are checked against torchvision's figures (tests/reference.py).
VGG = ["vgg11_bn"] + [pytest.param(n, marks=pytest.mark.slow) for n in ("vgg11", "vgg16_bn", "vgg19")]


@pytest.mark.parametrize("name", VGG)
def test_vgg_from_torchvision(tmp_path, name):
    peer = tv_peer(name)
    ours = cnnlab.create_model(name, weights=save(peer, tmp_path / f"{name}.pth"))
    assert_same_outputs(peer, ours, size=32)


@pytest.mark.parametrize("aux_logits", [True, False])
def test_googlenet_from_torchvision_with_aux_keys(tmp_path, aux_logits, caplog):
    peer = tv_peer("googlenet", aux_logits=True, init_weights=False)
    path = save(peer, tmp_path / "googlenet.pth")
    with caplog.at_level(logging.WARNING, logger="cnnlab"):
        ours = cnnlab.create_model("googlenet", aux_logits=aux_logits, weights=path)
    assert ("dropping" in caplog.text) == (not aux_logits)
    assert_same_outputs(peer, ours)


def test_googlenet_from_torchvision_without_aux_keys(tmp_path, caplog):
    peer = tv_peer("googlenet", aux_logits=False, init_weights=False)
    path = save(peer, tmp_path / "googlenet_noaux.pth")
    with caplog.at_level(logging.WARNING, logger="cnnlab"):
        ours = cnnlab.create_model("googlenet", aux_logits=True, weights=path)
    assert "no aux classifiers" in caplog.text
    assert_same_outputs(peer, ours)


def test_googlenet_training_outputs_match_torchvision(tmp_path):
    """Train mode: same main and aux logits as torchvision (same dropout draws, same order)."""
    peer = tv_peer("googlenet", aux_logits=True, init_weights=False)
    ours = cnnlab.create_model("googlenet", weights=save(peer, tmp_path / "g.pth"))
    x = torch.randn(2, 3, 64, 64)
    peer.train(), ours.train()
    torch.manual_seed(3)
    want = peer(x)  # torchvision: (logits, aux2, aux1)
    torch.manual_seed(3)
    got = ours(x)
    assert isinstance(got, GoogLeNetOutputs) and got._fields == ("logits", "aux1", "aux2")
    for a, b in ((got.logits, want.logits), (got.aux1, want.aux_logits1), (got.aux2, want.aux_logits2)):
        assert (a - b).abs().max().item() <= TOL


def test_googlenet_transform_input_matches_torchvision(tmp_path):
    peer = tv_peer("googlenet", aux_logits=False, init_weights=False, transform_input=True)
    ours = cnnlab.create_model("googlenet", aux_logits=False, transform_input=True,
                               weights=save(peer, tmp_path / "g.pth"))
    assert_same_outputs(peer, ours)


def test_googlenet_other_class_count_reinitialises_all_heads(tmp_path, caplog):
    peer = tv_peer("googlenet", aux_logits=True, init_weights=False)
    path = save(peer, tmp_path / "g.pth")
    with caplog.at_level(logging.WARNING, logger="cnnlab"):
        ours = cnnlab.create_model("googlenet", num_classes=5, weights=path)
    assert "re-initialised" in caplog.text
    assert torch.equal(ours.inception5b.branch1.conv.weight, peer.inception5b.branch1.conv.weight)
    assert torch.equal(ours.aux1.fc1.weight, peer.aux1.fc1.weight)
    ours.train()
    out = ours(torch.randn(2, 3, 64, 64))
    assert [t.shape for t in out] == [(2, 5)] * 3


def test_xception_from_timm(tmp_path):
    timm = pytest.importorskip("timm")
    peer = randomise(timm.create_model("legacy_xception", pretrained=False, drop_rate=0.5))
    ours = cnnlab.create_model("xception", weights=save(peer, tmp_path / "xception.pth"))
    assert list(ours.state_dict()) == list(peer.state_dict())
    assert_same_outputs(peer, ours, size=64)
    x = torch.randn(2, 3, 64, 64)
    peer.train(), ours.train()  # batch statistics and the same dropout draws
    torch.manual_seed(5)
    want = peer(x)
    torch.manual_seed(5)
    assert (ours(x) - want).abs().max().item() <= TOL
