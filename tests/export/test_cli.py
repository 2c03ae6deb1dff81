"""The command line: `cnnlab export` then `cnnlab predict model.onnx`, in real subprocesses; the ONNX
answers equal the checkpoint's, with the class names and preprocessing embedded in the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import onnx
import pytest

from cnnlab.cli.main import main
from cnnlab.workflows.export import export
from cnnlab.workflows.predict import predict


def cnnlab(*args, cwd) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "cnnlab", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_export_then_predict_with_onnxruntime(checkpoint, images, tmp_path):
    done = cnnlab("export", checkpoint, "-o", "m.onnx", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["format"] == "onnx" and report["parity"]["max_abs"] < 1e-4
    onnx_run = cnnlab("predict", "m.onnx", images, "--json", "--topk", "3", cwd=tmp_path)
    assert onnx_run.returncode == 0, onnx_run.stderr
    got = json.loads(onnx_run.stdout)
    want = [r.to_dict() for r in predict(str(checkpoint), images, topk=3)]  # the torch model
    assert len(got) == len(want) == 12
    for g, w in zip(got, want):
        assert [t["name"] for t in g["top"]] == [t["name"] for t in w["top"]]
        assert {t["name"] for t in g["top"]} == {"cat", "dog", "emu"}
        for a, b in zip(g["top"], w["top"]):
            assert abs(a["prob"] - b["prob"]) < 1e-5


@pytest.mark.slow
def test_foreign_onnx_needs_its_preprocessing(checkpoint, images, tmp_path):
    export(str(checkpoint), out=tmp_path / "m.onnx")
    proto = onnx.load(str(tmp_path / "m.onnx"))
    del proto.metadata_props[:]  # as if written by another tool
    onnx.save(proto, str(tmp_path / "bare.onnx"))
    bare = cnnlab("predict", "bare.onnx", images, cwd=tmp_path)
    assert bare.returncode == 2
    assert bare.stderr.strip().splitlines() == [
        "cnnlab: error: bare.onnx carries no cnnlab preprocessing (not written by `cnnlab export`); "
        "give --input-size, --mean and --std"]
    given = cnnlab("predict", "bare.onnx", images / "00.png", "--input-size", "32", "--mean", "0.3", "--std",
                   "0.2", "--json", cwd=tmp_path)
    assert given.returncode == 0, given.stderr
    assert [t["name"] for t in json.loads(given.stdout)[0]["top"]][0].startswith("class_")


@pytest.mark.slow
def test_an_export_error_is_one_line_from_the_real_command(checkpoint, tmp_path):
    done = cnnlab("export", checkpoint, "-o", "m.onnx", "--quantize", "int8", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "cnnlab: error: --quantize int8 needs --calibration DIR: images like those the model will see"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "message"), [
    (["export", "nosuch_model", "-o", "m.onnx"], "unknown model 'nosuch_model'"),
    (["export", "{ckpt}", "-o", "m.pt", "--format", "torchscript", "--opset", "17"], "ONNX only"),
    (["export", "{ckpt}", "-o", "m.onnx", "--batch", "0"], "--batch must be"),
    (["export", "{ckpt}", "-o", "m.onnx", "--quantize", "int4"], "invalid choice: 'int4'"),
    (["export", "{ckpt}"], "the following arguments are required: -o/--out"),
    (["predict", "lenet5", "x.png", "--mean", "0.5"], "are for ONNX files"),
    (["predict", "gone.onnx", "x.png"], "gone.onnx: no such ONNX file"),
    (["evaluate", "gone.onnx", "--data", "digits"], "gone.onnx: no such ONNX file"),
    (["export", "gone.onnx", "-o", "m.onnx"], "gone.onnx is an ONNX file: export takes a model"),
])
def test_cli_errors_are_one_line_and_write_nothing(args, message, checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main([a.format(ckpt=checkpoint) for a in args])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message in lines[0], lines
    assert list(tmp_path.iterdir()) == []
