"""Writing matplotlib figures: the one place every picture of cnnlab is saved.

The format follows the file's suffix (PNG, PDF, SVG, JPEG); the write is atomic (a reader never sees
half a picture) and the figure is closed. :func:`check_picture_path` refuses a path that cannot work
(a folder, an unwritable place, a suffix matplotlib cannot write) before any work is done.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed; set before pyplot is imported anywhere
import matplotlib.pyplot as plt  # noqa: E402

from ..errors import CnnlabError  # noqa: E402
from .io import atomic_path, check_output_file  # noqa: E402

PICTURE_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg", ".jpg": "jpg", ".jpeg": "jpg"}


def check_picture_path(path: str | os.PathLike, flag: str = "-o") -> Path:
    target = check_output_file(path, flag)
    if target.suffix.lower() not in PICTURE_FORMATS:
        raise CnnlabError(f"{flag} {target}: pictures are written as {', '.join(PICTURE_FORMATS)}; "
                          f"give a file name such as {target.with_suffix('.png').name}")
    return target


def save_figure(fig, path: str | os.PathLike, dpi: int = 110, tight: bool = True) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix, PNG when it has none) and close it."""
    target = Path(path)
    fmt = PICTURE_FORMATS.get(target.suffix.lower(), "png")
    try:
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight" if tight else None)
    finally:
        plt.close(fig)
    return target
