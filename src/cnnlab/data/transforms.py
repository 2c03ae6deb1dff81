"""Image transforms (torchvision.transforms.v2 where it has the transform).

``eval_transform(cfg)`` is the one evaluation preprocessing, from a model's or a checkpoint's data
config: resize the shorter side to ``size / crop_pct``, centre-crop ``size``, scale to [0, 1],
normalise. ``build_transform(preset, train=False)`` is the same with the crop fraction the preset's
training implies (:func:`eval_crop_pct`).

``build_transform(preset, train=...)`` makes training augmentations from the papers' presets
(alexnet, vgg, inception, resnet, cifar; none/digits for small images) and composable options; see
:class:`Augment`. Transforms that v2 lacks (PCA lighting, colour shift, grid distortion) are in
:mod:`cnnlab.data.augment`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

from ..errors import CnnlabError
from .augment import (
    ColorShift,
    Compose,
    GridDistortion,
    PCALighting,
    RandomResizedCrop,
    RandomShortestSize,
    Resize,
    ToFloatNormalized,
)

INTERPOLATION = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC,
                 "nearest": InterpolationMode.NEAREST}


def eval_transform(cfg) -> Compose:
    """The one evaluation preprocessing, from a data config (``input_size``, ``mean``, ``std``,
    ``interpolation``, ``crop_pct``): resize the shorter side to ``size / crop_pct`` (``crop_pct`` 1:
    to ``size``), centre-crop ``size``, scale to [0, 1], normalise. PIL image or uint8 tensor (C, H, W)
    -> float tensor (C, size, size)."""
    size = int(cfg.input_size[-1])
    if cfg.interpolation not in INTERPOLATION:
        raise CnnlabError(
            f"unknown interpolation '{cfg.interpolation}'; use one of {', '.join(INTERPOLATION)}"
        )
    if not 0 < cfg.crop_pct <= 1:
        raise CnnlabError(f"crop_pct must be in (0, 1], got {cfg.crop_pct!r}")
    resize = math.floor(size / cfg.crop_pct) if cfg.crop_pct < 1 else size
    transform = Compose([Resize(resize, interpolation=INTERPOLATION[cfg.interpolation], antialias=True),
                         T.CenterCrop(size), ToFloatNormalized(cfg.mean, cfg.std)])
    transform.draft_size = resize
    transform.accepts_tensor = True
    return transform


def eval_crop_pct(preset: str | None, crop_pct: float, **options) -> float:
    """The crop fraction evaluation uses after training with ``preset``: 1.0 (the whole image) for the
    presets that train on whole images (:data:`FULL_VIEW_BASES`), else ``crop_pct``."""
    return 1.0 if resolve_augment(preset, **options).base in FULL_VIEW_BASES else crop_pct


# ---------------------------------------------------------------------------------------------------
# Training augmentations: named presets from the papers plus composable options.


@dataclass(frozen=True)
class Augment:
    """What a training transform does. ``base`` is how the crop of ``size`` pixels is made:

    * ``resize`` - resize to ``size`` (no crop; small images such as digits);
    * ``crop`` - AlexNet: shorter side to ``size * 256/224``, centre square, random ``size`` crop;
    * ``rrc`` - RandomResizedCrop (Inception): area fraction ``scale``, aspect ``ratio``;
    * ``scale_jitter`` - VGG/ResNet: shorter side S uniform in ``size * jitter`` (e.g. [256, 512]
      for 224), then a random ``size`` crop;
    * ``pad_crop`` - CIFAR: pad ``padding`` pixels (zeros), random ``size`` crop.
    """

    base: str = "resize"
    scale: tuple[float, float] = (0.08, 1.0)  # rrc: fraction of the image area
    ratio: tuple[float, float] = (3 / 4, 4 / 3)  # rrc: aspect ratio range
    jitter: tuple[float, float] = (256 / 224, 512 / 224)  # scale_jitter: S range in units of size
    padding: int = 4  # pad_crop: pixels on each side
    flip: bool = False  # horizontal mirroring, p = 0.5
    rotate: float = 0.0  # degrees, uniform in [-rotate, rotate]
    shear: float = 0.0  # degrees, uniform in [-shear, shear] (x axis)
    translate: float = 0.0  # fraction of the size, uniform in [-translate, translate]
    elastic: float = 0.0  # elastic warping magnitude alpha, pixels (sigma 5)
    grid: float = 0.0  # grid distortion limit (cell size change, fraction; 5x5 cells)
    color_shift: float = 0.0  # per-channel offsets in [0, 1] units, uniform in [-x, x]
    pca_std: float = 0.0  # AlexNet PCA lighting: std of alpha (the paper: 0.1)
    color_jitter: float = 0.0  # brightness, contrast and saturation factors in [1 - x, 1 + x]


PRESETS: dict[str, Augment] = {
    "none": Augment(),
    "digits": Augment(rotate=10.0, translate=0.1),  # no mirroring: a mirrored digit is another glyph
    "alexnet": Augment(base="crop", flip=True, pca_std=0.1),
    "vgg": Augment(base="scale_jitter", flip=True, pca_std=0.1),  # S in [256, 512]; RGB shift as AlexNet
    "inception": Augment(base="rrc", flip=True, color_jitter=0.4),
    "resnet": Augment(base="scale_jitter", jitter=(256 / 224, 480 / 224), flip=True, pca_std=0.1),
    "cifar": Augment(base="pad_crop", flip=True),
}
FULL_VIEW_BASES = ("resize", "pad_crop")  # evaluation sees the whole image for these (no crop_pct)


def _base_ops(aug: Augment, size: int, interp) -> list:
    """The geometric crop of the preset (see :class:`Augment`)."""
    if aug.base == "resize":
        return [Resize((size, size), interpolation=interp, antialias=True)]
    if aug.base == "crop":
        side = round(size * 256 / 224)
        return [Resize(side, interpolation=interp, antialias=True), T.CenterCrop(side), T.RandomCrop(size)]
    if aug.base == "rrc":
        return [
            RandomResizedCrop(size, scale=aug.scale, ratio=aug.ratio, interpolation=interp, antialias=True)
        ]
    if aug.base == "scale_jitter":
        sides = list(range(round(size * aug.jitter[0]), round(size * aug.jitter[1]) + 1))
        return [RandomShortestSize(sides, interpolation=interp, antialias=True), T.RandomCrop(size)]
    if aug.base == "pad_crop":
        return [
            Resize((size, size), interpolation=interp, antialias=True),
            T.RandomCrop(size, padding=aug.padding),
        ]
    raise CnnlabError(f"unknown crop base '{aug.base}'; use one of resize, crop, rrc, scale_jitter, pad_crop")


def _draft_size(aug: Augment, size: int) -> int:
    """The shortest side a training crop may need from the decoded image (for JPEG draft decoding)."""
    if aug.base == "rrc":
        return math.ceil(size / math.sqrt(aug.scale[0] * aug.ratio[0]))
    if aug.base == "scale_jitter":
        return round(size * aug.jitter[1])
    return round(size * 256 / 224) if aug.base == "crop" else size


def _photometric(aug: Augment, pca) -> list:
    ops = []
    if aug.color_shift:
        ops.append(ColorShift(aug.color_shift))
    if aug.pca_std:
        if pca is None:
            raise CnnlabError("PCA colour augmentation needs the training set's PCA: pass pca=splits.pca "
                              "(or compute it with `cnnlab data stats`)")
        eigval, eigvec = (
            (pca.eigval, pca.eigvec) if hasattr(pca, "eigval") else (pca["eigval"], pca["eigvec"])
        )
        ops.append(PCALighting(eigval, eigvec, aug.pca_std))
    return ops


def train_transform(aug: Augment, size: int, mean, std, interpolation: str = "bilinear", pca=None) -> Compose:
    interp = INTERPOLATION[interpolation]
    ops = _base_ops(aug, size, interp)
    if aug.rotate or aug.shear or aug.translate:
        ops.append(
            T.RandomAffine(
                aug.rotate,
                translate=(aug.translate, aug.translate) if aug.translate else None,
                shear=aug.shear or None,
                interpolation=interp,
            )
        )
    if aug.elastic:
        ops.append(T.ElasticTransform(alpha=aug.elastic, sigma=5.0, interpolation=interp))
    if aug.flip:
        ops.append(T.RandomHorizontalFlip())
    ops.append(T.ToImage())
    if aug.grid:
        ops.append(GridDistortion(5, aug.grid))
    if aug.color_jitter:
        j = aug.color_jitter
        ops.append(T.ColorJitter(brightness=j, contrast=j, saturation=j))
    photometric = _photometric(aug, pca)
    if photometric:
        ops += [T.ToDtype(torch.float32, scale=True), *photometric, T.Normalize(list(mean), list(std))]
    else:
        ops.append(ToFloatNormalized(mean, std))
    transform = Compose(ops)
    transform.draft_size = _draft_size(aug, size)
    transform.accepts_tensor = True  # datasets may hand it uint8 tensors (cnnlab.data.jpeg)
    transform.fast_decode = True  # JPEGs with the fast IDCT: about 1 grey level of noise under augmentation
    return transform


def resolve_augment(preset: str | None, **options) -> Augment:
    """The preset's :class:`Augment` with ``options`` (its field names) replacing single fields."""
    name = (preset or "none").lower()
    if name not in PRESETS:
        raise CnnlabError(f"unknown augmentation preset '{preset}'; use one of {', '.join(PRESETS)}")
    unknown = sorted(set(options) - set(Augment.__dataclass_fields__))
    if unknown:
        raise CnnlabError(f"unknown augmentation option(s) {', '.join(unknown)}; "
                          f"known: {', '.join(Augment.__dataclass_fields__)}")
    aug = replace(PRESETS[name], **{k: v for k, v in options.items() if v is not None})
    check_augment(aug)
    return aug


# field -> (low, high) of the values that make sense (inclusive); see Augment for the units.
AUGMENT_RANGES = {
    "rotate": (0.0, 180.0),
    "shear": (0.0, 89.0),
    "translate": (0.0, 1.0),
    "elastic": (0.0, 1000.0),
    "grid": (0.0, 0.9),
    "color_shift": (0.0, 1.0),
    "pca_std": (0.0, 10.0),
    "color_jitter": (0.0, 1.0),
    "padding": (0, 1024),
}


def check_augment(aug: Augment) -> None:
    """A one-line error for an augmentation value outside what makes sense (NaN included)."""
    for key, (low, high) in AUGMENT_RANGES.items():
        value = getattr(aug, key)
        if not (isinstance(value, int | float) and math.isfinite(value) and low <= value <= high):
            raise CnnlabError(f"--aug {key}={value} must be between {low:g} and {high:g} "
                              f"(see `cnnlab data preview` for what each option does)")
    pairs = {"scale": (1e-6, 1.0), "ratio": (1e-3, 1e3), "jitter": (1.0, 16.0)}
    for key, (low, high) in pairs.items():
        value = getattr(aug, key)
        if not (
            len(value) == 2
            and all(math.isfinite(v) and low <= v <= high for v in value)
            and value[0] <= value[1]
        ):
            raise CnnlabError(f"--aug {key}={','.join(map(str, value))} must be two numbers LOW,HIGH with "
                              f"{low:g} <= LOW <= HIGH <= {high:g}")


BOOL_WORDS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


def parse_aug_options(items: list[str] | None) -> dict:
    """``["rotate=15", "flip=true", "scale=0.2,1"]`` -> typed :class:`~cnnlab.data.Augment` fields."""
    out = {}
    types = {f.name: f.type for f in Augment.__dataclass_fields__.values()}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in types:
            raise CnnlabError(f"bad --aug '{item}'; write NAME=VALUE with NAME one of {', '.join(types)}")
        kind = str(types[key])
        try:
            if kind == "bool":
                text = value.strip().lower()
                if text not in BOOL_WORDS:
                    raise ValueError
                out[key] = BOOL_WORDS[text]
            elif kind.startswith("tuple"):
                out[key] = tuple(float(v) for v in value.split(","))
            else:
                out[key] = {"int": int, "str": str}.get(kind, float)(value)
        except ValueError:
            hint = " (true or false)" if kind == "bool" else ""
            raise CnnlabError(f"bad value in --aug '{item}'; {key} takes a {kind}{hint}") from None
    return out


def build_transform(preset: str | None, *, train: bool, input_size: int | Sequence[int], mean, std,
                    interpolation: str = "bilinear", crop_pct: float = 0.875, pca=None, **options):
    """An image (PIL or uint8 tensor) -> normalised float tensor ``(C, size, size)``.

    ``train=True``: the preset's augmentations (see :data:`PRESETS`, :class:`Augment`) with
    ``options`` overriding fields. ``train=False``: :func:`eval_transform` with the crop fraction of
    :func:`eval_crop_pct` (presets that train on the whole image, none/digits/cifar, evaluate on the
    whole image).
    ``pca``: the training set's RGB PCA (``splits.pca``), needed by presets with ``pca_std``.
    """
    size = input_size if isinstance(input_size, int) else int(input_size[-1])
    if interpolation not in INTERPOLATION:
        raise CnnlabError(f"unknown interpolation '{interpolation}'; use one of {', '.join(INTERPOLATION)}")
    aug = resolve_augment(preset, **options)
    if train:
        return train_transform(aug, size, mean, std, interpolation, pca)
    pct = eval_crop_pct(preset, crop_pct, **options)
    return eval_transform(_EvalConfig((len(mean), size, size), tuple(mean), tuple(std), interpolation, pct))


@dataclass(frozen=True)
class _EvalConfig:  # the DataConfig fields eval_transform reads (the data layer never imports models)
    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str
    crop_pct: float
