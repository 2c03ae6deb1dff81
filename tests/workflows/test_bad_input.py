"""Bad values are refused in one line, before anything is written, by the CLI and the Python API alike
(the checks live in the config classes: cnnlab.config, FitConfig/TrainConfig/EvaluateConfig.check)."""

from __future__ import annotations

import math

import pytest

import cnnlab
from cnnlab.cli.main import main

FAST = ["--epochs", "1", "--no-progress"]


@pytest.mark.parametrize("args, message", [
    (["--lr", "nan"], "--lr must be a number > 0, got nan"),
    (["--lr", "inf"], "--lr must be a number > 0, got inf"),
    (["--momentum", "-1"], "--momentum must be a number >= 0 and < 1"),
    (["--seed", "-5"], "--seed must be an integer >= 0"),
    (["--seed", "1e23"], "argument --seed: invalid int value: '1e23'"),
    (["--input-size", "-32"], "--input-size must be an integer >= 1, got -32"),
    (["--input-size", "0"], "--input-size must be an integer >= 1, got 0"),
    (["--input-size", "4"], "--input-size 4 must be between 8 and 4096 pixels"),
    (["--input-size", "12", "--model", "lenet5_relu"], "--input-size 12 does not fit lenet5_relu"),
    (["--input-size", "100000"], "--input-size 100000 must be between 8 and 4096 pixels"),
    (["--in-chans", "0"], "--in-chans must be an integer >= 1, got 0"),
    (["--step-size", "0"], "--step-size must be a number > 0, got 0.0"),
    (["--aug", "rotate=-400"], "--aug rotate=-400.0 must be between 0 and 180"),
    (["--aug", "rotate=nan"], "--aug rotate=nan must be between 0 and 180"),
    (["--aug", "translate=50"], "--aug translate=50.0 must be between 0 and 1"),
    (["--aug", "flip=maybe"], "bad value in --aug 'flip=maybe'; flip takes a bool (true or false)"),
    (["--device", "tpu"], "--device 'tpu' is not one of auto, cpu, cuda"),
    (["--val-split", "1.5"], "--val-split must be a number > 0 and < 1, got 1.5"),
    (["--dropout", "1"], "--dropout must be a number >= 0 and < 1, got 1.0"),
])
def test_train_refuses_bad_values_in_one_line_and_writes_nothing(
    tmp_path, monkeypatch, capsys, args, message
):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *FAST, "--out", "runs", *args]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_input_sizes_a_model_cannot_take_are_refused_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *FAST, "--out", "runs", "--model", "vit_ti_16", "--input-size", "40"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1 and "input size 40x40 is not divisible by the patch size 16 of vit_ti_16" in err[0]
    ), err


def test_cuda_without_a_gpu_is_one_line(tmp_path, monkeypatch, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    monkeypatch.chdir(tmp_path)
    assert main(["predict", "lenet5", "x.png", "--device", "cuda"]) == 2
    assert "no CUDA device is available here" in capsys.readouterr().err


def test_config_files_and_csv_lists_that_are_not_text(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_bytes(b"epochs: 2\n\xff\xfe lr: 1\n")
    assert main(["train", "--config", "bad.yaml"]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err
    (tmp_path / "list.csv").write_bytes(b"a.png,cat\nb\x00.png,dog\n")
    assert main(["train", *FAST, "--data", "list.csv", "--val-split", "0.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a readable CSV list" in err[0], err


@pytest.mark.parametrize("command, message", [
    (["compare", "lenet5", "--plot", "x.docx"], "pictures are written as .png"),
    (["data", "preview", "digits", "-o", "FOLDER"], "is a folder"),
    (["data", "stats", "digits", "-o", "FOLDER"], "is a folder"),
    (["evaluate", "lenet5", "--data", "digits", "--out", "FOLDER"], "is a folder"),
    (["evaluate", "lenet5", "--data", "digits", "--misclassified", "FOLDER"], "is a folder"),
    (["scratch", "train", "--epochs", "1", "--metrics", "FOLDER"], "is a folder"),
    (["train", *FAST, "--split-file", "FOLDER"], "is a folder"),
    (["train", *FAST, "--out", "FILE"], "is a file, not a folder"),
    (["finetune", "--data", "digits", "--cache-dir", "FILE"], "is a file, not a folder"),
    (["viz", "filters", "lenet5", "-o", "FOLDER"], "is a folder"),
])
def test_outputs_in_the_wrong_place_are_one_line(tmp_path, monkeypatch, capsys, command, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FOLDER").mkdir()
    (tmp_path / "FILE").write_text("a file")
    assert main(command) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip() and "cnnlab: error" in ln]
    assert len(err) == 1 and message in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FILE", "FOLDER"] and not any(
        (tmp_path / "FOLDER").iterdir()
    )


def test_one_class_data_and_an_empty_folder_are_problems(tmp_path, monkeypatch, capsys):
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    (tmp_path / "one" / "cat").mkdir(parents=True)
    for i in range(6):
        Image.new("RGB", (16, 16), (40 * i, 0, 0)).save(tmp_path / "one" / "cat" / f"{i}.png")
    assert main(["train", *FAST, "--data", "one", "--val-split", "0.3", "--out", "runs"]) == 2
    assert "a classifier needs at least 2 classes" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["data", "check", "empty"]) == 1
    assert "no files at all" in capsys.readouterr().out


def test_a_saved_split_with_an_empty_class_is_refused_every_time(tmp_path, monkeypatch, capsys, caplog):
    import json

    from PIL import Image

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    for c in ("a", "b", "c"):
        (tmp_path / "d" / c).mkdir(parents=True)
        for i in range(1 if c == "c" else 5):
            Image.new("L", (16, 16), 30 * i).save(tmp_path / "d" / c / f"{i}.png")
    args = ["train", *FAST, "--data", "d", "--val-split", "0.4", "--out", "runs", "--in-chans", "1",
            "--model", "lenet5_relu", "--input-size", "32", "--batch-size", "4"]
    for _ in range(2):  # the notice about class c comes with every command, not only the first
        with caplog.at_level("WARNING", logger="cnnlab"):
            assert main(args) == 0
        expected = f"c of {tmp_path / 'd'} have no validation image"  # the run names its data's absolute path
        assert any(expected in r.getMessage() for r in caplog.records)
        caplog.clear()
    split = next((tmp_path / "cache" / "splits").glob("*.json"))
    saved = json.loads(split.read_text())
    saved["val"] += [p for p in saved["train"] if p.startswith("c/")]
    saved["train"] = [p for p in saved["train"] if not p.startswith("c/")]
    split.write_text(json.dumps(saved))
    capsys.readouterr()
    assert main(args) == 2
    assert "have no training image in this split" in capsys.readouterr().err


def test_the_python_api_raises_one_line_cnnlab_errors():
    with pytest.raises(cnnlab.CnnlabError, match="model name must be a string"):
        cnnlab.create_model(None)
    with pytest.raises(cnnlab.CnnlabError, match="pattern must be a shell wildcard string"):
        cnnlab.list_models(123)
    with pytest.raises(cnnlab.CnnlabError, match="--lr must be a number > 0, got nan"):
        cnnlab.train(lr=math.nan, epochs=1)
    with pytest.raises(cnnlab.CnnlabError, match="unknown config key 'learning_rate'"):
        cnnlab.train(learning_rate=0.1)
    with pytest.raises(cnnlab.CnnlabError, match="topk must be an integer >= 1"):
        cnnlab.predict("lenet5", [], topk=0)
    (result,) = cnnlab.predict("lenet5", [None])
    assert result.error == "image 0: expected a file path, a PIL image or a uint8 array, got NoneType"
    with pytest.raises(cnnlab.CnnlabError, match="--combine 'vote' is not one of"):
        cnnlab.evaluate("lenet5", "digits", combine="vote")
