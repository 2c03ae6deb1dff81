"""The JPEG fast path (cnnlab.data.jpeg) against PIL, the reference decoder."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from cnnlab.data import ImageFileDataset, build_transform
from cnnlab.data import jpeg as J
from cnnlab.data.images import BadImage, load_image

from .conftest import make_exif_rotated, make_truncated, photo, save

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def as_tensor(im: Image.Image) -> torch.Tensor:
    arr = np.array(im)
    return torch.from_numpy(arr[..., None] if arr.ndim == 2 else arr).permute(2, 0, 1)


def with_orientation(path, orientation: int, big_endian: bool = False):
    exif = Image.Exif()
    exif[0x010F] = "cnnlab test camera"  # an entry before the orientation: the IFD has to be walked
    exif[0x0112] = orientation
    if big_endian:
        exif.endian = ">"  # Motorola byte order ("MM"), as many cameras write it
    return save(photo(40, 24, seed=orientation), path, exif=exif.tobytes(), quality=95)


def test_jpeg_info_reads_size_components_and_orientation(tmp_path):
    for path, orientation in ((save(photo(41, 23), tmp_path / "a.jpg"), 1),
                              (make_exif_rotated(tmp_path / "r.jpg"), 6),
                              (save(photo(30, 20).convert("L"), tmp_path / "g.jpg"), 1),
                              (with_orientation(tmp_path / "m.jpg", 8, big_endian=True), 8)):
        im = Image.open(path)
        info = J.jpeg_info(path.read_bytes())
        assert info == (im.height, im.width, len(im.getbands()), orientation), path
        assert im.getexif().get(0x0112, 1) == orientation  # PIL reads the same tag (the MM rewrite is valid)
    assert J.jpeg_info(b"\x89PNG\r\n") is None and J.jpeg_info(b"") is None


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pil(tmp_path, orientation):
    path = with_orientation(tmp_path / f"o{orientation}.jpg", orientation)
    expected = as_tensor(ImageOps.exif_transpose(Image.open(path).convert("RGB")))
    ours = J.decode_jpeg_file(str(path))
    assert ours.shape == expected.shape and torch.equal(ours, expected)  # exact decode = PIL's pixels


def test_exact_decode_equals_pil_and_fast_decode_is_close(tmp_path):
    path = save(photo(96, 64), tmp_path / "a.jpg", quality=90)
    reference = as_tensor(load_image(path))
    assert torch.equal(J.decode_jpeg_file(str(path)), reference)
    fast = J.decode_jpeg_file(str(path), fast=True)
    diff = (fast.int() - reference.int()).abs().float()
    assert fast.shape == reference.shape and diff.mean() < 3
    gray = J.decode_jpeg_file(str(path), "L")
    assert (
        gray.shape == (1, 64, 96) and (gray.int() - as_tensor(load_image(path, "L")).int()).abs().max() <= 2
    )


def test_big_jpegs_are_shrunk_by_the_dct_but_stay_large_enough(tmp_path):
    path = save(photo(800, 600), tmp_path / "big.jpg", quality=90)
    assert J.decode_jpeg_file(str(path), draft=200).shape == (3, 300, 400)  # 1/2: shorter side >= 200
    assert J.decode_jpeg_file(str(path), draft=150).shape == (3, 150, 200)  # 1/4
    assert J.decode_jpeg_file(str(path), draft=290).shape == (3, 300, 400)  # never 5/8 etc. (slower)
    assert J.decode_jpeg_file(str(path), draft=400).shape == (3, 600, 800)


def test_what_the_fast_path_declines_or_refuses(tmp_path, monkeypatch):
    assert J.decode_jpeg_file(str(save(photo(), tmp_path / "p.png"))) is None  # PNG: the PIL path
    assert J.decode_jpeg_file(str(save(photo().convert("CMYK"), tmp_path / "c.jpg"))) is None
    with pytest.raises(BadImage, match="truncated"):
        J.decode_jpeg_file(str(make_truncated(tmp_path / "t.jpg")))
    path = save(photo(100, 100), tmp_path / "bomb.jpg")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)
    with pytest.raises(BadImage, match="decompression bomb"):
        J.decode_jpeg_file(str(path))


def test_torchvision_fallback_gives_the_same_pixels(tmp_path, monkeypatch):
    path = with_orientation(tmp_path / "o6.jpg", 6)
    with_simplejpeg = J.decode_jpeg_file(str(path))
    monkeypatch.setattr(J, "simplejpeg", None)
    assert torch.equal(J.decode_jpeg_file(str(path)), with_simplejpeg)
    assert J.decode_jpeg_file(str(path), "L").shape == (1, 40, 24)
    with pytest.raises(BadImage, match="truncated"):
        J.decode_jpeg_file(str(make_truncated(tmp_path / "t.jpg")))


def test_training_transforms_decode_fast_and_evaluation_exactly(tmp_path):
    path = save(photo(64, 48), tmp_path / "a.jpg", quality=90)
    train = build_transform("none", train=True, input_size=32, mean=MEAN, std=STD)
    evaluate = build_transform("none", train=False, input_size=32, mean=MEAN, std=STD)
    assert train.fast_decode and not getattr(evaluate, "fast_decode", False)
    loaded = ImageFileDataset([(str(path), 0)], ["a"], transform=evaluate).load(0)
    assert torch.equal(loaded, as_tensor(load_image(path)))
    assert ImageFileDataset([(str(path), 0)], ["a"], transform=train)[0][0].shape == (3, 32, 32)
