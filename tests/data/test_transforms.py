"""Augmentations: shapes, value ranges, determinism under a seed, and PCA against NumPy."""

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from cnnlab.data import PRESETS, build_transform, eval_transform, make_loader, open_dataset
from cnnlab.data.augment import GridDistortion, PCALighting, ToFloatNormalized
from cnnlab.data.stats import tensor_stats
from cnnlab.errors import CnnlabError
from cnnlab.models.base import DataConfig

from .conftest import photo

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
PCA_FIXED = {
    "eigval": [0.2, 0.02, 0.005],
    "eigvec": np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0],
}


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("source", ["pil", "tensor"])
def test_presets_give_normalised_crops(preset, source):
    torch.manual_seed(0)
    im = photo(90, 70)
    if source == "tensor":
        im = tv_tensors.Image(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1))
    for train in (True, False):
        t = build_transform(preset, train=train, input_size=64, mean=MEAN, std=STD, pca=PCA_FIXED)
        out = t(im)
        assert out.shape == (3, 64, 64) and out.dtype == torch.float32, (preset, train)
        # [0, 1] pixels normalised by these mean/std stay within [-2.5, 5] (plus colour offsets)
        assert -4.0 < out.min() and out.max() < 6.0, (preset, train)


def test_options_override_presets_and_unknown_ones_are_errors():
    t = build_transform(
        "cifar",
        train=True,
        input_size=32,
        mean=MEAN,
        std=STD,
        rotate=15,
        grid=0.3,
        elastic=20.0,
        color_shift=0.1,
        shear=10,
    )
    names = [type(op).__name__ for op in t.transforms]
    for name in (
        "RandomCrop",
        "RandomAffine",
        "ElasticTransform",
        "GridDistortion",
        "ColorShift",
        "Normalize",
    ):
        assert name in names
    with pytest.raises(CnnlabError, match="unknown augmentation option"):
        build_transform("cifar", train=True, input_size=32, mean=MEAN, std=STD, spin=1)
    with pytest.raises(CnnlabError, match="unknown augmentation preset"):
        build_transform("imagenet21k", train=True, input_size=32, mean=MEAN, std=STD)
    with pytest.raises(CnnlabError, match="needs the training set's PCA"):
        build_transform("alexnet", train=True, input_size=32, mean=MEAN, std=STD)


def test_vgg_scale_jitter_draws_the_shorter_side_in_range():
    t = build_transform("vgg", train=True, input_size=224, mean=MEAN, std=STD, pca=PCA_FIXED)
    jitter = t.transforms[0]
    torch.manual_seed(0)
    sides = {min(jitter(photo(300, 200)).size) for _ in range(30)}
    assert min(sides) >= 256 and max(sides) <= 512 and len(sides) > 10


def test_eval_transform_is_unchanged():
    cfg = DataConfig(input_size=(3, 48, 48), mean=MEAN, std=STD, crop_pct=0.875)
    a = eval_transform(cfg)(photo(90, 70))
    b = build_transform("resnet", train=False, input_size=48, mean=MEAN, std=STD)(photo(90, 70))
    assert a.shape == (3, 48, 48)
    assert (a - b).abs().mean() < 0.01  # same geometry; PIL vs tensor resizing round differently


def test_to_float_normalized_matches_torchvision_steps():
    x = torch.randint(0, 256, (3, 5, 7), dtype=torch.uint8)
    expected = (x.float() / 255 - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)
    assert torch.allclose(ToFloatNormalized(MEAN, STD)(x), expected, atol=1e-5)


def test_pca_statistics_match_numpy():
    images = torch.from_numpy(np.array(photo(50, 40, seed=3))).permute(2, 0, 1).unsqueeze(0)
    images = torch.cat([images, images.flip(-1) // 2])
    stats = tensor_stats(images)
    pixels = images.permute(0, 2, 3, 1).reshape(-1, 3).numpy() / 255.0
    cov = np.cov(pixels, rowvar=False)
    val, vec = np.linalg.eigh(cov)
    np.testing.assert_allclose(stats.pca.eigval, val[::-1], rtol=1e-4, atol=1e-6)
    for i in range(3):  # same eigenvectors up to sign
        assert abs(abs(np.dot(np.array(stats.pca.eigvec)[:, i], vec[:, 2 - i])) - 1) < 1e-4
    np.testing.assert_allclose(stats.mean, pixels.mean(0), atol=1e-5)
    np.testing.assert_allclose(stats.std, pixels.std(0, ddof=1), atol=1e-5)


def test_pca_lighting_adds_the_direct_offset():
    light = PCALighting(PCA_FIXED["eigval"], PCA_FIXED["eigvec"], std=0.1)
    x = torch.rand(3, 4, 4)
    torch.manual_seed(5)
    out = light(x.clone())
    torch.manual_seed(5)
    alpha = torch.randn(3).numpy() * 0.1
    expected = PCA_FIXED["eigvec"] @ (alpha * np.array(PCA_FIXED["eigval"]))
    shift = (out - x).numpy()
    np.testing.assert_allclose(shift, np.broadcast_to(expected[:, None, None], shift.shape), atol=1e-6)


def test_grid_distortion_is_identity_without_distortion():
    x = torch.randint(0, 256, (3, 20, 30), dtype=torch.uint8)
    assert torch.equal(GridDistortion(5, 0.0)(x), x)
    torch.manual_seed(0)
    warped = GridDistortion(5, 0.5)(x)
    assert warped.shape == x.shape and warped.dtype == torch.uint8 and not torch.equal(warped, x)


def test_loader_augmentations_are_reproducible_under_a_seed():
    splits = open_dataset("digits")
    splits.train.transform = build_transform("digits", train=True, input_size=32, mean=splits.mean,
                                             std=splits.std, grid=0.2, color_shift=0.1)

    def first_batch(seed, workers):
        torch.manual_seed(seed)  # with workers=0 augmentations draw from the global generator
        loader = make_loader(splits.train, batch_size=16, shuffle=True, workers=workers, seed=seed)
        return next(iter(loader))

    a, b, c = first_batch(7, 0), first_batch(7, 0), first_batch(8, 0)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    w1, w2 = first_batch(7, 2), first_batch(7, 2)
    assert torch.equal(w1[0], w2[0])


def test_fast_compose_and_resize_match_plain_v2():
    from torchvision.transforms import v2 as T

    from cnnlab.data.augment import Compose, RandomResizedCrop

    x = tv_tensors.Image(torch.from_numpy(np.array(photo(120, 90))).permute(2, 0, 1).contiguous())
    ours = Compose([RandomResizedCrop(48, antialias=True), T.RandomHorizontalFlip(), T.ToImage()])
    theirs = T.Compose([T.RandomResizedCrop(48, antialias=True), T.RandomHorizontalFlip(), T.ToImage()])
    torch.manual_seed(0)
    params = ours.transforms[0].make_params([x])
    a = ours.transforms[0].transform(x, params)
    b = T.functional.resized_crop(x, **params, size=[48, 48], antialias=True)
    assert a.shape == b.shape == (3, 48, 48) and (a.int() - b.int()).abs().max() <= 1
    torch.manual_seed(1)
    out = ours(x)
    assert isinstance(out, tv_tensors.Image) and out.shape == (3, 48, 48)
    assert theirs(x).shape == out.shape


