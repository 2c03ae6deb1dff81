"""Shared pieces of the practitioner's-loop tests: a tiny image folder (with one unreadable file), real
runs made by ``python -m cnnlab train`` (subprocesses, the end-of-run report on), a CLI runner and
the ECE by its definition (the oracle)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock
from PIL import Image

# Three classes told apart by where a bright square sits; 1-channel 16x16 PNGs.
TINY_ARGS = ["--model", "lenet5_relu", "--in-chans", "1", "--input-size", "32", "--batch-size", "8"]


def run_cli(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _image(label: int, rng: np.random.Generator) -> Image.Image:
    a = rng.integers(0, 60, size=(16, 16), dtype=np.uint8)
    r, c = [(2, 2), (2, 10), (10, 6)][label]
    r, c = r + int(rng.integers(0, 3)), c + int(rng.integers(0, 3))
    a[r:r + 4, c:c + 4] = 230
    return Image.fromarray(a, mode="L")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory, worker_id) -> Path:
    """``train/`` 10 images per class (and one file that is not an image), ``val/`` 5, 4, 4."""

    def make(root: Path) -> str:
        rng = np.random.default_rng(0)
        for split, counts in (("train", (10, 10, 10)), ("val", (5, 4, 4))):
            for label, n in enumerate(counts):
                folder = root / split / f"class_{'abc'[label]}"
                folder.mkdir(parents=True)
                for i in range(n):
                    _image(label, rng).save(folder / f"{i}.png")
        (root / "train" / "class_a" / "broken.png").write_bytes(b"not a png")
        return ""

    return _once(tmp_path_factory, worker_id, "tiny", make)[0]


def _once(tmp_path_factory, worker_id: str, name: str, make) -> tuple[Path, str]:
    """``make(folder) -> printed text``, once for all pytest-xdist workers (the runs are read-only to
    the tests; a test that writes into one copies it): (folder, text)."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if worker_id != "master" else base) / f"loop-{name}"
    done = root.with_name(root.name + ".printed")  # beside the folder: an image folder holds only images
    with FileLock(str(root) + ".lock"):
        if not done.is_file():
            root.mkdir(exist_ok=True)
            done.write_text(make(root))
    return root, done.read_text()


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory, worker_id):
    """lenet5 on the built-in digits, one epoch, as ``cnnlab.train`` makes it (report at the end), in a
    test process (a CLI run is :func:`folder_run`): (run folder, what it printed)."""

    def make(root: Path) -> str:
        from cnnlab.workflows.train import train

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            train(epochs=1, batch_size=64, name="d", out=str(root / "runs"), progress=False)
        return out.getvalue()

    root, printed = _once(tmp_path_factory, worker_id, "digits", make)
    return root / "runs" / "d", printed


@pytest.fixture(scope="session")
def folder_run(tmp_path_factory, worker_id, tiny):
    """lenet5_relu on the tiny folder, two epochs, by `cnnlab train` (report at the end): (run, stdout)."""

    def make(root: Path) -> str:
        proc = run_cli(
            [
                "train",
                "--data",
                str(tiny),
                *TINY_ARGS,
                "--epochs",
                "2",
                "--lr",
                "2e-3",
                "--name",
                "f",
                "--out",
                "runs",
                "--no-progress",
            ],
            cwd=root,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout

    root, printed = _once(tmp_path_factory, worker_id, "folder", make)
    return root / "runs" / "f", printed


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
