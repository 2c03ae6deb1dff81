"""Models without a peer checked against their papers: layer output shapes, MACs, structure.

Shapes and MACs are computed on the meta device (no arithmetic), so full-size inputs are cheap.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.models.googlenet import GoogLeNetOutputs

from ..reference import REFERENCE


def trace(model: nn.Module, size: int, names=None) -> tuple[dict[str, tuple], list[tuple], float]:
    """Output shapes (C, H, W) of the named modules, of every conv (in order), and total GMACs."""
    shapes: dict[str, tuple] = {}
    convs: list[tuple] = []
    macs = [0]

    def hook(module, _inp, out, name):
        if name in wanted:
            shapes[name] = tuple(out.shape[1:])
        if isinstance(module, nn.Conv2d):
            convs.append(tuple(out.shape[1:]))
            macs[0] += out[0].numel() * module.weight[0].numel()
        elif isinstance(module, nn.Linear):
            macs[0] += module.in_features * module.out_features

    wanted = set(names or ())
    handles = [m.register_forward_hook(lambda mod, i, o, n=n: hook(mod, i, o, n))
               for n, m in model.named_modules() if n in wanted or isinstance(m, nn.Conv2d | nn.Linear)]
    with torch.no_grad():
        model(torch.empty(1, model.default_cfg.input_size[0], size, size, device="meta"))
    for h in handles:
        h.remove()
    return shapes, convs, macs[0] / 1e9


def build(name: str, **kw) -> nn.Module:
    with torch.device("meta"):
        return cnnlab.create_model(name, **kw).eval()


def test_alexnet_2012_shapes_towers_and_lrn():
    """Paper Fig. 2 / Section 3.5 at 227: 55x55x96, 27x27x256, 13x13x384, 13x13x384, 13x13x256, 6x6x256."""
    model = build("alexnet_2012")
    assert model.default_cfg.input_size == (3, 227, 227)
    _, convs, _ = trace(model, 227)
    assert convs == [(96, 55, 55), (256, 27, 27), (384, 13, 13), (384, 13, 13), (256, 13, 13)]
    assert model.forward_features(torch.empty(1, 3, 227, 227, device="meta")).shape == (1, 256, 6, 6)
    groups = [m.groups for m in model.features if isinstance(m, nn.Conv2d)]
    assert groups == [1, 2, 1, 2, 2]  # conv3 is the only conv that sees both GPU towers
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in model.features) == 2
    pools = [m for m in model.features if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride) for p in pools] == [(3, 2)] * 3  # overlapping pooling


def test_zfnet_shapes():
    """Paper Fig. 3 at 224: conv1 110x110x96, pool1 55x55, conv2 26x26x256, pool2 13x13, conv3-5, 6x6x256."""
    model = build("zfnet")
    shapes, convs, _ = trace(model, 224, ["features.2", "features.6"])
    assert convs == [(96, 110, 110), (256, 26, 26), (384, 13, 13), (384, 13, 13), (256, 13, 13)]
    assert shapes["features.2"] == (96, 55, 55) and shapes["features.6"] == (256, 13, 13)
    assert model.forward_features(torch.empty(1, 3, 224, 224, device="meta")).shape == (1, 256, 6, 6)
    first = model.features[0]
    assert first.kernel_size == (7, 7) and first.stride == (2, 2)


GOOGLENET_TABLE1 = {  # paper Table 1 at 224: output size of each layer
    "conv1": (64, 112, 112), "maxpool1": (64, 56, 56), "conv3": (192, 56, 56), "maxpool2": (192, 28, 28),
    "inception3a": (256, 28, 28), "inception3b": (480, 28, 28), "maxpool3": (480, 14, 14),
    "inception4a": (512, 14, 14), "inception4b": (512, 14, 14), "inception4c": (512, 14, 14),
    "inception4d": (528, 14, 14), "inception4e": (832, 14, 14), "maxpool4": (832, 7, 7),
    "inception5a": (832, 7, 7), "inception5b": (1024, 7, 7),
}


@pytest.mark.parametrize("name, k5", [("googlenet_paper", 5), ("googlenet", 3)])
def test_googlenet_table1_shapes_and_5x5_branch(name, k5):
    model = build(name, aux_logits=False)
    shapes, _, _ = trace(model, 224, GOOGLENET_TABLE1)
    assert shapes == GOOGLENET_TABLE1
    kernels = {m.branch3[1].conv.kernel_size for n, m in model.named_children() if n.startswith("inception")}
    assert kernels == {(k5, k5)}
    assert any(isinstance(m, nn.LocalResponseNorm) for m in model.modules()) == (name == "googlenet_paper")


def test_googlenet_paper_aux_heads_in_training_only():
    """Section 5: 5x5/3 average pool -> 4x4x512 (4a) and 4x4x528 (4d), 1x1 conv 128, FC 1024, FC classes."""
    model = build("googlenet_paper", num_classes=10)
    seen = {}
    for n in ("aux1.conv", "aux2.conv"):
        model.get_submodule(n).register_forward_hook(
            lambda m, i, o, n=n: seen.update({n: (i[0].shape, o.shape)})
        )
    x = torch.empty(2, 3, 224, 224, device="meta")
    model.train()
    out = model(x)
    assert isinstance(out, GoogLeNetOutputs) and [t.shape for t in out] == [(2, 10)] * 3
    assert seen["aux1.conv"] == ((2, 512, 4, 4), (2, 128, 4, 4))
    assert seen["aux2.conv"] == ((2, 528, 4, 4), (2, 128, 4, 4))
    model.eval()
    with torch.no_grad():
        assert isinstance(model(x), torch.Tensor)
    no_aux = build("googlenet_paper", num_classes=10, aux_logits=False).train()
    assert isinstance(no_aux(x[:, :, :64, :64]), torch.Tensor)


def test_googlenet_transform_input_needs_three_channels():
    with pytest.raises(cnnlab.CnnlabError, match="transform_input"):
        cnnlab.create_model("googlenet", in_chans=1, transform_input=True)


def test_googlenet_paper_without_batch_norm_has_conv_biases():
    model = build("googlenet_paper", batch_norm=False, aux_logits=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert all(m.bias is not None for m in model.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("name, size, blocks, logits", [
    ("nin", 224, [(96, 27, 27), (256, 13, 13), (384, 6, 6), (1024, 6, 6)], (1000, 6, 6)),
    ("nin_cifar", 32, [(96, 16, 16), (192, 8, 8), (192, 8, 8)], (10, 8, 8)),
])
def test_nin_shapes_and_no_fc(name, size, blocks, logits):
    """The released NIN models: mlpconv blocks, a 1x1 conv to one map per class, global average pool."""
    model = build(name, num_classes=logits[0])
    names = [s.name for s in model.stages] + ["classifier"]
    shapes, convs, _ = trace(model, size, names)
    assert [shapes[s.name] for s in model.stages] == blocks
    assert shapes["classifier"] == logits
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    kernels = [m.kernel_size[0] for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert kernels.count(1) == 2 * len(blocks)  # two 1x1 convs per mlpconv (the classifier is the last)


def test_nin_reset_classifier_is_a_1x1_conv():
    model = cnnlab.create_model("nin_cifar", num_classes=10)
    model.reset_classifier(4)
    assert isinstance(model.classifier, nn.Conv2d) and model.classifier.out_channels == 4
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 4)


def test_nin_checkpoint_with_other_class_count_loads(tmp_path):
    src = cnnlab.create_model("nin_cifar", num_classes=10)
    torch.save(src.state_dict(), tmp_path / "nin.pth")
    dst = cnnlab.create_model("nin_cifar", num_classes=3, weights=str(tmp_path / "nin.pth"))
    assert torch.equal(dst.blocks.block1[0].weight, src.blocks.block1[0].weight)
    assert dst.classifier.out_channels == 3


MACS = ["alexnet", "alexnet_2012", "zfnet", "vgg16", "vgg19", "googlenet", "googlenet_paper", "xception"]


@pytest.mark.parametrize("name", MACS)
def test_gmacs_match_reference(name):
    ref = REFERENCE[name]
    model = build(name, **ref.kwargs)
    size = (ref.input or model.default_cfg.input_size)[-1]
    _, _, gmacs = trace(model, size)
    assert float(f"{gmacs:.3g}") == pytest.approx(ref.gmacs, rel=2e-3), (name, gmacs)
