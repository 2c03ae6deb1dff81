"""Reading files: detection of broken ones and consistent conversion of every mode."""

import numpy as np
import pytest
from PIL import Image

from cnnlab.data.images import BadImage, exif_orientation, load_image, open_image

from .conftest import make_exif_rotated, make_odd_modes, make_truncated, photo, save


def test_every_mode_becomes_rgb_or_l(tmp_path):
    for mode, path in make_odd_modes(tmp_path).items():
        assert Image.open(path).mode.startswith(mode[:1]), mode
        rgb = load_image(path, "RGB")
        gray = load_image(path, "L")
        assert (rgb.mode, rgb.size) == ("RGB", (32, 24)), mode
        assert (gray.mode, gray.size) == ("L", (32, 24)), mode


def test_16_bit_is_scaled_not_clipped(tmp_path):
    path = make_odd_modes(tmp_path)["I;16"]
    arr = np.asarray(load_image(path, "L"))
    assert arr.min() == 0 and arr.max() == 255
    assert 100 < arr.mean() < 155  # a linear ramp over the full range, not a wall of 255s


def test_transparency_is_composited_on_white(tmp_path):
    im = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent red
    arr = np.asarray(load_image(save(im, tmp_path / "t.png"), "RGB"))
    assert (arr == 255).all()


def test_exif_orientation_is_applied(tmp_path):
    path = make_exif_rotated(tmp_path / "rot.jpg")
    assert exif_orientation(Image.open(path)) == 6
    assert Image.open(path).size == (40, 20)
    assert load_image(path).size == (20, 40)


@pytest.mark.parametrize("kind", ["empty", "text", "truncated"])
def test_broken_files_raise_bad_image(tmp_path, kind):
    path = tmp_path / f"{kind}.jpg"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("not a picture\n")
    else:
        make_truncated(path)
    with pytest.raises(BadImage) as info:
        load_image(path)
    assert {"empty": "empty", "text": "not an image", "truncated": "truncated"}[kind] in info.value.reason


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    path = save(photo(100, 100), tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 10,000 pixels > 2 x the limit
    with pytest.raises(BadImage, match="decompression bomb"):
        open_image(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6000)  # above the limit, below 2x: PIL only warns
    with pytest.raises(BadImage, match="decompression bomb"):
        open_image(path)


def test_draft_decodes_big_jpegs_smaller_but_large_enough(tmp_path):
    path = save(photo(800, 600), tmp_path / "big.jpg", quality=90)
    im = load_image(path, draft=200)
    assert min(im.size) >= 200 and im.size[0] < 800
    assert load_image(path, draft=400).size == (800, 600)
