"""Image files made on the spot: good ones of every mode, and every kind of broken one."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def photo(w: int = 40, h: int = 30, seed: int = 0) -> Image.Image:
    """A smooth random RGB picture (compresses like a photo, not like noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((w, h), Image.BILINEAR)


def save(im: Image.Image, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, **kw)
    return path


def make_truncated(path: Path, seed: int = 0) -> Path:
    buf = io.BytesIO()
    photo(200, 150, seed).save(buf, "JPEG", quality=95)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


def make_exif_rotated(path: Path) -> Path:
    """A 40x20 (landscape) JPEG whose EXIF orientation 6 says: show it rotated 90 degrees clockwise."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return save(photo(40, 20), path, exif=exif.tobytes())


def make_odd_modes(folder: Path) -> dict[str, Path]:
    """One file per unusual mode, named by mode."""
    rgb = photo(32, 24)
    arr16 = (np.linspace(0, 65535, 32 * 24).reshape(24, 32)).astype(np.uint16)
    palette = rgb.convert("P", palette=Image.ADAPTIVE, colors=16)
    palette.info["transparency"] = 0
    rgba = rgb.convert("RGBA")
    rgba.putalpha(128)
    return {
        "L": save(rgb.convert("L"), folder / "gray.png"),
        "CMYK": save(rgb.convert("CMYK"), folder / "cmyk.jpg"),
        "I;16": save(Image.fromarray(arr16), folder / "deep.png"),
        "P": save(palette, folder / "palette.png", transparency=0),
        "RGBA": save(rgba, folder / "alpha.png"),
    }


@pytest.fixture()
def class_folder(tmp_path) -> Path:
    """tmp/<class>/*.jpg: three classes of 6 good JPEGs each (seeded)."""
    root = tmp_path / "imgs"
    for c, name in enumerate(["cat", "dog", "eel"]):
        for i in range(6):
            save(photo(40 + i, 30, seed=10 * c + i), root / name / f"{i}.jpg", quality=90)
    return root


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Splits and statistics go to a temporary cache, never to the user's home."""
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))


def pytest_collection_modifyitems(items):
    """torchvision 0.29 warns on every image-io call (deprecated for TorchCodec); cnnlab filters it at
    import, but pytest resets warning filters per test."""
    here = str(Path(__file__).parent)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.filterwarnings("ignore::DeprecationWarning:torchvision.io.image"))
