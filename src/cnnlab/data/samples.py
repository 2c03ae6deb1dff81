"""``cnnlab data samples DIR``: files to try every command on, made from data that ships with the
dependencies (no download):

* ``photos/china.jpg``, ``photos/flower.jpg`` - scikit-learn's two sample photographs (427x640 RGB);
* ``digits/<0..9>/*.png`` - an image folder of the built-in handwritten digits (32x32 grayscale,
  ``per_class`` images per class), the layout ``--data FOLDER`` reads;
* ``digit.png`` - one digit (a 7) to classify.

Every file is written atomically; an existing file is left as it is (the command can be rerun).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image

from ..utils.io import atomic_write, check_output_dir

PHOTOS = ("china.jpg", "flower.jpg")


def _save(image: Image.Image, path: Path, **options) -> bool:
    if path.exists():
        return False
    buf = io.BytesIO()
    image.save(buf, format="JPEG" if path.suffix == ".jpg" else "PNG", **options)
    with atomic_write(path, "wb") as fh:
        fh.write(buf.getvalue())
    return True


def write_samples(root: str | os.PathLike, per_class: int = 30) -> dict[str, int]:
    """Write the sample files under ``root`` (see the module docstring); returns counts written per part."""
    from sklearn.datasets import load_sample_image

    from .arrays import read_digits

    root = check_output_dir(root, "samples folder")
    counts = {"photos": 0, "digits": 0, "digit": 0}
    for name in PHOTOS:
        counts["photos"] += _save(
            Image.fromarray(load_sample_image(name)), root / "photos" / name, quality=95
        )
    x, y, classes = read_digits()
    taken = {c: 0 for c in range(len(classes))}
    for i, label in enumerate(y):
        if taken[label] < per_class:
            counts["digits"] += _save(Image.fromarray(x[i, 0].numpy(), "L"),
                                      root / "digits" / classes[label] / f"{i:04d}.png")
            taken[label] += 1
    seven = next(
        i for i, label in enumerate(y) if classes[label] == "7" and i > 1000
    )  # not among the folder's
    counts["digit"] += _save(Image.fromarray(x[seven, 0].numpy(), "L"), root / "digit.png")
    return counts
