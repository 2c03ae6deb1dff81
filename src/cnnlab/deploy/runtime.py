"""An ONNX file as a classifier: onnxruntime, the preprocessing and class names embedded in it.

``load_onnx_classifier("model.onnx")`` needs no torch model: the session runs the graph, and the
file's ``metadata_props`` (written by ``cnnlab export``) give the class names, the evaluation
preprocessing and the softmax temperature. An ONNX file made elsewhere carries none of these; then
``input_size``, ``mean`` and ``std`` must be given, the interpolation is bilinear with a 0.875 crop
fraction, and the classes are ImageNet's for 1000 outputs, else ``class_<i>``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from ..errors import CnnlabError
from ..models.base import DataConfig
from ..weights.meta import default_class_names, read_classes, read_preprocessing
from .formats import onnx_session, read_onnx_metadata


@dataclass
class OnnxClassifier:
    session: object  # onnxruntime.InferenceSession
    name: str  # the model name in the metadata, else the file name
    classes: list[str]
    preprocessing: DataConfig
    temperature: float = 1.0
    batch: int | None = None  # the fixed batch size of the graph, None: any

    @property
    def image_mode(self) -> str:
        return "L" if self.preprocessing.input_size[0] == 1 else "RGB"

    def transform(self):
        from ..data.transforms import eval_transform

        return eval_transform(self.preprocessing)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a float batch; a graph with a fixed batch size gets zero-padded chunks."""
        name = self.session.get_inputs()[0].name
        step = self.batch or x.shape[0]
        out = []
        for chunk in x.split(step):
            n = chunk.shape[0]
            if self.batch and n < self.batch:
                chunk = torch.cat([chunk, chunk.new_zeros((self.batch - n, *chunk.shape[1:]))])
            out.append(torch.from_numpy(self.session.run(None, {name: chunk.numpy()})[0][:n]))
        return torch.cat(out)


class OnnxModule(nn.Module):
    """An :class:`OnnxClassifier` where code expects a torch classifier (``cnnlab evaluate``): a
    forward pass runs onnxruntime on the CPU and returns the logits on the input's device."""

    def __init__(self, classifier: OnnxClassifier):
        super().__init__()
        self.classifier = classifier
        self.num_classes = len(classifier.classes)
        self.default_cfg = classifier.preprocessing

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x.detach().float().cpu().contiguous()).to(x.device)


def is_onnx_file(model) -> bool:
    """Whether ``model`` names an ONNX file (no model name ends in ``.onnx``: a missing file is
    reported as such when it is read)."""
    return isinstance(model, str | os.PathLike) and Path(model).suffix.lower() == ".onnx"


def load_onnx_classifier(path, input_size: int | None = None, mean=None, std=None) -> OnnxClassifier:
    """See the module docstring; ``input_size``/``mean``/``std`` override the embedded preprocessing."""
    meta = read_onnx_metadata(path)
    session = onnx_session(path)
    dims = session.get_inputs()[0].shape
    pre = read_preprocessing(meta)
    if pre is None:
        if input_size is None or mean is None or std is None:
            raise CnnlabError(
                f"{path} carries no cnnlab preprocessing (not written by `cnnlab export`); "
                "give --input-size, --mean and --std"
            )
        pre = DataConfig((len(mean), input_size, input_size), tuple(mean), tuple(std))
    pre = _override(pre, input_size, mean, std)
    if isinstance(dims[1], int) and dims[1] != pre.input_size[0]:
        raise CnnlabError(
            f"{path} takes {dims[1]}-channel inputs but the preprocessing has "
            f"{pre.input_size[0]} channels (--mean/--std)"
        )
    outputs = session.get_outputs()[0].shape[-1]
    classes = read_classes(meta)
    if classes is None or (isinstance(outputs, int) and len(classes) != outputs):
        classes = default_class_names(outputs if isinstance(outputs, int) else 0)
    return OnnxClassifier(
        session,
        meta.get("model") or Path(path).stem,
        list(classes),
        pre,
        _temperature(meta),
        dims[0] if isinstance(dims[0], int) else None,
    )


def _override(pre: DataConfig, input_size, mean, std) -> DataConfig:
    if input_size is not None:
        if not isinstance(input_size, int) or isinstance(input_size, bool) or not 8 <= input_size <= 4096:
            raise CnnlabError(f"--input-size must be an integer between 8 and 4096, got {input_size!r}")
        pre = replace(pre, input_size=(pre.input_size[0], input_size, input_size))
    for key, value in (("mean", mean), ("std", std)):
        if value is None:
            continue
        values = tuple(value)
        if not values or not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            raise CnnlabError(f"--{key} must be finite numbers, one per channel, got {value!r}")
        if key == "std" and min(values) <= 0:
            raise CnnlabError(f"--std must be positive, got {value!r}")
        pre = replace(pre, input_size=(len(values), *pre.input_size[1:]), **{key: values})
    if len(pre.mean) != len(pre.std):
        raise CnnlabError(f"--mean has {len(pre.mean)} values but --std has {len(pre.std)}")
    return pre


def _temperature(meta: dict) -> float:
    try:
        value = float(meta.get("temperature", 1.0))
    except ValueError:
        return 1.0
    return value if 0 < value < 1e3 else 1.0
