"""Data: datasets, bad-file scanning, augmentations, loaders and statistics.

The core API::

    from cnnlab.data import open_dataset, build_transform, make_loader
    splits = open_dataset("digits")                 # or a folder, a CSV, "cifar10:DIR", "mnist:DIR"
    splits.train.transform = build_transform("digits", train=True, input_size=32,
                                             mean=splits.mean, std=splits.std)
    loader = make_loader(splits.train, batch_size=128, shuffle=True, workers=2, seed=0)

Names are imported on first use, so that ``cnnlab data check`` (PIL only) starts without torch.
"""

import importlib

_LAZY = {
    "open_dataset": "splits",
    "resolve_spec": "splits",
    "Splits": "splits",
    "build_transform": "transforms",
    "eval_transform": "transforms",
    "Augment": "transforms",
    "PRESETS": "transforms",
    "make_loader": "loader",
    "BadFileReport": "report",
    "ImageFileDataset": "datasets",
    "TensorImageDataset": "datasets",
    "DataStats": "stats",
    "dataset_stats": "stats",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
