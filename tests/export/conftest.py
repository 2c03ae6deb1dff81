"""Shared pieces of the export tests: models whose logits are far from zero (random init zeroes many
heads and last BatchNorm scales, which would make parity vacuous), a small cnnlab checkpoint with class
names and a non-default preprocessing, and a folder of small images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import cnnlab
from cnnlab.models.base import DataConfig
from cnnlab.weights import save_weights
from cnnlab.weights.meta import weights_metadata

CLASSES = ["cat", "dog", "emu"]
PREPROCESSING = DataConfig((1, 32, 32), (0.3,), (0.2,), "bicubic", 0.9)


def varied(model: nn.Module, seed: int = 0) -> nn.Module:
    """``model`` in eval mode with every BatchNorm's statistics and affine parameters and every
    parameter that init left at zero drawn at random, so that logits differ between inputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
        for p in model.parameters():
            if p.abs().max() == 0 or p.dim() == 1:
                p.copy_(
                    torch.randn(p.shape, generator=g) * 0.1 + (1.0 if p.dim() == 1 and p.mean() == 1 else 0)
                )
    return model.eval()


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """A 1-channel, 3-class lenet5_relu checkpoint with class names and its own preprocessing."""
    model = varied(cnnlab.create_model("lenet5_relu", num_classes=3, in_chans=1))
    path = tmp_path_factory.mktemp("ckpt") / "lenet.safetensors"
    save_weights(model, path, weights_metadata(CLASSES, PREPROCESSING))
    return path


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    """Twelve small grey PNGs of varied content (calibration and prediction inputs)."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(12):
        a = rng.integers(0, 80, size=(40, 36), dtype=np.uint8)
        r, c = rng.integers(0, 28, size=2)
        a[r : r + 10, c : c + 8] = 200 + i
        Image.fromarray(a, mode="L").save(folder / f"{i:02d}.png")
    return folder
