"""Data: datasets, bad-file scanning, augmentations, loaders and statistics.

The core API::

    from cnnlab.data import open_dataset, build_transform, make_loader
    splits = open_dataset("digits")                 # or a folder, a CSV, "cifar10:DIR", "mnist:DIR"
    splits.train.transform = build_transform("digits", train=True, input_size=32,
                                             mean=splits.mean, std=splits.std)
    loader = make_loader(splits.train, batch_size=128, shuffle=True, workers=2, seed=0)
"""

from .datasets import BadFileReport, ImageFileDataset, TensorImageDataset
from .loader import make_loader
from .splits import Splits, open_dataset
from .stats import DataStats, dataset_stats
from .transforms import PRESETS, Augment, build_transform, eval_transform

__all__ = ["open_dataset", "build_transform", "make_loader", "eval_transform", "Splits", "Augment", "PRESETS",
           "BadFileReport", "ImageFileDataset", "TensorImageDataset", "DataStats", "dataset_stats"]
