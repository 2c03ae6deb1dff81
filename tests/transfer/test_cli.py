"""``cnnlab finetune`` and ``cnnlab cache`` as real subprocesses: bad input gives one line and exit 2;
a SIGKILL during feature extraction leaves no manifest and no half-written shard, and the next run
keeps the complete shards and finishes the cache."""

from __future__ import annotations

import json
import signal
import time

import pytest
import torch
from safetensors import safe_open

import cnnlab
from cnnlab.weights import save_weights

from .conftest import SMALL, make_folder, run_cli, start_cli


def _error_line(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.startswith("cnnlab: error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.mark.slow  # eight CLI processes
def test_bad_inputs_one_line_each(tmp_path, folder, weights_file):
    lenet = tmp_path / "lenet.safetensors"
    save_weights(cnnlab.create_model("lenet5", num_classes=10), lenet)
    base = ["finetune", "--data", str(folder), *SMALL, "--epochs", "1", "--out", "runs"]
    line = _error_line(run_cli([*base, "--weights", str(lenet)], tmp_path))
    assert "checkpoint is for model 'lenet5', not 'resnet20'" in line or "another architecture" in line

    one = make_folder(tmp_path / "one", (4, 2), classes=1)
    line = _error_line(run_cli([*base[:2], str(one), *base[3:], "--weights", str(weights_file)], tmp_path))
    assert "at least 2 class" in line

    ok = run_cli([*base, "--weights", str(weights_file), "--name", "r20"], tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "NO augmentation" in ok.stdout and "stage 3 (layer3)" in ok.stdout
    (entry,) = (tmp_path / "cnnlab-cache" / "features").iterdir()
    r32 = tmp_path / "r32.safetensors"
    save_weights(cnnlab.create_model("resnet32", num_classes=10), r32)
    other = ["finetune", "--data", str(folder), "--model", "resnet32", "--input-size", "32", "--epochs", "1",
             "--out", "runs", "--cache-from", str(entry), "--weights", str(r32)]
    line = _error_line(run_cli(other, tmp_path))
    assert "was made for 'resnet20'" in line and "not 'resnet32'" in line
    assert not (tmp_path / "runs" / "resnet32-data").exists()

    listing = run_cli(["cache", "ls"], tmp_path)
    assert entry.name in listing.stdout and "complete" in listing.stdout
    assert _error_line(run_cli(["cache", "rm", "nope"], tmp_path)).endswith(
        "`cnnlab cache ls` lists the caches"
    )
    removed = run_cli(["cache", "rm", entry.name], tmp_path)
    assert removed.returncode == 0 and not entry.exists()


@pytest.mark.slow
def test_sigkill_during_extraction_leaves_nothing_half_written(tmp_path, weights_file):
    data = make_folder(tmp_path / "data", (150, 50))
    args = [
        "finetune",
        "--data",
        str(data),
        *SMALL,
        "--epochs",
        "1",
        "--out",
        "runs",
        "--cache-shard-rows",
        "16",
        "--weights",
        str(weights_file),
    ]
    cache = tmp_path / "cnnlab-cache" / "features"
    proc = start_cli(args, tmp_path)
    deadline = time.monotonic() + 300
    while (
        proc.poll() is None
        and time.monotonic() < deadline
        and not list(cache.glob("*/train-00000.safetensors"))
    ):
        time.sleep(0.01)
    time.sleep(0.05)
    assert proc.poll() is None, "the extraction ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    (entry,) = cache.iterdir()
    assert not (entry / "manifest.json").exists()
    shards = sorted(entry.glob("*.safetensors"))
    assert 1 <= len(shards) < 40  # 450 train + 150 val rows make 29 + 10 shards
    for shard in shards:  # every visible shard is complete
        with safe_open(str(shard), framework="pt") as fh:
            assert fh.get_tensor("features").shape[0] == fh.get_tensor("labels").shape[0] > 0
    listing = run_cli(["cache", "ls"], tmp_path)
    assert "incomplete" in listing.stdout

    done = run_cli(args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "kept from an interrupted run" in done.stdout
    manifest = json.loads((entry / "manifest.json").read_text())
    assert manifest["splits"]["train"]["rows"] == 450 and len(manifest["splits"]["val"]["shards"]) == 10
    assert not [f for f in entry.iterdir() if f.name.startswith(".") and f.name != ".lock"]
    labels = torch.cat([safe_open(str(entry / s), framework="pt").get_tensor("labels")
                        for s in manifest["splits"]["train"]["shards"]])
    assert labels.tolist() == sorted(labels.tolist())  # class folders in order: rows are in dataset order
