"""Classify images with a trained model: ``predict(model, images, weights=..., topk=5)``.

The model and what it needs come from :func:`cnnlab.workflows.trained.load_trained`: a run folder or a
cnnlab checkpoint brings its model name (``model`` may be the run folder itself), class names and the
preprocessing its run validated with; a pretrained tag brings ImageNet's names. Each image is read the
one way every command reads images (:func:`cnnlab.data.images.read_image`: EXIF orientation applied,
decompression bombs and non-files refused), preprocessed and classified in batches; the result per
image is its top-k (class index, class name, probability; the softmax is taken over the temperature
``cnnlab interpret --save-temperature`` saved for the run, if any). A folder stands for the images in it
(sorted, not recursive). An image that cannot be read gives an error entry instead of stopping the
others.

An ONNX file (``cnnlab export``'s, or one made elsewhere with ``input_size``/``mean``/``std`` given) is
run by onnxruntime with the class names, preprocessing and temperature embedded in it, without
building a torch model (:mod:`cnnlab.deploy.runtime`).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..deploy.runtime import OnnxClassifier
from ..errors import CnnlabError
from ..utils.io import atomic_write
from ..utils.threads import model_macs, set_threads
from .run import resolve_device
from .trained import Trained, load_trained, model_and_weights

BATCH = 16  # images per forward pass
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


@dataclass(frozen=True)
class TopK:
    index: int
    name: str
    prob: float  # softmax probability in [0, 1]


@dataclass
class Prediction:
    source: str  # file path, or "image <i>" for in-memory images
    top: list[TopK] = field(default_factory=list)
    error: str | None = None  # one line when the image could not be read

    def to_dict(self) -> dict:
        return asdict(self)


def predict(model, images, weights=None, topk: int = 5, device: str = "cpu", *, input_size: int | None = None,
            mean=None, std=None) -> list[Prediction]:
    """Top-``topk`` classes of each image (paths, folders, PIL images or uint8 arrays), in input order.
    ``model``: a registered name, a run folder / cnnlab checkpoint (then ``weights`` stays ``None``), a
    built model, or an ONNX file (run by onnxruntime with the preprocessing and class names embedded
    by ``cnnlab export``; ``input_size``/``mean``/``std`` give or override them, for ONNX files only)."""
    from ..deploy.runtime import is_onnx_file, load_onnx_classifier

    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
        raise CnnlabError(f"topk must be an integer >= 1, got {topk!r}")
    if is_onnx_file(model):
        if weights is not None or device not in ("cpu", "auto"):
            raise CnnlabError("an ONNX file runs on the CPU with the weights inside it; "
                              "drop --weights/--device")
        classifier = load_onnx_classifier(model, input_size, mean, std)
        return classify(classifier, expand_images(images), topk, classifier)
    if (input_size, mean, std) != (None, None, None):
        raise CnnlabError("--input-size/--mean/--std are for ONNX files; "
                          "a cnnlab model brings its preprocessing")
    dev = resolve_device(device)
    trained = load_trained(*model_and_weights(model, weights))
    model = trained.model.to(dev)
    set_threads(BATCH * (model_macs(model, trained.preprocessing.input_size) or 0) or None)
    return classify(trained, expand_images(images), topk, lambda x: model(x.to(dev)))


def expand_images(images) -> list:
    """The inputs one by one: a single path or image becomes a list, a folder its image files."""
    if isinstance(images, str | os.PathLike) or not hasattr(images, "__iter__") or hasattr(images, "shape") \
            or hasattr(images, "getpixel"):
        images = [images]
    out = []
    for image in images:
        if isinstance(image, str | os.PathLike) and Path(image).is_dir():
            files = sorted(
                p for p in Path(image).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            )
            if not files:
                raise CnnlabError(f"{image}: a folder without image files ({', '.join(IMAGE_SUFFIXES)})")
            out += [str(p) for p in files]
        else:
            out.append(image)
    return out


def classify(
    source: Trained | OnnxClassifier, images: list, topk: int, forward: Callable
) -> list[Prediction]:
    """Read, preprocess and classify ``images`` with ``source``'s transform, classes and temperature;
    ``forward``: float batch -> logits (the torch model, or onnxruntime)."""
    from ..data.images import read_image

    trained, transform = source, source.transform()
    results, batch = [], []
    for i, image in enumerate(images):
        label = os.fspath(image) if isinstance(image, str | os.PathLike) else f"image {i}"
        pred = Prediction(label)
        results.append(pred)
        try:
            batch.append((pred, transform(read_image(image, trained.image_mode, label))))
        except CnnlabError as exc:
            pred.error = str(exc)
        if len(batch) == BATCH:
            _classify(forward, batch, trained, topk)
            batch = []
    if batch:
        _classify(forward, batch, trained, topk)
    return results


@torch.no_grad()
def _classify(forward: Callable, batch, trained: Trained | OnnxClassifier, topk: int) -> None:
    """Top-k of a batch: softmax of the logits over the run's saved temperature (1 when none)."""
    names = trained.classes
    x = torch.stack([t for _, t in batch])
    probs = torch.softmax(forward(x).float().cpu() / trained.temperature, dim=1)
    values, indices = probs.topk(min(topk, probs.shape[1]), dim=1)
    for (pred, _), vals, idxs in zip(batch, values.tolist(), indices.tolist()):
        pred.top = [TopK(i, names[i], p) for i, p in zip(idxs, vals)]


def write_csv(results: list[Prediction], path, topk: int) -> Path:
    """One row per image: file, then class and probability of each of the top-k, then the error."""
    k = max([topk] + [len(r.top) for r in results])
    header = ["file"] + [f"{what}_{i + 1}" for i in range(k) for what in ("class", "prob")] + ["error"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for r in results:
        cells = [r.source]
        for i in range(k):
            cells += [r.top[i].name, f"{r.top[i].prob:.6f}"] if i < len(r.top) else ["", ""]
        writer.writerow(cells + [r.error or ""])
    out = Path(path)
    with atomic_write(out, "w") as fh:
        fh.write(buf.getvalue())
    return out
