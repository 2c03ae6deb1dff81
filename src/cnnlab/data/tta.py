"""Test-time views: one image -> a stack of views ``(V, C, size, size)``, so a batch is ``(B, V, C, H, W)``.

The views are taken from a model's single-view evaluation preprocessing (``eval_transform(cfg)``,
or the ``build_transform(..., train=False)`` of a ``cnnlab train`` run): its resize of the shorter side
is kept (or set to each scale Q), its pointwise steps (to float, normalise) run on the whole resized
image, and its centre crop is replaced by the views. Cropping and mirroring commute with pointwise
steps, so the ``"none"`` view is bitwise the single-view image.

=============  ======  ==========================================================================
mode           views   what
=============  ======  ==========================================================================
none           1       the centre crop (the model's ordinary evaluation)
flip           2       the centre crop and its mirror image
5crop          5       the four corner crops and the centre crop, no mirror (torchvision's FiveCrop
                       order: top-left, top-right, bottom-left, bottom-right, centre), for data whose
                       mirror image means something else (digits, text)
10crop         10      AlexNet's 10-crop (Krizhevsky et al. 2012, section 4.1): the four corner
                       crops and the centre crop of the resized image, then the same five crops of
                       the mirrored image (torchvision's TenCrop order: top-left, top-right,
                       bottom-left, bottom-right, centre, then those of the mirror, so view 5 is
                       the mirror of view 1, view 6 that of view 0, ...)
multiscale     2 x Q   VGG's multi-scale evaluation (Simonyan & Zisserman 2014, arXiv:1409.1556,
                       section 4.2) with crops: the shorter side resized to each Q in ``scales``,
                       then the centre crop and its mirror at each Q (scale-major order)
=============  ======  ==========================================================================

``scales`` (shorter sides in pixels) apply to every mode: the views of the mode are taken at each Q
(``10crop`` with ``scales=(256, 384, 512)`` gives 30 views, VGG's multi-crop without its 5x5 grid).
Defaults: the model's own evaluation side (``size / crop_pct``) for none/flip/10crop, and
``size x (256, 384, 512) / 224`` for multiscale (the paper's Q for a 224 net trained with scale jitter
S in [256, 512]). When the evaluation side leaves no margin (``crop_pct`` 1: the whole image), the
corner crops would all be the same image, so 5crop/10crop then use AlexNet's side ``size x 256 / 224``.
VGG's dense (fully convolutional) evaluation of the uncropped image is not offered: views of one
size stack into a batch, which uncropped images of other aspect ratios do not.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2 as T
from torchvision.transforms.v2 import functional as TF

from ..errors import CnnlabError

TTA_MODES = ("none", "flip", "5crop", "10crop", "multiscale")
VIEWS_PER_SCALE = {"none": 1, "flip": 2, "5crop": 5, "10crop": 10, "multiscale": 2}
ALEXNET_RATIO = 256 / 224  # the resized side over the crop side of AlexNet's 10-crop
VGG_SCALES = (256, 384, 512)  # VGG's test scales Q for a 224-pixel net (section 4.2)


def default_scales(mode: str, size: int, side: int) -> tuple[int, ...]:
    """The shorter sides Q of ``mode`` for a ``size`` net whose single-view evaluation resizes to ``side``."""
    if mode == "multiscale":
        return tuple(round(size * q / 224) for q in VGG_SCALES)
    if mode in ("5crop", "10crop") and side <= size:
        return (round(size * ALEXNET_RATIO),)
    return (side,)


def check_mode(mode: str) -> str:
    if mode not in TTA_MODES:
        raise CnnlabError(f"unknown test-time augmentation {mode!r}; use one of {', '.join(TTA_MODES)}")
    return mode


class CentreView:
    """The centre crop: 1 view."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, image: torch.Tensor) -> list[torch.Tensor]:
        return [TF.center_crop(image, [self.size, self.size])]


class FlipViews(CentreView):
    """The centre crop and its horizontal mirror: 2 views."""

    def __call__(self, image: torch.Tensor) -> list[torch.Tensor]:
        centre = TF.center_crop(image, [self.size, self.size])
        return [centre, TF.horizontal_flip(centre)]


class FiveCropViews:
    """torchvision's FiveCrop: the four corners and the centre."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.crops = T.FiveCrop(size)

    def __call__(self, image: torch.Tensor) -> list[torch.Tensor]:
        return list(self.crops(image))


class TenCropViews(FiveCropViews):
    """torchvision's TenCrop: four corners and the centre, then the same of the mirrored image."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.crops = T.TenCrop(size)


VIEW_MAKERS = {"none": CentreView, "flip": FlipViews, "5crop": FiveCropViews, "10crop": TenCropViews,
               "multiscale": FlipViews}


def _dissect(transform) -> tuple[list, T.Resize, int, list]:
    """(steps before the resize, the resize, the crop side, pointwise steps after the crop) of a
    ``[..., Resize(side), CenterCrop(size), pointwise...]`` evaluation transform."""
    ops = list(getattr(transform, "transforms", ()))
    crops = [i for i, op in enumerate(ops) if isinstance(op, T.CenterCrop)]
    resizes = [i for i, op in enumerate(ops) if isinstance(op, T.Resize)]
    if len(crops) != 1 or len(resizes) != 1 or resizes[0] > crops[0]:
        raise ValueError(f"not a resize + centre-crop evaluation transform: {transform!r}")
    crop, resize = ops[crops[0]], ops[resizes[0]]
    size = crop.size if isinstance(crop.size, int) else crop.size[-1]
    if len(resize.size) != 1:
        raise ValueError(f"the evaluation resize must set the shorter side, got {resize.size}")
    before = ops[:resizes[0]] + ops[resizes[0] + 1:crops[0]]
    return before, resize, int(size), ops[crops[0] + 1:]


def _resize_to(resize: T.Resize, side: int) -> T.Resize:
    if resize.size[0] == side:
        return resize
    return type(resize)(
        side, interpolation=resize.interpolation, max_size=resize.max_size, antialias=resize.antialias
    )


class TestTimeViews:
    """``image -> (V, C, size, size)``: the views of ``mode`` built on the evaluation transform ``base``
    (see the module docstring). ``scales``: shorter sides Q in pixels (default: :func:`default_scales`)."""

    __test__ = False  # not a pytest class

    def __init__(self, base, mode: str = "none", scales=None) -> None:
        self.mode = check_mode(mode)
        self.before, resize, self.size, self.after = _dissect(base)
        self.side = resize.size[0]
        self.scales = tuple(int(q) for q in scales) if scales else default_scales(mode, self.size, self.side)
        small = [q for q in self.scales if q < self.size]
        if small:
            raise CnnlabError(
                f"scale {small[0]} is smaller than the {self.size}-pixel crop; give scales >= {self.size}"
            )
        self.resizes = [_resize_to(resize, q) for q in self.scales]
        self.views = VIEW_MAKERS[mode](self.size)
        self.num_views = VIEWS_PER_SCALE[mode] * len(self.scales)
        for attr in ("accepts_tensor", "fast_decode"):  # how the dataset may decode files for ``base``
            if hasattr(base, attr):
                setattr(self, attr, getattr(base, attr))
        draft = getattr(base, "draft_size", None)
        if draft is not None:
            self.draft_size = max([draft, *self.scales])

    def __call__(self, image) -> torch.Tensor:
        for op in self.before:
            image = op(image)
        out = []
        for resize in self.resizes:
            x = resize(image)
            for op in self.after:
                x = op(x)
            out += self.views(x)
        return torch.stack([v.as_subclass(torch.Tensor) for v in out])

    def describe(self) -> str:
        q = ",".join(map(str, self.scales))
        return f"{self.mode}: {self.num_views} view(s) of {self.size} px at shorter side {q}"

    def __repr__(self) -> str:
        return f"TestTimeViews({self.describe()})"


def tta_transform(cfg, mode: str = "none", scales=None) -> TestTimeViews:
    """The views of ``mode`` on ``eval_transform(cfg)`` (a model's ``default_cfg``: mean/std,
    crop_pct, interpolation, input size)."""
    from .transforms import eval_transform

    return TestTimeViews(eval_transform(cfg), mode, scales)
