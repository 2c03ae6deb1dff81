"""`cnnlab viz ...` as a user runs it: two real subprocesses (started together, to keep the suite fast),
the other commands through the same entry point in-process; PNGs checked, bad input one line + exit 2."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab.cli.main import main
from cnnlab.weights import save_weights

COMMANDS = {
    "filters": ["filters", "lenet5_relu", "--weights", "{ckpt}", "-o", "{out}/filters.png"],
    "features": [
        "features",
        "resnet18",
        "{img}",
        "--stage",
        "layer2",
        "--top",
        "6",
        "-o",
        "{out}/features.png",
    ],
    "cam": ["cam", "resnet18", "{img}", "--method", "cam", "--class", "3", "-o", "{out}/cam.png"],
    "deconv": [
        "deconv",
        "lenet5_relu",
        "{img}",
        "--weights",
        "{ckpt}",
        "--layer",
        "features.5",
        "-o",
        "{out}/deconv.png",
    ],
    "unsupported": ["deconv", "efficientnet_lite0", "{img}", "-o", "{out}/never.png"],
}
SUBPROCESS = ("cam", "unsupported")  # `python -m cnnlab` for real; each costs seconds of start-up


def _photo(path):
    y, x = np.mgrid[0:180, 0:240]
    rgb = np.stack(
        [x / 240, y / 180, ((x // 30 + y // 30) % 2) * 0.8], axis=2
    )  # gradients and a checkerboard
    Image.fromarray((rgb * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("viz")
    torch.manual_seed(0)
    ckpt = d / "lenet.safetensors"
    save_weights(cnnlab.create_model("lenet5_relu", num_classes=10), ckpt)
    (d / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return {"ckpt": str(ckpt), "img": str(_photo(d / "photo.png")), "out": str(d), "dir": d}


@pytest.fixture(scope="module")
def runs(files):
    """name -> (exit code, stdout, stderr)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = {name: subprocess.Popen([sys.executable, "-m", "cnnlab", "viz", *_args(name, files)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for name in SUBPROCESS}
    results = {name: _in_process(_args(name, files)) for name in COMMANDS if name not in SUBPROCESS}
    for name, p in procs.items():
        out, err = p.communicate(timeout=300)
        results[name] = (p.returncode, out, err)
    return results


def _args(name, files):
    return [a.format(**files) for a in COMMANDS[name]]


def _in_process(args):
    import contextlib
    import io
    import logging

    out, err = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)  # notices go through the "cnnlab" logger
    logging.getLogger("cnnlab").addHandler(handler)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(["viz", *args])
    finally:
        logging.getLogger("cnnlab").removeHandler(handler)
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("name,min_width",
                         [("filters", 150), ("features", 500), ("cam", 500), ("deconv", 600)])
def test_commands_write_pngs(runs, files, name, min_width):
    rc, out, err = runs[name]
    assert rc == 0, err
    path = files["dir"] / f"{name}.png"
    assert f"wrote {path}" in out
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width >= min_width and im.height >= 100
        im.verify()


def test_what_each_command_says(runs):
    assert "lenet5_relu features.0: 6 filters 5x5 x 3 channels" in runs["filters"][1]
    assert "resnet18 layer2: 128 channels of 28x28; top 6" in runs["features"][1]
    assert "resnet18 cam at forward_features: class 3 'tiger shark'" in runs["cam"][1]
    assert "lenet5_relu deconvnet from features.5 channel" in runs["deconv"][1]
    assert "randomly initialised" in runs["features"][2]  # no --weights: the notice
    assert "randomly initialised" not in runs["filters"][2]


def test_unsupported_model_is_one_line_and_exit_2(runs, files):
    rc, out, err = runs["unsupported"]
    lines = [ln for ln in err.splitlines() if ln.startswith("cnnlab: error:")]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err
    assert "efficientnet_lite0 has none; supported models: alexnet" in lines[0]
    assert not (files["dir"] / "never.png").exists()


@pytest.mark.parametrize("args,message", [
    (["features", "resnet18", "{img}", "--stage", "layer7"], "no stage or module 'layer7'"),
    (["features", "resnet18", "{out}/broken.jpg", "--stage", "layer2"], "broken.jpg: not an image"),
    (["features", "resnet18", "{out}/missing.jpg", "--stage", "layer2"], "missing.jpg: no such file"),
    (["cam", "lenet5_relu", "{img}", "--weights", "{ckpt}", "--class", "10"], "class 10 is out of range"),
    (["cam", "resnet18", "{img}", "--class", "tabby cats"], "unknown class 'tabby cats'; did you mean "
                                                            "'tabby'"),
    (["cam", "lenet5_relu", "{img}", "--method", "cam"], "CAM needs a global-average-pool + linear head"),
    (["deconv", "lenet5_relu", "{img}", "--layer", "fc"], "layer 'fc' is not in lenet5_relu's deconvnet "
                                                          "stack"),
    (["filters", "nosuchnet"], "unknown model 'nosuchnet'"),
    (["filters", "lenet5_relu", "-o", "{out}"], "is a folder; give a file name"),
])
def test_bad_input_is_one_line_exit_2(files, capsys, args, message):
    out = files["dir"] / "bad.png"
    args = [a.format(**files) for a in args]
    rc = main(["viz", *args, *([] if "-o" in args else ["-o", str(out)])])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("cnnlab: error:")]
    assert rc == 2 and len(lines) == 1 and message in lines[0], err
    assert not out.exists()
