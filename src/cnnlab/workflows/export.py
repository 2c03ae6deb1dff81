"""``cnnlab export MODEL[:WEIGHTS] -o FILE``: a trained model as an ONNX, TorchScript or torch.export
file that carries its class names and preprocessing, with parity proven before the file appears.

``export("runs/a", out="model.onnx")`` loads the model the one way every workflow does
(:func:`~cnnlab.workflows.trained.load_trained`: a run folder, a checkpoint, a pretrained tag), folds
each BatchNorm into the convolution before it (:mod:`cnnlab.deploy.folding`), writes the file to a
temporary name (:mod:`cnnlab.deploy.formats`), loads it back in its own runtime (onnxruntime for
ONNX) and compares its logits with the PyTorch model's on random batches
(:mod:`cnnlab.deploy.parity`): the largest absolute difference and the top-1 agreement are printed,
and beyond the tolerance (relative 1e-4 in float32, 2e-2 in float16) the export fails with one line
and no file is left. Only then does the file take its name.

``half=True`` stores the weights in float16 and keeps float32 inputs and outputs (casts at both ends).
``quantize="int8"`` (ONNX) runs onnxruntime's static quantisation calibrated on the images in
``calibration`` (:mod:`cnnlab.deploy.quantize`); its parity is measured on those images against the
float32 PyTorch model and reported, not enforced (int8 is an approximation by design).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from ..config import build_config, check_choice, check_number, document
from ..deploy import parity as P
from ..deploy.folding import fold_batchnorm
from ..deploy.formats import DEFAULT_OPSET, FORMATS, OPSETS, ExportFailed, first_line
from ..deploy.metadata import export_metadata
from ..errors import CnnlabError
from ..utils.io import atomic_path, check_output_file
from ..utils.log import notice
from ..utils.threads import model_macs, set_threads
from .train_setup import check_input_size
from .trained import Trained, load_trained, model_and_weights

PARITY_BATCHES = (1, 3)  # batch sizes compared for a dynamic-batch export (two, to prove the dimension free)
__all__ = ["ExportConfig", "ExportResult", "export"]


@dataclass
class ExportConfig:
    out: str | None = None  # the file to write (required)
    format: str = "onnx"  # onnx | torchscript | exported
    batch: int | str = "dynamic"  # "dynamic" (any batch size) or a fixed batch size N
    input_size: int | None = None  # image side in pixels (default: the weights' preprocessing)
    opset: int | None = None  # ONNX opset (default 18)
    half: bool = False  # float16 weights, float32 inputs and outputs
    quantize: str | None = None  # int8: onnxruntime static quantisation (ONNX only)
    calibration: str | None = None  # folder (or file) of images to calibrate int8 on
    calibration_images: int = 64  # most calibration images read
    fold_bn: bool = True  # fold BatchNorm into the preceding convolution
    tolerance: float | None = None  # parity bound on the relative logit difference (default by precision)

    def check(self) -> None:
        if not self.out:
            raise CnnlabError("give the file to write: -o FILE (out=...)")
        check_choice("format", self.format, FORMATS)
        if self.batch != "dynamic":
            check_number("batch", self.batch, low=1, high=4096, integer=True)
        check_number("input_size", self.input_size, low=8, high=4096, integer=True, none=True)
        check_number("calibration_images", self.calibration_images, low=1, high=100_000, integer=True)
        check_number("tolerance", self.tolerance, low=0, low_open=True, none=True)
        if self.opset is not None:
            if self.format != "onnx":
                raise CnnlabError(f"--opset applies to ONNX only, not --format {self.format}")
            check_choice("opset", self.opset, OPSETS)
        self._check_quantize()

    def _check_quantize(self) -> None:
        if self.quantize is None:
            if self.calibration:
                raise CnnlabError("--calibration is for --quantize int8; add it or drop --calibration")
            return
        check_choice("quantize", self.quantize, ("int8",))
        if self.format != "onnx":
            raise CnnlabError(f"--quantize int8 is for --format onnx (onnxruntime), not {self.format}")
        if self.half:
            raise CnnlabError("--half and --quantize int8 exclude each other; choose one")
        if not self.calibration:
            raise CnnlabError("--quantize int8 needs --calibration DIR: images like those the model will see")

    @property
    def precision(self) -> str:
        return "int8" if self.quantize else "fp16" if self.half else "fp32"


@dataclass
class ExportResult:
    path: Path
    format: str
    precision: str
    model: str
    input_size: tuple[int, int, int]
    batch: int | str
    bn_folded: int
    parity: P.Parity
    bytes: int
    seconds: float
    metadata: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self) | {"path": str(self.path)}

    def text(self) -> str:
        size = "x".join(map(str, self.input_size))
        return "\n".join([
            f"wrote {self.path} ({self.format}, {self.precision}, {self.bytes / 1e6:.1f} MB) "
            f"from {self.model}, "
            f"input {size}, batch {self.batch}, {self.bn_folded} BatchNorm folded, {self.seconds:.1f} s",
            self.parity.text()])


class HalfIO(nn.Module):
    """A float16 model behind float32 inputs and outputs."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.half()).float()


def export(model, weights=None, config: ExportConfig | dict | None = None, **overrides) -> ExportResult:
    """Export a trained model (see the module docstring). ``model``: a registered name, ``"MODEL:WEIGHTS"``,
    a run folder or cnnlab checkpoint (then ``weights`` stays ``None``), or a built cnnlab model;
    ``weights``: a run folder, a checkpoint or a pretrained tag."""
    started = time.perf_counter()
    config = build_config(ExportConfig, config, overrides)
    config.check()
    out = check_output_file(config.out, "-o")
    if isinstance(model, str | os.PathLike) and str(model).lower().endswith(".onnx"):
        raise CnnlabError(f"{model} is an ONNX file: export takes a model, a run folder or a checkpoint")
    trained = _with_input_size(load_trained(*model_and_weights(model, weights)), config.input_size)
    batch = None if config.batch == "dynamic" else int(config.batch)
    size = trained.preprocessing.input_size
    example = torch.randn(batch or 2, *size, generator=torch.Generator().manual_seed(1))
    set_threads(example.shape[0] * (model_macs(trained.model, size) or 0) or None)
    calibration = _calibration_batches(trained, config, batch) if config.quantize else None
    folded, n_folded = fold_batchnorm(trained.model, example) if config.fold_bn else (trained.model, 0)
    fmt = FORMATS[config.format]
    meta = export_metadata(trained, fmt=fmt.name, precision=config.precision, batch=batch, bn_folded=n_folded)
    with atomic_path(out) as tmp:
        _write(fmt, HalfIO(folded) if config.half else folded, example, tmp, batch is None, meta, config,
               trained.name)
        if calibration is not None:
            _quantize_in_place(tmp, calibration)
        check = _parity(fmt, tmp, trained, config, batch, calibration)
    return ExportResult(out, fmt.name, config.precision, trained.name, size, config.batch, n_folded, check,
                        out.stat().st_size, time.perf_counter() - started, meta)


document(export, ExportConfig)


def _with_input_size(trained: Trained, size: int | None) -> Trained:
    if size is None:
        return trained
    check_input_size(trained.model, trained.name, trained.in_chans, size)
    pre = trained.preprocessing
    return replace(trained, preprocessing=replace(pre, input_size=(pre.input_size[0], size, size)))


def _write(
    fmt, model, example, path: Path, dynamic: bool, meta: dict, config: ExportConfig, name: str
) -> None:
    try:
        fmt.write(model, example, path, dynamic, meta, config.opset or DEFAULT_OPSET)
    except (CnnlabError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - exporters raise anything; the user gets one line
        options = ", ".join(o for o, on in (("--half", config.half), (f"--batch {config.batch}", True)) if on)
        raise ExportFailed(
            f"{name} cannot be exported to {fmt.name} ({options}): {first_line(exc)}"
        ) from None


def _quantize_in_place(path: Path, calibration: list[torch.Tensor]) -> None:
    from ..deploy.quantize import quantize_int8

    float_copy = path.with_name(path.name + ".fp32")
    os.replace(path, float_copy)
    try:
        quantize_int8(float_copy, path, calibration)
    finally:
        float_copy.unlink(missing_ok=True)
    for leftover in path.parent.glob(path.name + "*.data"):  # onnxruntime's external-data side files
        leftover.unlink(missing_ok=True)


def _parity(fmt, path: Path, trained: Trained, config: ExportConfig, batch: int | None, calibration):
    try:
        candidate = fmt.load(path)
        if calibration is not None:
            return P.compare(trained.model, candidate, calibration, None)
        sizes = PARITY_BATCHES if batch is None else (batch, batch)
        tolerance = config.tolerance or (P.FP16_TOLERANCE if config.half else P.FP32_TOLERANCE)
        batches = P.random_batches(trained.preprocessing.input_size, sizes)
        check = P.compare(trained.model, candidate, batches, tolerance)
    except CnnlabError:
        raise
    except Exception as exc:  # noqa: BLE001 - a runtime that cannot run the file: one line
        raise ExportFailed(f"{trained.name} exported to {fmt.name} ({config.precision}) does not run in its "
                           f"runtime: {first_line(exc)}; no file written") from None
    if not check.ok:
        raise P.ParityError(f"{trained.name} exported to {fmt.name} differs from PyTorch: {check.text()}; "
                            "no file written")
    return check


def _calibration_batches(trained: Trained, config: ExportConfig, batch: int | None) -> list[torch.Tensor]:
    """The calibration images, preprocessed as the model expects, in batches of the export's size."""
    from ..data.images import read_image

    files = _calibration_files(Path(config.calibration), config.calibration_images)
    transform, tensors = trained.transform(), []
    for f in files:
        try:
            tensors.append(transform(read_image(f, trained.image_mode)))
        except CnnlabError as exc:
            notice(f"calibration: skipped {exc}")
    if not tensors:
        raise CnnlabError(f"--calibration {config.calibration}: no readable images")
    step = batch or 8
    stacked = torch.stack(tensors)
    if batch and len(tensors) % batch:  # a fixed-batch graph: pad the last batch by repeating images
        stacked = torch.cat([stacked, stacked[: batch - len(tensors) % batch]])
    return list(stacked.split(step))


def _calibration_files(path: Path, count: int) -> list[Path]:
    """Up to ``count`` image files of ``path`` (a file, or a folder searched recursively, so a dataset
    of class folders works), spread evenly over the sorted list so that every class is represented."""
    from .predict import IMAGE_SUFFIXES

    if path.is_file():
        return [path]
    if not path.is_dir():
        raise CnnlabError(f"--calibration {path} is neither an image file nor a folder")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise CnnlabError(f"--calibration {path}: no image files ({', '.join(IMAGE_SUFFIXES)}) in it")
    if len(files) <= count:
        return files
    return [files[i * len(files) // count] for i in range(count)]
