"""Class activation maps: where in the image the evidence for one class lies.

* **CAM** (Zhou et al. 2016, "Learning Deep Features for Discriminative Localization",
  arXiv:1512.04150): for a head that is global average pooling + one linear layer, the class score is
  ``y_c = mean_xy M_c(x, y) + b_c`` with ``M_c(x, y) = sum_k w_ck f_k(x, y)`` over the last feature
  map ``f`` (``forward_features``). ``M_c`` is the map (the bias, spatially constant, is left out).
  Whether the head is of that form is checked numerically on the image itself, so no architecture
  is named: a model whose ``forward_head`` differs (an MLP head, a class token) gets a one-line error.
* **Grad-CAM** (Selvaraju et al. 2017, arXiv:1610.02391): for any layer ``A`` (C, h, w), the channel
  weights are the spatial means of ``d y_c / d A`` and the map is ``ReLU(sum_k alpha_k A_k)``. The
  default layer is the last feature map; for token models (ViT, whose head reads only the class
  token) the default is the deepest stage whose patch tokens the class score depends on. Tokens are
  laid out on their patch grid, channel-last maps (Swin) are permuted.

For a GAP + linear head at the last feature map the two agree: ``d y_c / d f_k(x, y) = w_ck / (h w)``,
so Grad-CAM ``= ReLU(CAM) / (h w)`` (tested). Maps are upsampled to the input bilinearly and
min-max scaled for display.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import CnnlabError
from .common import as_feature_map, capture_output, find_layer, model_label, save_figure, scale01, show

LAST = "forward_features"  # name of the default layer: the model's last feature map


@dataclass
class CamResult:
    method: str  # "cam" or "gradcam"
    layer: str  # stage / module path, or "forward_features"
    class_index: int
    heat: torch.Tensor  # (h, w) raw map at the layer's resolution
    probs: torch.Tensor  # (num_classes,) softmax of the logits


def _pick_class(logits: torch.Tensor, class_index: int | None) -> int:
    n = logits.shape[-1]
    if class_index is None:
        return int(logits[0].argmax())
    if isinstance(class_index, bool) or not isinstance(class_index, int) or not 0 <= class_index < n:
        raise CnnlabError(f"class {class_index!r} is out of range: the model has {n} classes (0..{n - 1})")
    return class_index


def _gap_linear_weight(model: nn.Module, feats: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """The (classes, C) weight of a GAP + linear head, checked against ``forward_head`` on ``feats``."""
    why = None
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    if feats.ndim != 4:
        why = f"its last features have shape {tuple(feats.shape)}, not a (C, h, w) map"
    elif not isinstance(head, nn.Linear) or head.in_features != feats.shape[1]:
        why = "its classifier is not one linear layer on the pooled channels"
    else:
        direct = head(feats.mean(dim=(2, 3)))
        if not torch.allclose(direct, logits, rtol=1e-4, atol=1e-4 * (1 + float(logits.abs().max()))):
            why = "its head is not global average pooling + one linear layer"
    if why:
        raise CnnlabError(f"CAM needs a global-average-pool + linear head, and {model_label(model)} has none "
                          f"({why}); use Grad-CAM (--method gradcam) instead")
    return head.weight


@torch.no_grad()
def class_activation_map(model: nn.Module, x: torch.Tensor, class_index: int | None = None) -> CamResult:
    """CAM of one image ``x`` (1, C, H, W) for ``class_index`` (default: the predicted class)."""
    model.eval()
    feats = model.forward_features(x)
    logits = model.forward_head(feats)
    weight = _gap_linear_weight(model, feats, logits)
    k = _pick_class(logits, class_index)
    heat = torch.einsum("c,chw->hw", weight[k].float(), feats[0].float())
    return CamResult("cam", LAST, k, heat.cpu(), torch.softmax(logits[0].float(), 0).cpu())


def grad_cam(model: nn.Module, x: torch.Tensor, class_index: int | None = None,
             layer: str | None = None) -> CamResult:
    """Grad-CAM of one image ``x`` (1, C, H, W) at ``layer`` (a stage name or module path; default:
    the last feature map) for ``class_index`` (default: the predicted class)."""
    model.eval()
    hw = tuple(x.shape[-2:])
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)  # so that the graph exists even for frozen weights
        if layer is not None:
            module, stage = find_layer(model, layer)
            logits, out = capture_output(model, module, x)
            k = _pick_class(logits, class_index)
            (grad,) = torch.autograd.grad(logits[0, k], out, allow_unused=True)
            acts, grads = as_feature_map(out, stage, hw), as_feature_map(_or_zeros(grad, out), stage, hw)
        else:
            layer, acts, grads, logits, k = _default_layer(model, x, class_index)
    alpha = grads[0].float().mean(dim=(1, 2))
    heat = F.relu(torch.einsum("c,chw->hw", alpha, acts[0].detach().float()))
    return CamResult("gradcam", layer, k, heat.cpu(), torch.softmax(logits[0].detach().float(), 0).cpu())


def _or_zeros(grad: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if grad is None else grad


def _default_layer(model, x, class_index):
    """The last feature map if it is a (C, h, w) map, else the deepest stage whose gradient is not zero."""
    feats = model.forward_features(x)
    if feats.ndim == 4:
        logits = model.forward_head(feats)
        k = _pick_class(logits, class_index)
        (grad,) = torch.autograd.grad(logits[0, k], feats)
        return LAST, feats, grad, logits, k
    outs: dict[str, torch.Tensor] = {}
    handles = [m.register_forward_hook(lambda _m, _i, o, s=s: outs.__setitem__(s, o))
               for s, m in model.stage_modules()]
    try:
        logits = model(x)
    finally:
        for h in handles:
            h.remove()
    k = _pick_class(logits, class_index)
    stages = [s for s, _ in model.stage_modules() if isinstance(outs.get(s), torch.Tensor)]
    grads = torch.autograd.grad(logits[0, k], [outs[s] for s in stages], allow_unused=True)
    hw = tuple(x.shape[-2:])
    for stage, grad in reversed(list(zip(stages, grads))):
        if grad is not None and as_feature_map(grad, stage, hw).abs().sum() > 0:
            return (
                stage.name,
                as_feature_map(outs[stage], stage, hw),
                as_feature_map(grad, stage, hw),
                logits,
                k,
            )
    raise CnnlabError(
        f"the class score of {model_label(model)} has a zero gradient at every stage (an untrained, "
        "zero-initialised head?); give trained --weights or name a layer with --stage"
    )


def upsample(heat: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """(h, w) map -> (H, W) bilinear upsampling, min-max scaled to [0, 1]."""
    up = F.interpolate(heat[None, None].float(), size=size, mode="bilinear", align_corners=False)[0, 0]
    return scale01(up.numpy())


def overlay(image: np.ndarray, heat01: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend the 'jet'-coloured heatmap (H, W) in [0, 1] over an RGB or grey image in [0, 1]."""
    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
    colour = matplotlib.colormaps["jet"](heat01)[..., :3]
    return np.clip((1 - alpha) * rgb + alpha * colour, 0.0, 1.0)


def plot_cam(image: np.ndarray, result: CamResult, class_name: str, path: str | os.PathLike,
             title: str = "") -> None:
    """Three panels: the input, the map upsampled to it, and the overlay."""
    heat = upsample(result.heat, image.shape[:2])
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.9))
    h, w = result.heat.shape
    p = float(result.probs[result.class_index])
    show(axes[0], image, "input")
    show(axes[1], heat, f"{'CAM' if result.method == 'cam' else 'Grad-CAM'} at {result.layer} ({h}x{w})",
         cmap="jet")
    show(axes[2], overlay(image, heat), f"class {result.class_index} '{class_name}', p = {p:.3f}")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
