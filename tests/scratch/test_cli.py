"""``cnnlab scratch train`` / ``gradcheck`` as real subprocesses, and the digits preparation."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from cnnlab.workflows.scratch import bilinear_matrix, load_digits_32


def cnnlab(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, timeout=timeout
    )


def test_gradcheck_prints_every_layer_and_passes():
    proc = cnnlab("scratch", "gradcheck")
    assert proc.returncode == 0, proc.stderr
    for name in (
        "Conv2d",
        "Linear",
        "MaxPool2d",
        "AvgPool2d",
        "ReLU",
        "LeakyReLU",
        "Sigmoid",
        "Tanh",
        "BatchNorm2d",
        "BatchNorm1d",
        "Dropout",
        "Flatten",
        "SoftmaxCrossEntropy",
        "L1Penalty",
        "L2Penalty",
    ):
        assert name in proc.stdout
    assert "FAIL" not in proc.stdout and "gradients within relative error 1e-06" in proc.stdout


def test_train_one_epoch_prints_table_and_writes_metrics(tmp_path):
    metrics = tmp_path / "m.json"
    proc = cnnlab("scratch", "train", "--epochs", "1", "--optimizer", "momentum", "--no-progress",
                  "--metrics", str(metrics))
    assert proc.returncode == 0, proc.stderr
    assert "epoch train_loss train_top1 val_loss val_top1     sec    img/s" in proc.stdout
    saved = json.loads(metrics.read_text())
    assert saved["config"]["optimizer"] == "momentum" and len(saved["epochs"]) == 1
    assert saved["epochs"][0]["val_top1"] > 50


@pytest.mark.slow
def test_train_reaches_97_percent_on_digits():
    proc = cnnlab("scratch", "train", "--no-progress", timeout=900)
    assert proc.returncode == 0, proc.stderr
    best = float(proc.stdout.split("best val top-1 ")[1].split("%")[0])
    assert best >= 97.0, proc.stdout


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "--epochs 0 must be at least 1"),
    (["--lr", "-1"], "--lr -1.0 must be positive"),
    (["--val-fraction", "1.5"], "--val-fraction 1.5 must be between 0 and 1"),
])
def test_bad_arguments_are_one_line_errors(args, message):
    proc = cnnlab("scratch", "train", *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_bilinear_matrix_equals_torch_interpolate():
    img = np.random.default_rng(0).standard_normal((8, 8))
    a = bilinear_matrix(8, 32)
    ref = torch.nn.functional.interpolate(torch.tensor(img)[None, None], size=(32, 32), mode="bilinear",
                                          align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(a @ img @ a.T, ref, atol=1e-12)


def test_digits_split_is_seeded_and_normalised():
    a, b = load_digits_32(0.2, seed=3), load_digits_32(0.2, seed=3)
    assert a.x_train.shape == (1438, 1, 32, 32) and a.x_val.shape == (359, 1, 32, 32)
    assert a.x_train.dtype == np.float32 and np.array_equal(a.y_val, b.y_val)
    assert abs(a.x_train.mean()) < 1e-3 and abs(a.x_train.std() - 1) < 1e-3
