"""freeze_stages, the per-part report, frozen BatchNorm and the discriminative learning rates."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab import transfer as T
from cnnlab.errors import CnnlabError

MODELS = ["resnet18", "efficientnet_lite0", "mobilenet_v2", "vgg11_bn", "vit_ti_16"]


def _trainable(model) -> list[bool]:
    return [p.requires_grad for _, p in model.named_parameters()]


@pytest.mark.parametrize("name", MODELS)
def test_all_none_and_n(name):
    model = cnnlab.create_model(name, num_classes=5)
    head = model.classifier_path + "."
    T.freeze_stages(model, "all")
    assert all(p.requires_grad == n.startswith(head) for n, p in model.named_parameters())
    T.freeze_stages(model, "none")
    assert all(_trainable(model))
    total = sum(p.numel() for p in model.parameters())
    previous = -1
    for n in range(len(model.stages) + 1):
        seg = T.freeze_stages(model, n)
        flags = [
            f for (k, _), f in zip(model.named_parameters(), _trainable(model)) if not k.startswith(head)
        ]
        # frozen parameters come first in forward order, then trainable ones: one switch at most
        assert flags == sorted(flags)
        frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
        assert frozen > previous or frozen == previous == 0
        previous = frozen
        rows = T.parameter_report(model)
        assert sum(r.trainable + r.frozen for r in rows) == total
        assert {seg[k] for k, p in model.named_parameters() if not p.requires_grad} <= {
            "stem", *(f"stage {i + 1} ({s.name})" for i, s in enumerate(model.stages[:n]))}


def test_report_rows_resnet18():
    model = cnnlab.create_model("resnet18", num_classes=3)
    T.freeze_stages(model, 2)
    rows = {r.name: r for r in T.parameter_report(model)}
    assert list(rows) == [
        "stem",
        "stage 1 (layer1)",
        "stage 2 (layer2)",
        "stage 3 (layer3)",
        "stage 4 (layer4)",
        "classifier",
    ]
    assert rows["stem"].frozen == 9536 and rows["stem"].trainable == 0
    assert rows["stage 2 (layer2)"].trainable == 0 and rows["stage 3 (layer3)"].frozen == 0
    assert rows["classifier"].trainable == 512 * 3 + 3
    text = T.format_report(list(rows.values()))
    assert "stage 1 (layer1)" in text and "total" in text


@pytest.mark.parametrize("bad", ["7", "-1", "some", "2.5"])
def test_bad_freeze_value(bad):
    model = cnnlab.create_model("resnet18", num_classes=3)
    with pytest.raises(CnnlabError, match="--freeze"):
        T.freeze_stages(model, bad)


def test_frozen_bn_eval_hook():
    model = cnnlab.create_model("resnet18", num_classes=3)
    T.freeze_stages(model, 2)
    T.train_mode_hook(model, "eval")(model)
    assert not model.bn1.training and not model.layer2[1].bn2.training
    assert model.layer3[0].bn1.training and model.training
    T.train_mode_hook(model, "train")(model)
    assert model.bn1.training
    with pytest.raises(CnnlabError, match="--frozen-bn"):
        T.train_mode_hook(model, "sometimes")


def test_param_groups_discriminative_lr():
    model = cnnlab.create_model("resnet18", num_classes=3)
    T.freeze_stages(model, 3)
    groups = T.transfer_param_groups(model, lr=0.01, backbone_lr_mult=0.1, weight_decay=1e-4,
                                     exclude_norm_bias=True)
    ids = {id(p): g for g in groups for p in g["params"]}
    assert ids[id(model.fc.weight)]["lr"] == 0.01 and ids[id(model.fc.weight)]["weight_decay"] == 1e-4
    assert ids[id(model.fc.bias)]["weight_decay"] == 0.0
    assert ids[id(model.layer4[0].conv1.weight)]["lr"] == pytest.approx(0.001)
    assert id(model.layer3[0].conv1.weight) not in ids  # frozen: never given to the optimizer
    assert sum(len(g["params"]) for g in groups) == sum(p.requires_grad for p in model.parameters())


def test_replace_head_is_zero():
    model = cnnlab.create_model("efficientnet_lite0", num_classes=1000)
    T.replace_head(model, 4)
    head = model.get_classifier()
    assert isinstance(head, nn.Linear) and head.out_features == 4
    assert not head.weight.any() and not head.bias.any()
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(model.eval()(x), torch.zeros(1, 4))
