"""Reading one image file the same way everywhere: checked, EXIF-oriented, converted to RGB or L.

* EXIF orientation (tag 0x0112) is applied, so a phone photo stored sideways is seen upright.
* Every mode is converted consistently: CMYK/YCbCr/LAB/HSV -> RGB; palette and alpha images are
  composited onto white (a transparent background is white, as a viewer shows it); 16-bit and 32-bit
  integer images are scaled to 8 bits (not clipped); float images are clipped to [0, 1] * 255.
  ``mode="L"`` (1-channel models) converts the RGB result to luma.
* Images above :data:`MAX_PIXELS` pixels are refused as decompression bombs: PIL's own warning is
  turned into an error, with a message naming the file and the size.
* A file that cannot be read raises :class:`BadImage` with a short reason; datasets catch it, skip
  the file and name it in their report.
"""

from __future__ import annotations

import io
import os
import warnings

import numpy as np
from PIL import Image, ImageFile

MAX_PIXELS = 89_478_485  # PIL's default bomb limit: 0.25 GiB of RGB (about 9,459 x 9,459)
ORIENTATION_TAG = 0x0112
# PIL transpose operations for EXIF orientations 2..8 (1 = upright).
EXIF_TRANSPOSE = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
HIGH_DEPTH = ("I;16", "I;16B", "I;16L", "I;16N", "I")
UNUSUAL_MODES = {"L": "grayscale", "LA": "grayscale+alpha", "RGBA": "alpha channel", "CMYK": "CMYK",
                 "P": "palette", "1": "1-bit", "I;16": "16-bit", "I;16B": "16-bit", "I;16L": "16-bit",
                 "I": "32-bit integer", "F": "32-bit float", "YCbCr": "YCbCr", "LAB": "LAB", "HSV": "HSV"}

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, not a grey bottom half
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class BadImage(Exception):
    """A file that is not a readable image; ``reason`` is a short phrase for reports."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def open_image(path: str | os.PathLike, data: bytes | None = None) -> Image.Image:
    """Open (header only, lazily) with bad files and decompression bombs turned into :class:`BadImage`.
    ``data``: the file's bytes, when the caller has read them already."""
    path = os.fspath(path)
    try:
        if (len(data) if data is not None else os.path.getsize(path)) == 0:
            raise BadImage(path, "empty file")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path if data is None else io.BytesIO(data))
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage(path, f"refused as a decompression bomb (over {MAX_PIXELS:,} pixels): {exc}") from None
    except Image.UnidentifiedImageError:
        raise BadImage(path, "not an image (unidentified format)") from None
    except OSError as exc:
        raise BadImage(path, _reason(exc, "unreadable")) from None


def _reason(exc: Exception, default: str) -> str:
    return f"{'truncated' if 'truncated' in str(exc).lower() else default}: {exc}"


def decode(im: Image.Image, path: str = "") -> Image.Image:
    """Fully decode ``im``; truncated or corrupt data raises :class:`BadImage`."""
    try:
        im.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadImage(path or getattr(im, "filename", "?"), _reason(exc, "corrupt")) from None
    return im


def exif_orientation(im: Image.Image) -> int:
    """The EXIF orientation tag (1 = upright; 1 when absent or unreadable)."""
    try:
        return int(im.getexif().get(ORIENTATION_TAG, 1) or 1)
    except Exception:  # malformed EXIF blocks are common and must not make a file unreadable
        return 1


def apply_orientation(im: Image.Image, orientation: int) -> Image.Image:
    for op in EXIF_TRANSPOSE.get(orientation, ()):
        im = im.transpose(op)
    return im


def _flatten_alpha(im: Image.Image) -> Image.Image:
    rgba = im.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _to_8bit(im: Image.Image) -> Image.Image:
    arr = np.asarray(im)
    if im.mode == "F":
        arr = np.clip(arr, 0.0, 1.0) * 255.0 + 0.5
    else:
        top = 65535 if im.mode.startswith("I;16") or arr.max(initial=0) <= 65535 else int(arr.max())
        arr = arr.astype(np.float64) * (255.0 / max(top, 1)) + 0.5
    return Image.fromarray(arr.astype(np.uint8), "L")


def to_mode(im: Image.Image, mode: str = "RGB") -> Image.Image:
    """Convert any PIL mode to ``mode`` ("RGB" or "L") consistently (see the module docstring)."""
    if im.mode == mode:
        return im
    if im.mode in HIGH_DEPTH or im.mode == "F":
        im = _to_8bit(im)
    elif im.mode in ALPHA_MODES or (im.mode == "P" and "transparency" in im.info):
        im = _flatten_alpha(im)
    if im.mode != mode:
        im = im.convert("RGB") if im.mode not in ("RGB", "L") else im
        im = im.convert(mode) if im.mode != mode else im
    return im


def set_draft(im: Image.Image, short_side: int) -> None:
    """Let a JPEG decode at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, much cheaper than a full
    decode and a resize) while its shorter side stays at least ``short_side`` pixels."""
    if im.format != "JPEG" or im.mode not in ("RGB", "L"):
        return
    w, h = im.size
    scale = short_side / max(1, min(w, h))
    if scale < 0.5:
        im.draft(im.mode, (int(w * scale) + 1, int(h * scale) + 1))


def load_image(path: str | os.PathLike, mode: str = "RGB", draft: int | None = None) -> Image.Image:
    """Open, decode, orient and convert one file. ``draft``: a JPEG may be decoded at a reduced scale
    as long as its shorter side stays at least this many pixels (see :func:`set_draft`)."""
    path = os.fspath(path)
    im = open_image(path)
    orientation = exif_orientation(im)
    if draft:
        set_draft(im, draft)
    im = decode(im, path)
    return to_mode(apply_orientation(im, orientation), mode)


def read_image(image, mode: str = "RGB", label: str | None = None) -> Image.Image:
    """The one way a command reads a user's image: a path (through :func:`load_image`: checked, EXIF-
    oriented, bombs refused), a PIL image, or an H x W (x C) uint8 array, as a PIL image in ``mode``.
    A bad input is a one-line :class:`~cnnlab.errors.CnnlabError` naming it."""
    from ..errors import CnnlabError

    if isinstance(image, Image.Image):
        return to_mode(image, mode)
    if isinstance(image, np.ndarray):
        if (
            image.dtype != np.uint8
            or image.ndim not in (2, 3)
            or (image.ndim == 3 and image.shape[2] not in (1, 3, 4))
        ):
            raise CnnlabError(f"{label or 'image'}: arrays must be uint8 HxW or HxWxC (C = 1, 3 or 4), got "
                              f"{image.dtype} {image.shape}")
        return to_mode(
            Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image), mode
        )
    if not isinstance(image, str | os.PathLike):
        raise CnnlabError(f"{label or 'image'}: expected a file path, a PIL image or a uint8 array, got "
                          f"{type(image).__name__}")
    path = os.fspath(image)
    if not os.path.exists(path):
        raise CnnlabError(f"{label or path}: no such file")
    if not os.path.isfile(path):
        raise CnnlabError(f"{label or path}: not a regular file")
    try:
        return load_image(path, mode)
    except BadImage as exc:
        raise CnnlabError(f"{label or path}: {exc.reason[:160]}") from None
