"""The three export formats: how each is written from a model and loaded back to be run.

============  ============  ==========================================================================
format        file          written with
============  ============  ==========================================================================
onnx          ``.onnx``     ``torch.onnx.export(..., dynamo=True)`` (the ``torch.export``-based
                            exporter), ``onnx.checker``; metadata in ``metadata_props``
torchscript   ``.pt``       ``torch.jit.trace`` then ``torch.jit.freeze`` (constants inlined,
                            Conv+BatchNorm folded); metadata as the extra file ``cnnlab.json``
exported      ``.pt2``      ``torch.export.export`` saved with ``torch.export.save``; metadata as the
                            extra file ``cnnlab.json``
============  ============  ==========================================================================

Every writer takes an eval-mode model, an example input and ``dynamic`` (the batch dimension free, or
fixed at the example's); each loader returns a callable ``float tensor -> logits tensor``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import CnnlabError
from ..utils.log import quiet
from .metadata import EXTRA_FILE, from_json, to_json

INPUT_NAME, OUTPUT_NAME = "input", "logits"
DEFAULT_OPSET = 18  # the torch.onnx dynamo exporter's own default opset
OPSETS = range(17, 24)  # opsets the dynamo exporter writes (older ones need the retired TorchScript exporter)


class ExportFailed(CnnlabError):
    """A model or option that a format cannot take; the message names the operator or option."""


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    write: Callable  # (model, example, path, dynamic, metadata, opset) -> None
    load: Callable  # path -> callable(x) -> logits
    read_metadata: Callable  # path -> dict[str, str]


def _batch_dim(dynamic: bool):
    return ({0: torch.export.Dim.DYNAMIC},) if dynamic else None


def first_line(exc: BaseException) -> str:
    """The first informative line of an exporter's (often very long) message, with the operators it
    names (``aten.xyz``), at most 300 characters."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()  # the exporter colours its messages
    ops = sorted(set(re.findall(r"aten[.:]{1,2}\w+(?:\.\w+)?", text)))
    if "## Exception summary" in text:  # torch.onnx's report: the cause is the first line after this
        text = text.split("## Exception summary", 1)[1].strip()
    line = next((s.strip() for s in text.splitlines() if s.strip()), type(exc).__name__)
    line = line[:240] + ("..." if len(line) > 240 else "")
    return f"{line} (operators: {', '.join(ops[:5])})" if ops else line


# ---------------------------------------------------------------------------------------------------
# ONNX


def write_onnx(model: nn.Module, example: torch.Tensor, path: Path, dynamic: bool, metadata: dict,
               opset: int) -> None:
    import onnx

    with warnings.catch_warnings(), quiet(*ONNX_LOGGERS):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (example,), dynamo=True, opset_version=opset,
                                    input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                    dynamic_shapes=_batch_dim(dynamic), optimize=True, verbose=False)
    proto = program.model_proto
    onnx.helper.set_model_props(proto, metadata)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))


def load_onnx(path: Path) -> Callable:
    session = onnx_session(path)

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])

    return run


def onnx_session(path, threads: int | None = None):
    """An onnxruntime CPU session of ``path`` (all graph optimisations; ``threads``: intra-op threads,
    default onnxruntime's own choice)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise ExportFailed(f"onnxruntime cannot load {path}: {first_line(exc)}") from None


def read_onnx_metadata(path) -> dict[str, str]:
    import onnx

    if not Path(path).is_file():
        raise CnnlabError(f"{path}: no such ONNX file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf decode errors have no common base
        raise CnnlabError(f"{path} is not an ONNX model ({first_line(exc)})") from None
    return {p.key: p.value for p in proto.metadata_props}


ONNX_LOGGERS = ("torch.onnx", "torch.export", "onnxscript", "onnx_ir")  # they log every pass at INFO


# ---------------------------------------------------------------------------------------------------
# TorchScript and torch.export


def write_torchscript(model: nn.Module, example: torch.Tensor, path: Path, dynamic: bool, metadata: dict,
                      opset: int) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, example, check_trace=False)
        frozen = torch.jit.freeze(traced.eval())
        torch.jit.save(frozen, str(path), _extra_files={EXTRA_FILE: to_json(metadata)})


def load_torchscript(path: Path) -> Callable:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(str(path), map_location="cpu")
    return module


def read_torchscript_metadata(path) -> dict[str, str]:
    files = {EXTRA_FILE: ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.jit.load(str(path), map_location="cpu", _extra_files=files)
        except (RuntimeError, ValueError) as exc:
            raise CnnlabError(f"{path} is not a TorchScript file ({first_line(exc)})") from None
    return from_json(files[EXTRA_FILE], path)


def write_exported(model: nn.Module, example: torch.Tensor, path: Path, dynamic: bool, metadata: dict,
                   opset: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(model, (example,), dynamic_shapes=_batch_dim(dynamic))
    torch.export.save(program, str(path), extra_files={EXTRA_FILE: to_json(metadata)})


def load_exported(path: Path) -> Callable:
    return torch.export.load(str(path)).module()


def read_exported_metadata(path) -> dict[str, str]:
    files = {EXTRA_FILE: ""}
    try:
        torch.export.load(str(path), extra_files=files)
    except Exception as exc:  # noqa: BLE001 - a damaged archive raises zipfile, pickle or runtime errors
        raise CnnlabError(f"{path} is not a torch.export file ({first_line(exc)})") from None
    return from_json(files[EXTRA_FILE], path)


FORMATS = {
    "onnx": Format("onnx", ".onnx", write_onnx, load_onnx, read_onnx_metadata),
    "torchscript": Format(
        "torchscript", ".pt", write_torchscript, load_torchscript, read_torchscript_metadata
    ),
    "exported": Format("exported", ".pt2", write_exported, load_exported, read_exported_metadata),
}
