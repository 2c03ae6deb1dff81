"""ZFNet's deconvnet: Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks",
arXiv:1311.2901 (ECCV 2014), Section 2.1.

One activation of a chosen layer (default: the channel with the strongest activation, at its
maximum) is kept, every other activation of that layer is set to zero, and the signal is projected
back to pixel space through the layers below, in reverse order:

* max pooling -> **unpooling** with the switches (the argmax positions) recorded in the forward
  pass: each value goes back exactly to the position its maximum came from; where overlapping
  windows share a switch their values add up;
* ReLU -> **ReLU on the reconstructed signal** (not the forward pass's mask: the deconvnet rule);
* convolution -> **transposed convolution with the same filters** (no bias);
* local response ("contrast") normalisation and dropout -> passed through, as in the paper;
  batch normalisation (inference) -> its per-channel scale ``gamma / sqrt(var + eps)``.

Apart from the ReLU rule this is exactly the gradient of the chosen activation with respect to the
input (times its value): the tests compare it with ``torch.autograd`` through a ReLU whose backward
is ``ReLU(grad)``. The method needs a plain sequential stack of these layers as the whole feature
extractor: the ``nn.Sequential`` that holds the model's first convolution, whose output is
``forward_features`` (``features`` of AlexNet, ZFNet, VGG, LeNet-5 with ReLU); other models get a
one-line error that names the supported ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import CnnlabError
from .common import model_label, save_figure, show
from .filters import first_conv

PASS_THROUGH = (nn.LocalResponseNorm, nn.Dropout, nn.Identity)
SUPPORTED_LAYERS = (nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.BatchNorm2d, *PASS_THROUGH)
# The registered models whose first-conv Sequential is such a stack (kept true by
# tests/viz/test_deconvnet.py);
# used only to name them in the error message.
SUPPORTED_MODELS = (
    "alexnet",
    "alexnet_2012",
    "lenet5_relu",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "zfnet",
)


@dataclass
class Projection:
    layer: str  # module path of the chosen layer
    channel: int
    position: tuple[int, int]  # (row, column) of the kept activation in the layer's map
    activation: float  # its value
    image: torch.Tensor  # (C, H, W) projection in input space (same units as the normalised input)


def deconv_stack(model: nn.Module, x: torch.Tensor | None = None) -> tuple[str, nn.Sequential]:
    """(path, module) of the plain conv/ReLU/max-pool stack that starts with the first convolution and
    makes the model's whole convolutional trunk; with an input ``x`` the stack's output is checked to be
    ``forward_features(x)`` (only the shape for meta tensors)."""
    name, _ = first_conv(model)
    path = name.rpartition(".")[0]
    stack = model.get_submodule(path) if path else None
    ok = isinstance(stack, nn.Sequential) and all(isinstance(m, SUPPORTED_LAYERS) for m in stack)
    if ok and x is not None:
        with torch.no_grad():
            ours, theirs = stack(x.clone()), model.forward_features(x.clone())
        ok = ours.shape == theirs.shape and (x.is_meta or torch.allclose(ours, theirs, atol=1e-5))
    if not ok:
        raise CnnlabError(
            f"the deconvnet needs a plain conv/ReLU/max-pool stack as the feature extractor and "
            f"{model_label(model)} has none; supported models: {', '.join(SUPPORTED_MODELS)}"
        )
    return path, stack


def unpool(y: torch.Tensor, switches: torch.Tensor, input_shape: torch.Size) -> torch.Tensor:
    """Put each value of ``y`` at its switch (flat argmax index per channel) in a zero map of ``input_shape``;
    values that share a switch (overlapping windows) add up."""
    out = torch.zeros(input_shape, dtype=y.dtype, device=y.device)
    out.flatten(2).scatter_add_(2, switches.flatten(2), y.flatten(2))
    return out


def project(stack: nn.Sequential, x: torch.Tensor, index: int, channel: int | None = None) -> Projection:
    """Deconvnet projection of one activation of ``stack[index]``'s output for one image ``x``
    (1, C, H, W)."""
    inputs, switches = [], {}
    with torch.no_grad():
        h = x
        for i, layer in enumerate(stack[: index + 1]):
            inputs.append(h.shape)
            if isinstance(layer, nn.MaxPool2d):
                h, switches[i] = F.max_pool2d(
                    h,
                    layer.kernel_size,
                    layer.stride,
                    layer.padding,
                    layer.dilation,
                    layer.ceil_mode,
                    return_indices=True,
                )
            else:
                h = layer(h.clone())  # clone: in-place ReLUs must not change what we keep
        channel, pos, value = _strongest(h[0], channel, index)
        signal = torch.zeros_like(h)
        signal[0, channel, pos[0], pos[1]] = value
        for i in range(index, -1, -1):
            signal = _backward(stack[i], signal, inputs[i], switches.get(i))
    return Projection(str(index), channel, pos, value, signal[0])


def _strongest(act: torch.Tensor, channel: int | None, index: int) -> tuple[int, tuple[int, int], float]:
    c, h, w = act.shape
    if channel is None:
        channel = int(act.flatten(1).max(dim=1).values.argmax())
    elif isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel < c:
        raise CnnlabError(f"channel {channel!r} is out of range: layer {index} has {c} channels (0..{c - 1})")
    flat = int(act[channel].argmax())
    pos = (flat // w, flat % w)
    return channel, pos, float(act[channel, pos[0], pos[1]])


def _backward(layer: nn.Module, signal: torch.Tensor, input_shape: torch.Size, switches) -> torch.Tensor:
    if isinstance(layer, nn.ReLU):
        return F.relu(signal)
    if isinstance(layer, nn.MaxPool2d):
        return unpool(signal, switches, input_shape)
    if isinstance(layer, nn.Conv2d):
        return torch.nn.grad.conv2d_input(input_shape, layer.weight, signal, layer.stride, layer.padding,
                                          layer.dilation, layer.groups)
    if isinstance(layer, nn.BatchNorm2d):
        scale = layer.weight / torch.sqrt(layer.running_var + layer.eps)
        return signal * scale.view(1, -1, 1, 1)
    return signal  # PASS_THROUGH


def deconv_projection(
    model: nn.Module, x: torch.Tensor, layer: str | None = None, channel: int | None = None
) -> Projection:
    """Project one activation of ``layer`` (a module path inside the stack, or a stage name; default: the
    deepest stage in the stack) back to pixel space. ``channel`` default: the strongest one."""
    model.eval()
    path, stack = deconv_stack(model, x)
    names = [f"{path}.{i}" for i in range(len(stack))]
    if layer is None:
        inside = [s.name for s in getattr(model, "stages", ()) if s.name in names]
        layer = inside[-1] if inside else names[-1]
    if layer not in names:
        raise CnnlabError(f"layer {layer!r} is not in {model_label(model)}'s deconvnet stack; pick one of "
                          f"{names[0]} .. {names[-1]} (stages: {', '.join(s.name for s in model.stages)})")
    proj = project(stack, x, names.index(layer), channel)
    proj.layer = layer
    return proj


def support_box(proj: torch.Tensor, margin: int = 0) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the non-zero part of a (C, H, W) projection (plus ``margin`` pixels)."""
    nz = proj.abs().sum(0) > 0
    if not nz.any():
        return 0, proj.shape[1], 0, proj.shape[2]
    rows, cols = torch.where(nz)
    h, w = nz.shape
    return (max(int(rows.min()) - margin, 0), min(int(rows.max()) + margin + 1, h),
            max(int(cols.min()) - margin, 0), min(int(cols.max()) + margin + 1, w))


def to_picture(proj: torch.Tensor) -> np.ndarray:
    """Zero at grey, scaled by the largest magnitude over all channels (colour balance kept)."""
    p = proj.detach().float().cpu()
    p = 0.5 + 0.5 * p / max(float(p.abs().max()), 1e-12)
    img = p.permute(1, 2, 0).numpy()
    return img[..., 0] if img.shape[-1] == 1 else img[..., :3]


def plot_projection(image: np.ndarray, proj: Projection, path: str | os.PathLike, title: str = "") -> None:
    """Four panels: input, projection, and both cropped to the projection's support (the receptive field)."""
    top, bottom, left, right = support_box(proj.image)
    picture = to_picture(proj.image)
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.7))
    show(axes[0], image, "input (box: support of the projection)")
    axes[0].add_patch(
        plt.Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False, color="red")
    )
    show(axes[1], picture, f"projection of {proj.layer} ch {proj.channel} at {proj.position}")
    show(
        axes[2],
        image[top:bottom, left:right],
        f"input patch {bottom - top}x{right - left}",
        interpolation="nearest",
    )
    show(axes[3], picture[top:bottom, left:right], f"projection patch (activation {proj.activation:.3g})",
         interpolation="nearest")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
