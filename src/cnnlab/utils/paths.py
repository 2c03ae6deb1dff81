"""cnnlab's own folder on disk: ``$CNNLAB_HOME``, else ``$CNNLAB_CACHE`` (its earlier name), else
``~/.cache/cnnlab``. Everything cnnlab keeps for itself lives under it: ``splits/`` and ``stats/``
(:mod:`cnnlab.data`), ``features/`` (:mod:`cnnlab.transfer.feature_cache`), ``weights/``
(:mod:`cnnlab.weights.cache`)."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV, LEGACY_ENV = "CNNLAB_HOME", "CNNLAB_CACHE"


def cnnlab_home() -> Path:
    for var in (HOME_ENV, LEGACY_ENV):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    return Path.home() / ".cache" / "cnnlab"
