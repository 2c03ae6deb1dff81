"""Every registered model exports to ONNX and TorchScript at its default input, with parity.

The default run exports one model of every family file (``FAMILY``; where a family mixes operators,
the member that carries the most of them: SE + grouped convolutions for the ResNet file, LRN + grouped
convolutions for AlexNet), except VGG and ZFNet, whose forward is AlexNet's (``ConvFCNet``: the same
code with other layer tables) and whose 130-million-parameter files would double the test's time.
``CNNLAB_EXPORT_ALL=signatures`` exports one model per operator signature (the models of a family
file built from the same set of module types, grouped convolutions told apart, differ only in depth
and width): 29 models, ``test_signature_representatives_cover_the_registry`` recomputes those sets.
``CNNLAB_EXPORT_ALL=1`` exports every registered model (all 79 passed, 11 min with two workers).
"""

from __future__ import annotations

import copy
import os

import pytest
import torch

import cnnlab
from cnnlab.deploy.formats import FORMATS
from cnnlab.deploy.parity import ParityError, compare, random_batches
from cnnlab.registry import get_entry, list_models
from cnnlab.workflows.export import export

from .conftest import varied

FAMILY = [
    "alexnet_2012", "densenet_bc100_k12", "efficientnet_b0", "googlenet", "lenet5", "mobilenet_v2",
    "nin_cifar", "preact_resnet50", "resnet20", "se_resnext50_32x4d", "swin_t", "vit_ti_16", "xception",
]
SAME_FORWARD = {"cnnlab.models.vgg": "vgg11_bn", "cnnlab.models.zfnet": "zfnet"}  # ConvFCNet, as AlexNet
SIGNATURES = [
    "alexnet",
    "alexnet_2012",
    "densenet121",
    "densenet_bc100_k12",
    "efficientnet_b0",
    "efficientnet_lite0",
    "googlenet",
    "googlenet_paper",
    "lenet5",
    "lenet5_relu",
    "mobilenet_v1_025_128",
    "mobilenet_v2",
    "nin",
    "nin_cifar",
    "preact_resnet164",
    "preact_resnet50",
    "resnet18",
    "resnet20",
    "resnet50",
    "resnext50_32x4d",
    "se_resnet50",
    "se_resnext50_32x4d",
    "swin_t",
    "vgg11",
    "vgg11_bn",
    "vit_ti_16",
    "wrn28_10",
    "xception",
    "zfnet",
]
SWEEP = os.environ.get("CNNLAB_EXPORT_ALL", "")
MODELS = list_models() if SWEEP == "1" else SIGNATURES if SWEEP == "signatures" else FAMILY


def signature(name: str) -> tuple[str, frozenset]:
    with torch.device("meta"):
        model = cnnlab.create_model(name)
    kinds = {type(m).__name__ + ("/grouped" if getattr(m, "groups", 1) > 1 else "") for m in model.modules()}
    return get_entry(name).builder.__module__, frozenset(kinds)


def test_every_family_file_has_a_representative():
    from cnnlab.models.base import ConvFCNet

    files = {get_entry(n).builder.__module__ for n in list_models()}
    assert files == {get_entry(n).builder.__module__ for n in FAMILY} | set(SAME_FORWARD)
    for name in [*SAME_FORWARD.values(), "alexnet_2012"]:
        with torch.device("meta"):
            model = cnnlab.create_model(name)
        kind = type(model)
        assert kind.forward_features is ConvFCNet.forward_features
        assert kind.forward_head is ConvFCNet.forward_head


@pytest.mark.slow
@pytest.mark.skipif(not SWEEP, reason="checks the sweep's list; runs with CNNLAB_EXPORT_ALL set")
def test_signature_representatives_cover_the_registry():
    covered = {signature(n) for n in SIGNATURES}
    missing = [n for n in list_models() if signature(n) not in covered]
    assert not missing, f"add a representative for {missing} (new operators)"


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_exports_with_parity(name, tmp_path):
    model = varied(cnnlab.create_model(name))
    for fmt in ("onnx", "torchscript"):
        out = tmp_path / f"{name}{FORMATS[fmt].suffix}"
        try:
            result = export(model, out=out, format=fmt)
        except ParityError:
            _as_exact_as_pytorch(model, out, fmt)
            continue
        assert result.parity.ok and result.parity.top1 == 1.0, result.parity.text()
        assert result.input_size == model.default_cfg.input_size
        result.path.unlink()


def _as_exact_as_pytorch(model, out, fmt: str) -> None:
    """A parity failure is an export bug unless the randomly drawn network is numerically chaotic:
    then PyTorch's own float32 answer departs from float64 by more than the tolerance (SE-ResNet-101
    with drawn weights: 0.2 relative), and the exported file must be as close to float64 as it is."""
    exact = copy.deepcopy(model).double()
    float64 = lambda x: exact(x.double())  # noqa: E731
    inputs = random_batches(model.default_cfg.input_size, (2, 2), seed=1)
    noise = compare(float64, model, inputs, None).rel
    assert noise > 1e-4, f"parity failed though PyTorch float32 is within {noise:.2g} of float64"
    result = export(model, out=out, format=fmt, tolerance=1e3)
    error = compare(float64, FORMATS[fmt].load(result.path), inputs, None).rel
    assert error <= 2 * noise, f"{fmt}: {error:.3g} from float64, PyTorch float32 {noise:.3g}"
    result.path.unlink()
