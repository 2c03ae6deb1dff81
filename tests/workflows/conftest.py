"""A real digits run made once by ``python -m cnnlab train`` (a subprocess), shared by the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(args: list[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "cnnlab", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> Path:
    """lenet5 trained for one epoch on the built-in digits (seed 0): runs/a."""
    root = tmp_path_factory.mktemp("evaluate")
    proc = run_cli(["train", "--epochs", "1", "--batch-size", "64", "--name", "a", "--out", "runs",
                    "--no-progress"], cwd=root)
    assert proc.returncode == 0, proc.stderr
    return root / "runs" / "a"
