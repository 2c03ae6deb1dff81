"""Distributed data parallel (PyTorch's own DDP) under ``torchrun``, and the samplers of the loop.

``torchrun --nproc_per_node=N -m cnnlab train ...`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``;
:func:`setup` then joins the process group (``nccl`` on CUDA, ``gloo`` on CPU). Multi-node runs go
through torchrun's own rendezvous (``--nnodes``, ``--rdzv-endpoint``); nothing here is node-aware.

* :class:`ResumableSampler` is torch's :class:`DistributedSampler` (the order is a pure function of
  ``seed + epoch``; every rank gets the same number of samples, padded by repetition) that can start
  mid-epoch: ``set_epoch(epoch, skip=k)`` drops the first ``k`` samples of this rank's share.
* :class:`ShardedBatches` is the evaluation batch sampler: the validation set is cut into the same
  batches as in one process and rank ``r`` takes batches ``r, r + N, ...``. No sample is padded or
  repeated, and each batch is computed exactly as in one process, so the summed loss and the counts
  over N processes equal the one-process figures bit for bit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler, Sampler


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device_type: str) -> DistInfo:
    """Join the process group when started by torchrun (``WORLD_SIZE`` > 1); otherwise one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    info = DistInfo(dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), dist.get_world_size())
    if device_type == "cuda":
        torch.cuda.set_device(info.local_rank)
    return info


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def any_rank(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on at least one (a collective: call it everywhere)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    return bool(all_reduce_sum(t, info).item() > 0)


def gather_objects(obj, info: DistInfo) -> list:
    """``obj`` of every rank, in rank order (one process: ``[obj]``)."""
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj, info: DistInfo):
    """Rank 0's ``obj`` on every rank (one process: ``obj``)."""
    if not info.enabled:
        return obj
    box = [obj if info.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_buffers(module: torch.nn.Module, info: DistInfo) -> None:
    """Give every rank rank 0's buffers (BatchNorm statistics). DDP does the same at the start of each
    training forward, so training is unchanged; but between the last step of an epoch and evaluation
    each rank holds the statistics of its own last batch, and rank 0's are the ones saved."""
    if info.enabled:
        for buf in module.buffers():
            dist.broadcast(buf, src=0)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


class ResumableSampler(DistributedSampler):
    """DistributedSampler that can start an epoch part-way through (exact mid-epoch resume)."""

    def __init__(self, dataset, info: DistInfo, shuffle: bool, seed: int, drop_last: bool = False) -> None:
        super().__init__(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=shuffle,
                         seed=seed, drop_last=drop_last)
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        super().set_epoch(epoch)
        self.skip = skip

    def __iter__(self):
        indices = list(super().__iter__())
        return iter(indices[self.skip:])

    def __len__(self) -> int:
        return self.num_samples - self.skip


class ShardedBatches(Sampler[list[int]]):
    """Evaluation batches: the one-process batches, dealt to the ranks round-robin, none padded."""

    def __init__(self, n: int, batch_size: int, info: DistInfo) -> None:
        self.n, self.batch_size, self.info = n, batch_size, info
        self.num_batches = (n + batch_size - 1) // batch_size

    def batch_ids(self) -> range:
        return range(self.info.rank, self.num_batches, self.info.world_size)

    def __iter__(self):
        for b in self.batch_ids():
            yield list(range(b * self.batch_size, min((b + 1) * self.batch_size, self.n)))

    def __len__(self) -> int:
        return len(self.batch_ids())
