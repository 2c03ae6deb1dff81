"""Static int8 quantisation of an ONNX model with onnxruntime, calibrated on the user's images.

Weights are quantised per output channel to int8, activations per tensor to uint8 with ranges that
the MinMax calibrator reads off the calibration batches (the user's own images, preprocessed exactly
as the model expects); the graph is written in the QDQ form, which onnxruntime's CPU provider runs as
QLinearConv/QGemm kernels. The first convolution and the classifier stay in float32 (the layers most
sensitive to rounding, and a small share of the work). Weights use all 8 bits: onnxruntime's
``reduce_range`` (7-bit weights, a guard against the saturating multiply-add of x86 CPUs without
VNNI) lowered the agreement below on this project's AVX2 machine, from 90% to 83%. On
EfficientNet-Lite0 with its ImageNet weights the top-1 agreement with float32 on real photos went
from 67% (the quantiser's defaults) to 90%, and is 100% on the photos to which float32 gives a
probability of 0.5 or more (docs/export.md). Shape inference and graph clean-up come first
(``quant_pre_process``), as onnxruntime recommends.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from ..errors import CnnlabError
from ..utils.log import quiet
from .formats import INPUT_NAME, first_line


def _ends(path: Path) -> list[str]:
    """The names of the first and the last weighted node (Conv, Gemm, MatMul) of the graph."""
    import onnx

    nodes = [n.name for n in onnx.load(str(path)).graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    return sorted({nodes[0], nodes[-1]}) if nodes else []


class _Batches:
    """onnxruntime's CalibrationDataReader protocol over a list of tensors."""

    def __init__(self, batches: list[torch.Tensor]):
        self._items = iter([{INPUT_NAME: b.numpy().astype(np.float32)} for b in batches])

    def get_next(self):
        return next(self._items, None)


def quantize_int8(source: Path, target: Path, batches: list[torch.Tensor]) -> None:
    """Write the int8 version of the float ONNX model ``source`` to ``target``."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not batches:
        raise CnnlabError("int8 quantisation needs calibration images")
    # onnxruntime's quantiser warns through the root logger about every tensor it leaves per-tensor
    # (LayerNorm weights have no channel axis): not the user's business
    with tempfile.TemporaryDirectory(prefix="cnnlab-quant-") as tmp, quiet(""):
        prepared = Path(tmp) / "prepared.onnx"
        try:
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            quantize_static(str(prepared), str(target), _Batches(batches), quant_format=QuantFormat.QDQ,
                            per_channel=True, reduce_range=False, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                            nodes_to_exclude=_ends(prepared))
        except CnnlabError:
            raise
        except Exception as exc:  # noqa: BLE001 - onnxruntime's quantiser raises many kinds
            raise CnnlabError(f"int8 quantisation failed: {first_line(exc)}") from None
