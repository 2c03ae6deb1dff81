"""Shared pieces of the transfer tests: a small generated image folder, "pretrained" weights saved
from a seeded random CIFAR ResNet-20 (no download; small, so run folders are cheap to write), and a CLI
runner (real subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab.weights import save_weights

SMALL = ["--model", "resnet20", "--input-size", "32", "--batch-size", "8", "--seed", "0"]


def make_folder(root: Path, per_class: tuple[int, int], classes: int = 3, seed: int = 0) -> Path:
    """``root/{train,val}/c<k>/<i>.png``: 24x24 RGB noise with class ``k``'s channel raised."""
    rng = np.random.default_rng(seed)
    for split, n in zip(("train", "val"), per_class):
        for c in range(classes):
            folder = root / split / f"c{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                a = rng.integers(0, 80, size=(24, 24, 3), dtype=np.uint8)
                a[..., c % 3] += 140
                Image.fromarray(a).save(folder / f"{i}.png")
    return root


@pytest.fixture
def folder(tmp_path) -> Path:
    return make_folder(tmp_path / "data", (8, 4))


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "r20.safetensors"
    save_weights(cnnlab.create_model("resnet20", num_classes=10), path)
    return path


def cli_env(cache_root: Path) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", CNNLAB_CACHE=str(cache_root))
    src = str(Path(cnnlab.__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], cwd=cwd, env=cli_env(cwd / "cnnlab-cache"),
                          capture_output=True, text=True, timeout=600)


def start_cli(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cnnlab", *args],
        cwd=cwd,
        env=cli_env(cwd / "cnnlab-cache"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
