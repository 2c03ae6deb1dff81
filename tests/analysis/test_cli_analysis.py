"""``cnnlab info``, ``compare`` and ``cost`` through real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def cnnlab(*args, check=True):
    proc = subprocess.run(
        [sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, timeout=300
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_cost_examples_print_the_notes_numbers():
    out = cnnlab("cost", "conv", "--input", "28x28x192", "--kernel", "5", "--out", "32", "--padding", "same",
                 "--bottleneck", "16").stdout
    assert "120,422,400" in out and "12,443,648" in out and "2,408,448" in out and "10,035,200" in out
    out = cnnlab("cost", "separable", "--input", "6x6x3", "--kernel", "3", "--out", "5").stdout
    assert "2,160" in out and "672" in out and "432" in out and "240" in out
    out = cnnlab("cost", "stack", "--channels", "128", "--kernels", "3,3", "--vs", "5").stdout
    assert "294,912" in out and "409,600" in out and "0.72" in out
    out = cnnlab(
        "cost", "conv", "--input", "28x28x128", "--kernel", "3", "--out", "128", "--bottleneck", "32"
    ).stdout
    assert "147,456" in out and "40,960" in out
    out = cnnlab("cost", "conv", "--input", "8x8x6", "--kernel", "3", "--out", "9", "--groups", "3").stdout
    assert "weights: 162" in out and f"MACs:    {8 * 8 * 162:,}" in out


SLOW = pytest.mark.slow


@pytest.mark.parametrize("args", [
    ["cost", "conv", "--input", "4x4x3", "--kernel", "7", "--out", "5", "--padding", "0"],
    pytest.param(["cost", "conv", "--input", "8x8x3", "--kernel", "3", "--out", "5", "--stride", "0"],
                 marks=SLOW),
    pytest.param(["cost", "separable", "--input", "6x6", "--kernel", "3", "--out", "5"], marks=SLOW),
    ["cost", "stack", "--channels", "128", "--kernels", "3,x", "--vs", "5"],
    ["cost", "conv", "--input", "8x8x6", "--kernel", "3", "--out", "8", "--groups", "4"],
    pytest.param(["info", "no_such_model"], marks=SLOW),
    ["info", "lenet5_relu", "--input", "1x4x4"],
    pytest.param(["info", "lenet5_relu", "--input", "axb"], marks=SLOW),
])
def test_bad_input_one_line_exit_2(args):
    proc = cnnlab(*args, check=False)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("cnnlab: error:")
    assert "Traceback" not in proc.stderr


def test_info_table_and_json():
    out = cnnlab("info", "lenet5_relu", "--depth", "1").stdout
    assert "params 61,706" in out and "features" in out and "features.0" not in out
    data = json.loads(cnnlab("info", "lenet5_relu", "--json", "--num-classes", "7").stdout)
    assert {"model", "input", "params", "macs", "flops", "layers"} <= set(data)
    assert data["input"] == [1, 32, 32] and data["flops"] == 2 * data["macs"]
    conv = next(layer for layer in data["layers"] if layer["name"] == "features.3")
    assert conv["output_shape"] == [1, 16, 10, 10] and conv["params"] == 2_416
    assert conv["receptive_field"]["size"] == 14 and conv["receptive_field"]["jump"] == 2
    assert next(la for la in data["layers"] if la["name"] == "fc")["params"] == 84 * 7 + 7


def test_compare_table_and_plot(tmp_path):
    png = tmp_path / "cost.png"
    out = cnnlab("compare", "lenet5", "lenet5_relu", "--plot", str(png)).stdout
    assert "lenet5_relu" in out and "61,706" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["cost.png"]  # no temporary left behind
