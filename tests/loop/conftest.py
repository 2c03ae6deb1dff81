"""Shared pieces of the practitioner's-loop tests: a tiny image folder (with one unreadable file), real
runs made by ``python -m cnnlab train`` (subprocesses, the end-of-run report on), a CLI runner and
the ECE by its definition (the oracle)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Three classes told apart by where a bright square sits; 1-channel 16x16 PNGs.
TINY_ARGS = ["--model", "lenet5_relu", "--in-chans", "1", "--input-size", "32", "--batch-size", "8"]


def run_cli(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The CLI's error line; fails unless the command exited with 2 and printed exactly one line."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("cnnlab: error:"), proc.stderr
    return lines[0]


def _image(label: int, rng: np.random.Generator) -> Image.Image:
    a = rng.integers(0, 60, size=(16, 16), dtype=np.uint8)
    r, c = [(2, 2), (2, 10), (10, 6)][label]
    r, c = r + int(rng.integers(0, 3)), c + int(rng.integers(0, 3))
    a[r:r + 4, c:c + 4] = 230
    return Image.fromarray(a, mode="L")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Path:
    """``train/`` 10 images per class (and one file that is not an image), ``val/`` 5, 4, 4."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    for split, counts in (("train", (10, 10, 10)), ("val", (5, 4, 4))):
        for label, n in enumerate(counts):
            folder = root / split / f"class_{'abc'[label]}"
            folder.mkdir(parents=True)
            for i in range(n):
                _image(label, rng).save(folder / f"{i}.png")
    (root / "train" / "class_a" / "broken.png").write_bytes(b"not a png")
    return root


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """lenet5 on the built-in digits, one epoch, as `cnnlab train` makes it (report at the end):
    (run folder, process)."""
    root = tmp_path_factory.mktemp("digits")
    proc = run_cli(["train", "--epochs", "1", "--batch-size", "64", "--name", "d", "--out", "runs",
                    "--no-progress"], cwd=root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root / "runs" / "d", proc


@pytest.fixture(scope="session")
def folder_run(tmp_path_factory, tiny):
    """lenet5_relu on the tiny folder, two epochs (report at the end): (run, proc)."""
    root = tmp_path_factory.mktemp("folder")
    proc = run_cli(["train", "--data", str(tiny), *TINY_ARGS, "--epochs", "2", "--name", "f", "--out", "runs",
                    "--no-progress"], cwd=root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root / "runs" / "f", proc


def ece_directly(probs: np.ndarray, targets: np.ndarray, bins: int) -> float:
    """Guo et al. 2017 (arXiv:1706.04599) eq. 3 by its definition: bin m holds the confidences in
    ((m - 1) / M, m / M] (the first bin also 0)."""
    conf, pred = probs.max(1), probs.argmax(1)
    total = 0.0
    for m in range(1, bins + 1):
        lo, hi = (m - 1) / bins, m / bins
        inside = ((conf > lo) if m > 1 else (conf >= 0)) & (conf <= hi)
        if inside.any():
            gap = abs((pred[inside] == targets[inside]).mean() - conf[inside].mean())
            total += inside.sum() / len(conf) * gap
    return total
