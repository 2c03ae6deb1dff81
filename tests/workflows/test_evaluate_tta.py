"""Test-time views (cnnlab.data.tta) against crops cut by hand: positions, mirrors, scales, order."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import v2 as T
from torchvision.transforms.v2 import functional as TF

from cnnlab.data.transforms import build_transform, eval_transform
from cnnlab.data.tta import TestTimeViews, tta_transform
from cnnlab.errors import CnnlabError
from cnnlab.models.base import DataConfig

MEAN, STD = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)


def _cfg(size: int, crop_pct: float) -> DataConfig:
    return DataConfig((3, size, size), MEAN, STD, "bilinear", crop_pct)


def _by_hand(image: torch.Tensor, side: int, boxes, flip: bool = False) -> list[torch.Tensor]:
    """Resize the shorter side to ``side``, cut each (top, left, h, w) box, maybe mirror it, normalise."""
    resized = T.Resize(side, antialias=True)(image)
    out = []
    for top, left, h, w in boxes:
        crop = resized[:, top:top + h, left:left + w]
        crop = TF.horizontal_flip(crop) if flip else crop
        out.append(TF.normalize(crop.float() / 255, list(MEAN), list(STD)))
    return out


def test_ten_crop_is_corners_centre_and_mirrors_pixel_for_pixel():
    image = torch.randint(0, 256, (3, 50, 60), dtype=torch.uint8)
    views = tta_transform(_cfg(32, 0.8), "10crop")(image)  # side floor(32 / 0.8) = 40: a 40 x 48 image
    assert views.shape == (10, 3, 32, 32)
    # corners and centre of the resized 40 x 48 image: (top, left, h, w)
    tl, tr, bl, br, c = (0, 0, 32, 32), (0, 16, 32, 32), (8, 0, 32, 32), (8, 16, 32, 32), (4, 8, 32, 32)
    expected = _by_hand(image, 40, [tl, tr, bl, br, c])
    # the second five are the five crops of the mirrored image: mirror(tr), mirror(tl), mirror(br), ...
    expected += _by_hand(image, 40, [tr, tl, br, bl, c], flip=True)
    for i, (view, want) in enumerate(zip(views, expected)):
        torch.testing.assert_close(view, want, rtol=0, atol=1e-6, msg=f"view {i}")
    assert not torch.equal(views[0], views[1]) and not torch.equal(views[0], views[5])
    # the centre view is the model's single-view evaluation image
    torch.testing.assert_close(views[4], eval_transform(_cfg(32, 0.8))(image), rtol=0, atol=1e-6)


def test_flip_and_none_are_the_single_view_image_bitwise():
    image = torch.randint(0, 256, (1, 37, 45), dtype=torch.uint8)
    base = build_transform("none", train=False, input_size=32, mean=(0.3,), std=(0.2,), crop_pct=0.875)
    single = base(image)
    none, flip = TestTimeViews(base, "none")(image), TestTimeViews(base, "flip")(image)
    assert none.shape == (1, 1, 32, 32) and flip.shape == (2, 1, 32, 32)
    assert torch.equal(none[0], single) and torch.equal(flip[0], single)
    assert torch.equal(flip[1], single.flip(-1))


def test_multiscale_views_shapes_scales_and_content():
    image = torch.randint(0, 256, (3, 90, 120), dtype=torch.uint8)
    views = tta_transform(_cfg(64, 0.875), "multiscale")
    assert views.scales == (73, 110, 146)  # 64 x (256, 384, 512) / 224
    out = views(image)
    assert out.shape == (6, 3, 64, 64) and views.num_views == 6
    for k, q in enumerate(views.scales):  # scale-major: centre crop then its mirror at each Q
        h, w = T.Resize(q, antialias=True)(image).shape[-2:]
        box = (int(round((h - 64) / 2.0)), int(round((w - 64) / 2.0)), 64, 64)  # torchvision's centre
        assert h == q and w > q
        want = _by_hand(image, q, [box])[0]
        torch.testing.assert_close(out[2 * k], want, rtol=0, atol=1e-6)
        assert torch.equal(out[2 * k + 1], out[2 * k].flip(-1))
    custom = tta_transform(_cfg(64, 0.875), "10crop", scales=[64, 80])
    assert custom(image).shape == (20, 3, 64, 64)


def test_ten_crop_of_a_whole_image_model_uses_alexnets_side_and_errors_are_one_line():
    whole = tta_transform(_cfg(32, 1.0), "10crop")
    assert whole.scales == (37,)  # round(32 x 256 / 224): crops of a 32 side would all be the same image
    with pytest.raises(CnnlabError, match="scale 20 is smaller than the 32-pixel crop"):
        tta_transform(_cfg(32, 1.0), "flip", scales=[40, 20])
    with pytest.raises(CnnlabError, match="unknown test-time augmentation 'five'"):
        tta_transform(_cfg(32, 1.0), "five")


def test_five_crop_is_the_first_half_of_ten_crop():
    image = torch.randint(0, 256, (3, 41, 52), dtype=torch.uint8)
    five, ten = tta_transform(_cfg(32, 1.0), "5crop"), tta_transform(_cfg(32, 1.0), "10crop")
    assert five.scales == ten.scales == (37,) and five.num_views == 5
    assert torch.equal(five(image), ten(image)[:5])
