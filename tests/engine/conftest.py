"""Shared pieces of the engine tests: a tiny image folder and a CLI runner (real subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Three classes told apart by where a bright square sits; 30 train and 13 val images (odd on purpose).
TRAIN_PER_CLASS, VAL_COUNTS = 10, (5, 4, 4)
TINY_ARGS = ["--in-chans", "1", "--input-size", "32", "--batch-size", "8", "--model", "lenet5_relu"]


def _image(label: int, rng: np.random.Generator) -> Image.Image:
    a = rng.integers(0, 60, size=(16, 16), dtype=np.uint8)
    r, c = [(2, 2), (2, 10), (10, 6)][label]
    r, c = r + int(rng.integers(0, 3)), c + int(rng.integers(0, 3))
    a[r:r + 4, c:c + 4] = 230
    return Image.fromarray(a, mode="L")


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    for split, counts in (("train", (TRAIN_PER_CLASS,) * 3), ("val", VAL_COUNTS)):
        for label, n in enumerate(counts):
            folder = root / split / f"class_{'abc'[label]}"
            folder.mkdir(parents=True)
            for i in range(n):
                _image(label, rng).save(folder / f"{i}.png")
    return root


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def run_cli(args: list[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnnlab", *args],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cnnlab", *args], cwd=cwd, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
