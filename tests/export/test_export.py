"""cnnlab export: the three formats, their metadata, parity at export time, BatchNorm folding, float16,
int8, and the one-line errors; every exported file is run in its own runtime."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.deploy.folding import fold_batchnorm
from cnnlab.deploy.formats import FORMATS
from cnnlab.deploy.parity import ParityError
from cnnlab.errors import CnnlabError
from cnnlab.workflows.export import export
from cnnlab.workflows.trained import load_trained

from .conftest import CLASSES, PREPROCESSING, varied


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _ort(path, x: torch.Tensor) -> np.ndarray:
    s = _session(path)
    return s.run(None, {s.get_inputs()[0].name: x.numpy()})[0]


def test_onnx_carries_metadata_and_matches_the_checkpoint(checkpoint, tmp_path):
    result = export(str(checkpoint), out=tmp_path / "m.onnx")
    proto = onnx.load(str(result.path))
    onnx.checker.check_model(proto, full_check=True)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["model"] == "lenet5_relu" and json.loads(meta["classes"]) == CLASSES
    pre = json.loads(meta["preprocessing"])
    assert pre == {"input_size": [1, 32, 32], "mean": [0.3], "std": [0.2], "interpolation": "bicubic",
                   "crop_pct": 0.9}
    assert meta["weights_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert meta["cnnlab_version"] == cnnlab.__version__ and meta["format"] == "onnx"
    assert meta["precision"] == "fp32" and meta["batch"] == "dynamic"
    # parity as reported, and again here on new inputs of two batch sizes (the batch is dynamic)
    assert result.parity.max_abs < 1e-4 and result.parity.top1 == 1.0 and result.parity.inputs == 4
    model = load_trained(None, str(checkpoint)).model
    for n in (1, 7):
        x = torch.randn(n, *PREPROCESSING.input_size)
        np.testing.assert_allclose(_ort(result.path, x), model(x).detach().numpy(), atol=1e-4, rtol=1e-4)


def test_fixed_batch_is_fixed_in_the_graph(checkpoint, tmp_path):
    result = export(str(checkpoint), out=tmp_path / "m.onnx", batch=4)
    s = _session(result.path)
    assert s.get_inputs()[0].shape == [4, 1, 32, 32]
    assert _ort(result.path, torch.randn(4, 1, 32, 32)).shape == (4, 3)
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        _ort(result.path, torch.randn(2, 1, 32, 32))


@pytest.mark.parametrize("fmt", ["torchscript", "exported"])
def test_torch_formats_carry_metadata_and_run(fmt, checkpoint, tmp_path):
    result = export(str(checkpoint), out=tmp_path / f"m{FORMATS[fmt].suffix}", format=fmt)
    meta = FORMATS[fmt].read_metadata(result.path)
    assert json.loads(meta["classes"]) == CLASSES and meta["format"] == fmt
    assert json.loads(meta["preprocessing"])["interpolation"] == "bicubic"
    runner = FORMATS[fmt].load(result.path)
    model = load_trained(None, str(checkpoint)).model
    x = torch.randn(5, 1, 32, 32)
    torch.testing.assert_close(runner(x), model(x), atol=1e-4, rtol=1e-4)


def test_model_colon_weights_spec_and_input_size(checkpoint, tmp_path):
    result = export(f"lenet5_relu:{checkpoint}", out=tmp_path / "m.onnx")
    assert result.model == "lenet5_relu" and result.input_size == (1, 32, 32)
    with pytest.raises(CnnlabError, match="--input-size 48 does not fit lenet5_relu"):
        export(f"lenet5_relu:{checkpoint}", out=tmp_path / "n.onnx", input_size=48)  # fixed 32x32 input
    model = varied(cnnlab.create_model("resnet20", num_classes=4))
    other = export(model, out=tmp_path / "r.onnx", input_size=40)
    meta = {p.key: p.value for p in onnx.load(str(other.path)).metadata_props}
    assert json.loads(meta["preprocessing"])["input_size"] == [3, 40, 40]
    assert _ort(other.path, torch.randn(2, 3, 40, 40)).shape == (2, 4)


class Branchy(nn.Module):
    """Python control flow on data: tracing records only the branch the example took."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 3)
        self.default_cfg = PREPROCESSING.with_channels(3).__class__((3, 2, 2))
        self.num_classes = 3

    def forward(self, x):
        y = self.fc(x.flatten(1))
        return y if x.mean() > 0 else -y


def test_parity_catches_a_wrong_trace_and_leaves_no_file(tmp_path):
    torch.manual_seed(0)
    out = tmp_path / "branchy.pt"
    # the example batch and the parity batches are drawn independently, so some parity batch takes the
    # other branch: the traced file answers -y where PyTorch answers y
    with pytest.raises(ParityError, match="differs from PyTorch.*no file written"):
        for seed in range(20):  # the example's sign and the parity batches' signs disagree for some seed
            torch.manual_seed(seed)
            export(Branchy(), out=out, format="torchscript", batch=1)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_tolerance_is_enforced(tmp_path):
    model = varied(cnnlab.create_model("resnet18", num_classes=5))
    with pytest.raises(ParityError, match="tolerance 1e-12"):
        export(model, out=tmp_path / "r.onnx", tolerance=1e-12, input_size=64)
    assert list(tmp_path.iterdir()) == []


def test_unsupported_operator_is_one_line_naming_it(tmp_path):
    class Svd(nn.Module):
        default_cfg = PREPROCESSING.__class__((3, 8, 8))
        num_classes = 8

        def forward(self, x):
            return torch.linalg.svdvals(x.mean(1))

    with pytest.raises(CnnlabError) as info:
        export(Svd(), out=tmp_path / "s.onnx")
    message = str(info.value)
    assert "\n" not in message and "cannot be exported to onnx" in message and "svd" in message.lower()
    assert list(tmp_path.iterdir()) == []


def test_batchnorm_folding_only_where_the_conv_output_has_no_other_reader():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.pre = nn.BatchNorm2d(3)  # before any conv: stays
            self.conv1, self.bn1 = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)  # folds
            self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)  # conv2 also read by +

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(self.pre(x))))
            z = self.conv2(y)
            return self.bn2(z) + z

    net = varied(Net())
    x = torch.randn(2, 3, 8, 8)
    folded, n = fold_batchnorm(net, x)
    assert n == 1 and isinstance(folded.bn1, nn.Identity)
    assert isinstance(folded.pre, nn.BatchNorm2d) and isinstance(folded.bn2, nn.BatchNorm2d)
    assert isinstance(net.bn1, nn.BatchNorm2d)  # the original is untouched
    torch.testing.assert_close(folded(x), net(x), atol=1e-5, rtol=1e-5)


def test_folded_export_has_no_batchnorm_nodes(tmp_path):
    model = varied(cnnlab.create_model("resnet18", num_classes=5))
    folded = export(model, out=tmp_path / "f.pt2", format="exported", input_size=64)
    kept = export(model, out=tmp_path / "k.pt2", format="exported", input_size=64, fold_bn=False)

    def batchnorms(path):
        graph = torch.export.load(str(path)).graph
        return sum("batch_norm" in str(n.target) for n in graph.nodes)

    assert folded.bn_folded == 20 and batchnorms(folded.path) == 0
    assert kept.bn_folded == 0 and batchnorms(kept.path) == 20
    assert folded.parity.max_abs < 1e-3 and kept.parity.max_abs < 1e-3
    onnx_file = export(model, out=tmp_path / "f.onnx", input_size=64)
    assert "BatchNormalization" not in {n.op_type for n in onnx.load(str(onnx_file.path)).graph.node}


def test_half_halves_the_file_within_the_fp16_tolerance(tmp_path):
    model = varied(cnnlab.create_model("resnet18", num_classes=5))
    full = export(model, out=tmp_path / "f.onnx", input_size=64)
    half = export(model, out=tmp_path / "h.onnx", input_size=64, half=True)
    assert half.precision == "fp16" and half.parity.tolerance == 2e-2 and half.parity.ok
    assert 0.4 < half.bytes / full.bytes < 0.6
    inputs = _session(half.path).get_inputs()[0]
    assert inputs.type == "tensor(float)"  # float32 in, float16 inside


def test_int8_is_quantised_and_calibrated_on_the_images(checkpoint, images, tmp_path):
    full = export(str(checkpoint), out=tmp_path / "f.onnx")
    q = export(str(checkpoint), out=tmp_path / "q.onnx", quantize="int8", calibration=str(images))
    graph = onnx.load(str(q.path)).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert any(t.data_type == onnx.TensorProto.INT8 for t in graph.initializer)
    assert q.precision == "int8" and q.parity.tolerance is None and q.parity.inputs == 12
    assert q.bytes < 0.5 * full.bytes
    assert q.parity.rel < 0.1  # int8 rounding, not a broken graph
    assert not list(tmp_path.glob(".*"))  # no temporaries left


def test_evaluate_scores_onnx_files_beside_their_checkpoint(checkpoint, images, tmp_path):
    """`cnnlab evaluate` takes exported files as members: the float32 file scores exactly as its
    checkpoint on a labelled split, classes matched by the names embedded in the file."""
    data = tmp_path / "data"
    for i, png in enumerate(sorted(images.iterdir())):  # two of the checkpoint's three classes
        (data / ("dog", "emu")[i % 2]).mkdir(parents=True, exist_ok=True)
        (data / ("dog", "emu")[i % 2] / png.name).write_bytes(png.read_bytes())
    fp32 = export(str(checkpoint), out=tmp_path / "f.onnx").path
    int8 = export(str(checkpoint), out=tmp_path / "q.onnx", quantize="int8", calibration=str(images)).path
    result = cnnlab.evaluate([f"lenet5_relu:{checkpoint}", str(fp32), str(int8)], str(data), val_split=0.5,
                             device="cpu", keep_probs=True)
    torch_line, onnx_line, int8_line = result.members
    assert result.classes == ["dog", "emu"] and onnx_line.count == torch_line.count == int8_line.count == 6
    torch.testing.assert_close(onnx_line.probs, torch_line.probs, atol=1e-5, rtol=0)
    assert onnx_line.top1 == torch_line.top1 and abs(onnx_line.loss - torch_line.loss) < 1e-5
    assert (onnx_line.probs - int8_line.probs).abs().max() > 0  # the int8 file is scored, not a copy
    assert onnx_line.label == str(fp32) and onnx_line.probs.shape == (6, 2)
    bare = onnx.load(str(fp32))
    del bare.metadata_props[:]  # as if written elsewhere: no preprocessing, no classes
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(CnnlabError, match="carries no cnnlab preprocessing"):
        cnnlab.evaluate([str(tmp_path / "bare.onnx")], str(data), val_split=0.5, device="cpu")


@pytest.mark.parametrize(("overrides", "message"), [
    ({"format": "torchscript", "opset": 17}, "--opset applies to ONNX only"),
    ({"quantize": "int8"}, "needs --calibration"),
    ({"quantize": "int8", "half": True, "calibration": "x"}, "exclude each other"),
    ({"format": "exported", "quantize": "int8", "calibration": "x"}, "is for --format onnx"),
    ({"calibration": "x"}, "is for --quantize int8"),
    ({"batch": 0}, "--batch must be"),
    ({"batch": "many"}, "--batch must be"),
    ({"format": "tflite"}, "--format 'tflite' is not one of"),
    ({"opset": 9}, "--opset 9 is not one of"),
    ({"input_size": 4}, "--input-size must be"),
    ({"tolerance": 0.0}, "--tolerance must be"),
])
def test_bad_settings_are_one_line_errors(overrides, message, checkpoint, tmp_path):
    with pytest.raises(CnnlabError, match=message) as info:
        export(str(checkpoint), out=tmp_path / "m.onnx", **overrides)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_output_folder_and_missing_out_are_refused(checkpoint, tmp_path):
    with pytest.raises(CnnlabError, match="is a folder; give a file name"):
        export(str(checkpoint), out=tmp_path)
    with pytest.raises(CnnlabError, match="-o FILE"):
        export(str(checkpoint))


def test_lenet5_rbf_output_exports_as_trained_on_digits(tmp_path):
    # the README's run: 1-channel LeNet-5 with the RBF output layer (torch.cdist there made the ONNX
    # exporter fail with "No ONNX function found for aten._cdist_forward")
    model = varied(cnnlab.create_model("lenet5", num_classes=10, in_chans=1))
    result = export(model, out=tmp_path / "l.onnx")
    assert result.parity.ok and result.parity.top1 == 1.0
