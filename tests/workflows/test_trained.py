"""One way to load a trained model (cnnlab.workflows.trained.load_trained, create_model with weights):
the class count, names and preprocessing come from the weights; predict and evaluate build on it."""

from __future__ import annotations

import csv
import json
import os
import struct
import subprocess
import sys
import zlib

import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab.cli.main import main
from cnnlab.data.transforms import eval_transform
from cnnlab.weights import read_checkpoint, save_weights


def _digit_png(path, value: int = 0):
    x, _ = cnnlab.data.open_dataset("digits", in_chans=1).val[value]
    Image.fromarray(x[0].numpy(), mode="L").save(path)
    return path


def test_a_run_folder_brings_its_classes_channels_and_preprocessing(digits_run):
    model = cnnlab.create_model("lenet5", weights=str(digits_run))
    sd, meta = read_checkpoint(digits_run / "best.safetensors")
    assert model.num_classes == 10 and model.class_names == tuple(json.loads(meta["classes"]))
    pre = json.loads(meta["preprocessing"])
    assert model.default_cfg.to_dict() == {**pre, "input_size": tuple(pre["input_size"]),
                                          "mean": tuple(pre["mean"]), "std": tuple(pre["std"])}
    assert pre["crop_pct"] == 1.0 and pre["input_size"] == [1, 32, 32]  # digits are seen whole
    for k, v in model.state_dict().items():
        assert torch.equal(v, sd[k]), k  # the trained head too, not re-initialised
    trained = cnnlab.load_trained(weights=str(digits_run))  # the run names its model
    assert trained.name == "lenet5" and trained.classes == [str(i) for i in range(10)]
    assert trained.transform().transforms[-1].mean == tuple(pre["mean"])


def test_a_plain_state_dict_gives_its_class_count_and_channels(tmp_path):
    net = cnnlab.create_model("lenet5", num_classes=7, in_chans=1)
    torch.save(net.state_dict(), tmp_path / "lenet.pth")
    loaded = cnnlab.create_model("lenet5", weights=str(tmp_path / "lenet.pth"))
    assert loaded.num_classes == 7 and loaded.default_cfg.input_size[0] == 1 and loaded.class_names is None
    (pred,) = cnnlab.predict("lenet5", [_digit_png(tmp_path / "d.png")], weights=str(tmp_path / "lenet.pth"))
    assert pred.error is None and {t.name for t in pred.top} <= {f"class_{i}" for i in range(7)}


def test_non_finite_weights_are_refused(tmp_path):
    net = cnnlab.create_model("lenet5_relu", num_classes=10, in_chans=1)
    with torch.no_grad():
        net.fc.weight[0, 0] = float("nan")
    save_weights(net, tmp_path / "nan.safetensors")
    with pytest.raises(cnnlab.CnnlabError, match="holds NaN or infinite values in 1 tensor"):
        cnnlab.create_model("lenet5_relu", weights=str(tmp_path / "nan.safetensors"))


def test_predict_a_run_folder_a_folder_of_images_into_a_csv(digits_run, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        _digit_png(images / f"{i}.png", i)
    (images / "notes.txt").write_text("not an image")
    out = tmp_path / "p.csv"
    assert main(["predict", str(digits_run), str(images), "--topk", "2", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [os.path.basename(r["file"]) for r in rows] == ["0.png", "1.png", "2.png"]
    direct = cnnlab.predict("lenet5", [str(images / "0.png")], weights=str(digits_run), topk=2)[0]
    assert rows[0]["class_1"] == direct.top[0].name and float(rows[0]["prob_1"]) == pytest.approx(
        direct.top[0].prob, abs=1e-6
    )
    # the probabilities are the model's own on the run's preprocessing
    trained = cnnlab.load_trained(weights=str(digits_run))
    x = trained.transform()(Image.open(images / "0.png").convert("L")).unsqueeze(0)
    with torch.no_grad():
        p = torch.softmax(trained.model(x), 1)[0]
    assert direct.top[0].prob == pytest.approx(float(p.max()), rel=1e-5)


def _png_header_only(path, width: int, height: int):
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb if it were decoded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))
    return path


def test_predict_never_hangs_on_a_fifo_and_refuses_bombs_as_datasets_do(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    bomb = _png_header_only(tmp_path / "bomb.png", 10_000, 10_000)  # 100 megapixels
    good = _digit_png(tmp_path / "ok.png")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "cnnlab", "predict", "lenet5", str(fifo), str(bomb), str(good)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 1, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("cnnlab: error")]
    assert len(errors) == 2 and "pipe.jpg: not a regular file" in errors[0]
    assert "bomb.png: refused as a decompression bomb" in errors[1]
    assert "ok.png" in proc.stdout
    from cnnlab.data.images import BadImage, load_image

    with pytest.raises(BadImage, match="decompression bomb"):  # the dataset path says the same
        load_image(str(bomb))
    from cnnlab.workflows.visualize import visualize_cam

    with pytest.raises(cnnlab.CnnlabError, match="decompression bomb"):
        visualize_cam("lenet5_relu", str(bomb), out=str(tmp_path / "c.png"))


def test_evaluate_writes_the_misclassified_images(digits_run, tmp_path):
    out = tmp_path / "wrong.csv"
    result = cnnlab.evaluate(f"lenet5:{digits_run}", "digits", misclassified=str(out), keep_probs=True)
    rows = list(csv.DictReader(out.open()))
    line = result.members[0]
    wrong = int((line.probs.argmax(1) != line.targets).sum())
    assert len(rows) == wrong == round(line.count * (100 - line.top1) / 100)
    assert all(r["true"] != r["predicted"] for r in rows)
    assert [float(r["p_predicted"]) for r in rows] == sorted(
        (float(r["p_predicted"]) for r in rows), reverse=True
    )
    assert rows[0]["file"].startswith("item ")  # in-memory digits have no files


def test_evaluate_a_checkpoint_with_fewer_classes_than_the_data(tmp_path, capsys):
    torch.save(cnnlab.create_model("lenet5", num_classes=4, in_chans=1).state_dict(), tmp_path / "four.pth")
    assert main(["evaluate", f"lenet5:{tmp_path / 'four.pth'}", "--data", "digits"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has 4 outputs but the data has 10 classes" in err[0], err


def test_finetune_lenet5_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--epochs", "1", "--no-progress", "--out", "runs", "--name", "src"]) == 0
    for c in ("a", "b"):
        (tmp_path / "d" / c).mkdir(parents=True)
        for i in range(4):
            _digit_png(tmp_path / "d" / c / f"{i}.png", i + (4 if c == "b" else 0))
    assert (
        main(
            [
                "finetune",
                "--model",
                "lenet5",
                "--weights",
                "runs/src",
                "--data",
                "d",
                "--val-split",
                "0.5",
                "--epochs",
                "1",
                "--out",
                "runs",
                "--name",
                "ft",
                "--no-progress",
                "--batch-size",
                "2",
            ]
        )
        == 0
    )
    ft = cnnlab.load_trained(weights="runs/ft")
    assert (
        ft.classes == ["a", "b"] and ft.preprocessing == cnnlab.load_trained(weights="runs/src").preprocessing
    )
    config = json.loads((tmp_path / "runs" / "ft" / "config.json").read_text())
    assert config["cache"] is False and config["in_chans"] == 1  # no head parameters to cache for


def test_help_lists_the_workflows_and_their_settings():
    import pydoc

    text = pydoc.render_doc(cnnlab, renderer=pydoc.plaintext)
    for name in (
        "cnnlab.train",
        "cnnlab.finetune",
        "cnnlab.evaluate",
        "cnnlab.predict",
        "cnnlab.load_trained",
    ):
        assert name in text
    train_help = pydoc.render_doc(cnnlab.train, renderer=pydoc.plaintext)
    assert (
        "lr = 0.001  # peak learning rate" in train_help
        and "resume = None  # a run folder to continue" in train_help
    )
    assert callable(cnnlab.analysis.profile) and callable(cnnlab.transfer.freeze_stages)


def test_eval_transform_is_the_one_preprocessing():
    from cnnlab.data import build_transform

    cfg = cnnlab.create_model("resnet18").default_cfg
    a = eval_transform(cfg)
    b = build_transform("inception", train=False, input_size=224, mean=cfg.mean, std=cfg.std,
                        interpolation=cfg.interpolation, crop_pct=cfg.crop_pct)
    img = Image.new("RGB", (300, 250), (10, 200, 30))
    assert torch.equal(a(img), b(img))
