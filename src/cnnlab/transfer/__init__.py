"""Transfer learning building blocks.

* :mod:`~cnnlab.transfer.freezing` - freeze the first stages, frozen BatchNorm, discriminative learning
  rates, the per-stage parameter report and head replacement;
* :mod:`~cnnlab.transfer.feature_cache` - run a frozen backbone once and keep its features on disk;
* :mod:`~cnnlab.transfer.cache_admin` - list and remove cache entries (and nothing else).

``cnnlab.finetune`` (:mod:`cnnlab.workflows.finetune`) is the workflow that puts them together.
"""

from __future__ import annotations

import importlib

from .freezing import (
    FROZEN_BN_MODES,
    SegmentCount,
    format_report,
    freeze_stages,
    frozen_norm_layers,
    has_trainable_head,
    parameter_report,
    parse_freeze,
    replace_head,
    segment_order,
    segments,
    train_mode_hook,
    transfer_param_groups,
)

_LAZY = {
    "CacheSpec": "feature_cache",
    "ExtractPlan": "feature_cache",
    "FeatureCache": "feature_cache",
    "cache_features": "feature_cache",
    "default_cache_dir": "feature_cache",
    "open_entry": "feature_cache",
    "list_caches": "cache_admin",
    "remove_caches": "cache_admin",
    "foreign_folders": "cache_admin",
}

__all__ = [
    "FROZEN_BN_MODES",
    "SegmentCount",
    "format_report",
    "freeze_stages",
    "frozen_norm_layers",
    "has_trainable_head",
    "parameter_report",
    "parse_freeze",
    "replace_head",
    "segment_order",
    "segments",
    "train_mode_hook",
    "transfer_param_groups",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:  # the cache pulls in the data layer: imported on first use
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
