"""``cnnlab train --compile`` through the CLI: torch.compile really runs, the run folder holds the plain
model's weights (no ``_orig_mod.`` prefix), they load with create_model, and the run resumes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch

import cnnlab
from cnnlab.weights import read_checkpoint

from .conftest import TINY_ARGS, cli_env

pytestmark = pytest.mark.skipif(shutil.which("g++") is None,
                                reason="torch.compile on CPU builds C++ kernels and no g++ was found")


def _cli(args: list[str], cwd, cache) -> subprocess.CompletedProcess:
    # A fresh inductor cache for this test: the compiled kernels found in it show that compile ran.
    env = cli_env() | {"TORCHINDUCTOR_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_compiled_run_saves_plain_weights_loads_and_resumes(tmp_path, tiny_folder):
    cache, run = tmp_path / "inductor", tmp_path / "runs" / "compiled"
    args = ["train", "--data", str(tiny_folder), *TINY_ARGS, "--epochs", "1", "--compile", "--ema",
            "--name", "compiled", "--out", "runs"]
    first = _cli(args, tmp_path, cache)
    assert first.returncode == 0, first.stderr[-3000:]
    assert any(cache.rglob("*.so")), "no compiled kernel was built: --compile did not compile"
    for name in (
        "config.json",
        "state.pt",
        "last.safetensors",
        "best.safetensors",
        "summary.json",
        "metrics.csv",
    ):
        assert (run / name).is_file(), name

    plain = cnnlab.create_model("lenet5_relu", num_classes=3, in_chans=1)
    keys = set(plain.state_dict())
    weights, _ = read_checkpoint(run / "last.safetensors")
    assert set(weights) == keys
    state = torch.load(run / "state.pt", weights_only=True)
    assert set(state["model"]) == keys and set(state["ema"]) == keys
    loaded = cnnlab.create_model("lenet5_relu", num_classes=3, in_chans=1, weights=run)
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, weights[k]), k

    resumed = _cli(["train", "--resume", str(run), "--epochs", "2"], tmp_path, cache)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert [r["epoch"] for r in summary["history"]] == [1, 2] and summary["stopped"] == "completed"
    after, _ = read_checkpoint(run / "last.safetensors")
    assert set(after) == keys
    assert any(not torch.equal(after[k], weights[k]) for k in keys), "the resumed epoch changed nothing"
    assert torch.load(run / "state.pt", weights_only=True)["epoch"] == 2
