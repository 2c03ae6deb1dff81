"""The training state file: everything needed to continue a run exactly.

``state.pt`` holds the model (and EMA) weights, the optimizer, scheduler and gradient-scaler states,
the random number generator states (Python, NumPy, torch CPU, every CUDA device), the position
(epoch, optimizer step, batches of the epoch already consumed), the epoch's running sums (one set
per rank, like the generators: each rank sums its own share of the epoch) and the metric history. It
contains only tensors, numbers, strings, lists and dicts, so it loads with ``torch.load(path,
weights_only=True)``; it is written atomically (temporary file, fsync, rename).
"""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError
from ..utils.io import atomic_path

STATE_FILE = "state.pt"
FORMAT = "cnnlab-train-state-1"


def rng_state() -> dict:
    """The four generators' states as weights_only-loadable values."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "python": [py_version, list(py_internal), py_gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path: str | os.PathLike, state: dict) -> Path:
    """Write ``state`` (see the module docstring) atomically."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)
    return Path(path)


def load_state(path: str | os.PathLike) -> dict:
    """Read a state file with ``weights_only=True``; a bad file is a :class:`CheckpointError`."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"no training state {str(p)!r}: the run has not saved a checkpoint yet")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise CheckpointError(f"cannot read training state {p}: {first}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{p} is not a cnnlab training state ({FORMAT})")
    return state
