"""The README's main-job command: ``cnnlab train`` with no argument."""

from __future__ import annotations

import json

import pytest

from .conftest import run_cli


@pytest.mark.slow
def test_default_run_reaches_97_percent(tmp_path):
    proc = run_cli(["train"], cwd=tmp_path, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = tmp_path / "runs" / "lenet5-digits"
    assert "train_loss" in proc.stdout and "best val top-1" in proc.stdout  # the epoch table and the end line
    summary = json.loads((run / "summary.json").read_text())
    assert summary["model"] == "lenet5" and summary["data"] == "digits"
    assert summary["best"]["val_top1"] >= 97.0
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "lenet5" and config["in_chans"] is None  # 1x32x32 came from the data
