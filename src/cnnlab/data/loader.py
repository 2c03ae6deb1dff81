"""DataLoaders that are reproducible and keep the accelerator fed.

* Worker ``k`` of a loader seeded with ``seed`` seeds torch, NumPy and ``random`` from
  ``(seed, k)`` through the loader's own generator, so two runs with the same seed draw the same
  augmentations in the same order for the same number of workers (PyTorch's recipe).
* ``workers > 0``: worker processes decode and augment in parallel with training; they persist
  between epochs and prefetch ``prefetch_factor`` batches each.
* On CUDA the batches are collated into pinned memory, so ``.to(device, non_blocking=True)`` overlaps
  the copy with compute.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import DataLoader, default_collate

PREFETCH_FACTOR = 4  # batches queued per worker


def seed_worker(worker_id: int) -> None:
    """Seed NumPy and ``random`` from the per-worker torch seed that the loader's generator set."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def collate_readable(batch: list):
    """``default_collate`` over the items that are not None (files a dataset dropped as unreadable);
    None when none is left."""
    kept = [item for item in batch if item is not None]
    return default_collate(kept) if kept else None


def make_loader(dataset, *, batch_size: int, shuffle: bool, workers: int = 0, seed: int = 0,
                drop_last: bool = False, sampler=None, device: str | torch.device = "cpu",
                collate_fn=None) -> DataLoader:
    """A DataLoader over ``dataset`` (items ``(image, label)``) as described in the module docstring."""
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    on_cuda = torch.device(device).type == "cuda" and torch.cuda.is_available()
    extra = {"persistent_workers": True, "prefetch_factor": PREFETCH_FACTOR} if workers > 0 else {}
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=workers,
        worker_init_fn=seed_worker,
        generator=generator,
        drop_last=drop_last,
        pin_memory=on_cuda,
        collate_fn=collate_fn or collate_readable,
        **extra,
    )
