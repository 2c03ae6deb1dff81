"""Pieces shared by the network pictures (filters, feature maps, CAMs, deconvnet projections).

* :func:`find_layer` resolves a stage name (``model.stages``) or any module path to a module;
* :func:`capture_output` runs the model once with a forward hook on one module and removes it;
* :func:`as_feature_map` turns a module's output into a (B, C, h, w) map: token sequences of
  transformers are reshaped to their patch grid, channel-last maps (Swin) are permuted;
* :func:`to_display` undoes the normalisation of an input tensor for showing it;
* :func:`save_figure` writes a matplotlib figure atomically (Agg backend, no display needed).
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from ..errors import CnnlabError  # noqa: E402
from ..models.base import Stage  # noqa: E402
from ..utils.figures import save_figure  # noqa: E402,F401  (the pictures' one writer, re-exported)


def model_label(model: nn.Module) -> str:
    return getattr(model, "model_name", "") or type(model).__name__


def find_layer(model: nn.Module, name: str) -> tuple[nn.Module, Stage | None]:
    """The module called ``name`` (a stage name or a dotted module path) and its stage row, if any."""
    stages = {s.name: s for s in getattr(model, "stages", ())}
    try:
        module = model.get_submodule(name)
    except AttributeError:
        module = None
    if module is None or module is model or not name:
        listed = ", ".join(stages) or "none"
        raise CnnlabError(f"{model_label(model)} has no stage or module {name!r}; its stages are: {listed} "
                          "(any module path from `print(model)` works too)")
    return module, stages.get(name)


def capture_output(model: nn.Module, module: nn.Module, x: torch.Tensor,
                   keep_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model(x)`` once; return (logits, the output of ``module``). The hook is always removed.

    With ``keep_grad`` the captured output keeps its gradient after ``backward`` (``.grad``)."""
    seen: list[torch.Tensor] = []

    def hook(_module, _inputs, output):
        out = output[0] if isinstance(output, tuple | list) else output
        if keep_grad and out.requires_grad:
            out.retain_grad()
        seen.append(out)

    handle = module.register_forward_hook(hook)
    try:
        logits = model(x)
    finally:
        handle.remove()
    if not seen:
        raise CnnlabError(
            f"module {type(module).__name__} of {model_label(model)} is not used in the forward pass"
        )
    if not isinstance(seen[-1], torch.Tensor):
        raise CnnlabError(f"module {type(module).__name__} does not return a tensor; pick another layer")
    return logits, seen[-1]


def as_feature_map(out: torch.Tensor, stage: Stage | None, input_hw: tuple[int, int]) -> torch.Tensor:
    """(B, C, h, w) view of a module output: NCHW maps as they are, NHWC maps and token sequences
    (B, T, D) reshaped with the stage's channels and reduction (else: the largest square grid of
    tokens, any leading class/distillation tokens dropped)."""
    if out.ndim == 4:
        if stage is not None and out.shape[-1] == stage.channels and out.shape[1] != stage.channels:
            return out.permute(0, 3, 1, 2)  # channel-last (B, h, w, C)
        return out
    if out.ndim != 3:
        raise CnnlabError(f"the layer's output has shape {tuple(out.shape)}, not a feature map or tokens; "
                          "pick a convolutional stage")
    tokens = out.shape[1]
    if stage is not None and stage.reduction > 0:
        h, w = (math.ceil(s / stage.reduction) for s in input_hw)
    else:
        h = w = math.isqrt(tokens)
    extra = tokens - h * w
    if h * w == 0 or extra < 0 or extra > 8:
        raise CnnlabError(f"cannot lay {tokens} tokens out on a grid; pick a convolutional stage")
    return out[:, extra:].transpose(1, 2).reshape(out.shape[0], out.shape[2], h, w)


def to_display(x: torch.Tensor, mean, std) -> np.ndarray:
    """A normalised (C, H, W) input -> (H, W, 3) or (H, W) floats in [0, 1] for imshow."""
    c = x.shape[0]
    img = x.detach().float().cpu() * torch.tensor(std[:c]).view(c, 1, 1) + torch.tensor(mean[:c]).view(
        c, 1, 1
    )
    img = img.clamp(0, 1).permute(1, 2, 0).numpy()
    return img[..., 0] if c == 1 else img[..., :3]


def scale01(a: np.ndarray) -> np.ndarray:
    """Min-max scaling to [0, 1] (a constant array becomes 0.5)."""
    lo, hi = float(a.min()), float(a.max())
    return (
        np.full_like(a, 0.5, dtype=np.float32)
        if hi - lo < 1e-12
        else ((a - lo) / (hi - lo)).astype(np.float32)
    )


def grid_shape(n: int, max_cols: int = 8) -> tuple[int, int]:
    cols = min(n, max_cols) if n > 0 else 1
    return math.ceil(max(n, 1) / cols), cols


def show(ax, img: np.ndarray, title: str = "", **kw) -> None:
    ax.imshow(img, cmap=kw.pop("cmap", "gray" if img.ndim == 2 else None), **kw)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
