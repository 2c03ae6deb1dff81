"""Loaders whose output is a pure function of (seed, epoch, position): what exact resume needs.

* The train sampler (:class:`~cnnlab.engine.distributed.ResumableSampler`) fixes the order of an
  epoch from ``seed + epoch`` and can start part-way through.
* :class:`SeededSamples` makes each batch's random augmentation a pure function of
  ``(seed, epoch, first index of the batch)``: before the transforms run it seeds Python's, NumPy's
  and torch's CPU generators from those numbers, and puts torch's previous state back afterwards (the
  training step draws from torch's generator only; Python's and NumPy's are left seeded from the last
  batch, which is itself a function of the position, so runs stay reproducible). Saving and
  restoring NumPy's state would cost ~0.1 ms a batch. Which worker process loads a batch, and whether the run
  was resumed in the middle of the
  epoch (a resume skips whole batches, so the batches stay the same), then no longer matter. The sampler
  passes the epoch inside the index
  (``epoch * len(dataset) + index``), so worker processes need no shared state.
* Creating a loader iterator draws a base seed from torch's global generator; :func:`iterate` hides
  that draw so it does not shift the training process's random stream.
"""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def sample_seed(seed: int, epoch: int, index: int) -> int:
    return ((seed * 1_000_003 + epoch) * 10_000_019 + index) % (2**63 - 1)


@contextlib.contextmanager
def preserved_rng():
    """Run a block without changing the Python, NumPy and torch CPU generators' states."""
    py, npy = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)


class SeededSamples(Dataset):
    """``dataset`` indexed by ``epoch * len(dataset) + index``, each sample seeded (see module doc)."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed, self.n = dataset, seed, len(dataset)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key: int):
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: list[int]) -> list:
        """A batch (the DataLoader's fetcher calls this): seeded once, from its first key."""
        epoch, first = divmod(int(keys[0]), self.n)
        s = sample_seed(self.seed, epoch, first)
        random.seed(s)
        np.random.seed(s % 2**32)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(s)
            return [self.dataset[int(k) % self.n] for k in keys]


class EpochIndices(Sampler[int]):
    """Wraps a sampler of the current epoch, yielding ``epoch * n + index`` keys for SeededSamples."""

    def __init__(self, sampler, n: int) -> None:
        self.sampler, self.n = sampler, n

    def __iter__(self):
        offset = self.sampler.epoch * self.n
        return (offset + i for i in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


def make_loader(dataset: Dataset, *, batch_size: int, sampler=None, batch_sampler=None, workers: int = 0,
                seed: int = 0, drop_last: bool = False, device: str = "cpu") -> DataLoader:
    """The data layer's loader when it takes these arguments, else a plain DataLoader."""
    if batch_sampler is None:
        try:
            from ..data import make_loader as data_make_loader
        except ImportError:
            data_make_loader = None
        if data_make_loader is not None:
            return data_make_loader(dataset, batch_size=batch_size, shuffle=False, workers=workers, seed=seed,
                                    drop_last=drop_last, sampler=sampler, device=device)
    pin = device == "cuda"
    kw = {"batch_sampler": batch_sampler} if batch_sampler is not None else {
        "batch_size": batch_size, "sampler": sampler, "drop_last": drop_last}
    try:
        from ..data.loader import collate_readable as collate
    except ImportError:
        collate = None
    return DataLoader(dataset, num_workers=workers, pin_memory=pin, persistent_workers=workers > 0,
                      collate_fn=collate, **kw)


def iterate(loader: DataLoader):
    """``iter(loader)`` without consuming the global torch generator."""
    with preserved_rng():
        return iter(loader)
