"""Pictures of what a network has learned: ``visualize_filters``, ``visualize_features``,
``visualize_cam`` and ``visualize_deconv``; each writes one PNG (atomically) and returns a
:class:`VizResult`.

``model`` is a registered name (built with ``create_model(name, weights=...)``; ``weights`` is a
checkpoint file, a run folder of ``cnnlab train``/``finetune``, a pretrained tag such as
``'imagenet'``, or ``None`` for a random initialisation, which prints a notice: untrained filters and
maps are noise) or an already built model; a run folder may stand for the model too. The model, its
class names and its preprocessing come from :func:`cnnlab.workflows.trained.load_trained`, and images
are read and preprocessed as ``cnnlab predict`` does.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..data.images import read_image
from ..data.transforms import eval_transform
from ..errors import CnnlabError
from ..utils.figures import check_picture_path
from ..utils.log import notice
from ..viz import cam as cam_lib
from ..viz import deconvnet as deconv_lib
from ..viz import features as features_lib
from ..viz import filters as filters_lib
from ..viz.common import model_label, to_display
from .trained import load_trained, model_and_weights

METHODS = ("gradcam", "cam")


@dataclass
class VizResult:
    path: Path  # the PNG written
    summary: str  # one line: what the picture shows


def check_out(out) -> Path:
    """The PNG path to write; a folder or an unwritable place is a one-line error (before any work)."""
    return check_picture_path(out, "output")


def load_model(model, weights=None) -> tuple[nn.Module, list[str]]:
    """(model in eval mode, class names) from a registered name, a run folder or a built module."""
    if weights is None and not isinstance(model, nn.Module):
        notice(
            f"{model}: no weights given, so this shows a randomly initialised network (its filters and maps "
            "are noise); pass --weights RUN|FILE|imagenet"
        )
    trained = load_trained(*model_and_weights(model, weights), quiet=True)
    return trained.model, trained.classes


def prepare_image(model: nn.Module, image) -> tuple[torch.Tensor, object]:
    """(1, C, H, W) input tensor and the displayable crop (H, W[, 3]) in [0, 1]."""
    cfg = model.default_cfg
    label = str(image) if isinstance(image, str | os.PathLike) else "image"
    pil = read_image(image, "L" if cfg.input_size[0] == 1 else "RGB", label)
    x = eval_transform(cfg)(pil).unsqueeze(0)
    return x, to_display(x[0], cfg.mean, cfg.std)


def visualize_filters(model, weights=None, out="filters.png") -> VizResult:
    """The first conv layer's kernels as a tile grid."""
    check_out(out)
    net, _ = load_model(model, weights)
    what = filters_lib.plot_filters(net, out)
    return VizResult(Path(out), what)


def visualize_features(
    model, image, stage: str, weights=None, top: int = 16, out="features.png"
) -> VizResult:
    """The ``top`` channels of ``stage`` (a stage name or module path) with the largest mean activation."""
    check_out(out)
    net, _ = load_model(model, weights)
    x, shown = prepare_image(net, image)
    fm = features_lib.feature_maps(net, x, stage, top)
    features_lib.plot_feature_maps(shown, fm, out, title=f"{model_label(net)}: {_title_of(image)}, "
                                   f"{fm.layer} top {len(fm.channels)} of {fm.num_channels} channels by mean")
    return VizResult(Path(out), features_lib.describe(net, fm))


def visualize_cam(model, image, weights=None, target=None, method: str = "gradcam", stage: str | None = None,
                  out="cam.png") -> VizResult:
    """CAM or Grad-CAM for class ``target`` (index or name; default: the predicted class)."""
    if method not in METHODS:
        raise CnnlabError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if method == "cam" and stage is not None:
        raise CnnlabError("CAM is defined only at the last feature map; drop --stage or use --method gradcam")
    check_out(out)
    net, names = load_model(model, weights)
    x, shown = prepare_image(net, image)
    index = class_index(target, names)
    if method == "cam":
        result = cam_lib.class_activation_map(net, x, index)
    else:
        result = cam_lib.grad_cam(net, x, index, stage)
    name = names[result.class_index] if result.class_index < len(names) else f"class_{result.class_index}"
    cam_lib.plot_cam(shown, result, name, out, title=f"{model_label(net)}: {_title_of(image)}")
    p = float(result.probs[result.class_index])
    return VizResult(
        Path(out),
        f"{model_label(net)} {result.method} at {result.layer}: class {result.class_index} "
        f"'{name}' (p = {p:.3f})",
    )


def visualize_deconv(model, image, weights=None, layer: str | None = None, channel: int | None = None,
                     out="deconv.png") -> VizResult:
    """ZFNet's deconvnet projection of one activation of ``layer`` (default: the deepest stage)."""
    check_out(out)
    net, _ = load_model(model, weights)
    deconv_lib.deconv_stack(net)  # unsupported models fail before the image is read
    x, shown = prepare_image(net, image)
    proj = deconv_lib.deconv_projection(net, x, layer, channel)
    deconv_lib.plot_projection(shown, proj, out, title=f"{model_label(net)}: {_title_of(image)}, deconvnet")
    return VizResult(Path(out), f"{model_label(net)} deconvnet from {proj.layer} channel {proj.channel} at "
                                f"{proj.position} (activation {proj.activation:.4g})")


def class_index(target, names: list[str]) -> int | None:
    """``None``, an index (int or digits) or a class name (case-insensitive) -> index; range checked later."""
    if target is None or isinstance(target, int):
        return target
    text = str(target).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    lowered = [n.lower() for n in names]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    close = difflib.get_close_matches(text, names, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else "; give a class index instead"
    raise CnnlabError(f"unknown class {text!r}{hint}")


def _title_of(image) -> str:
    return Path(image).name if isinstance(image, str | os.PathLike) else "image"
