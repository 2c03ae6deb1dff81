"""Static int8 quantisation of an ONNX model with onnxruntime, calibrated on the user's images.

Weights are quantised per output channel to int8, activations per tensor to uint8 with ranges that
the MinMax calibrator reads off the calibration batches (the user's own images, preprocessed exactly
as the model expects); the graph is written in the QDQ form, which onnxruntime's CPU provider runs as
QLinearConv/QGemm kernels. Shape inference and graph clean-up come first
(``quant_pre_process``), as onnxruntime recommends.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from ..errors import CnnlabError
from .formats import INPUT_NAME, first_line


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
    with tempfile.TemporaryDirectory(prefix="cnnlab-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        try:
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            quantize_static(str(prepared), str(target), _Batches(batches), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax,
                            extra_options={"CalibTensorRangeSymmetric": False})
        except CnnlabError:
            raise
        except Exception as exc:  # noqa: BLE001 - onnxruntime's quantiser raises many kinds
            raise CnnlabError(f"int8 quantisation failed: {first_line(exc)}") from None
