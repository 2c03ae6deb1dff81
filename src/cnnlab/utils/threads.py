"""How many threads torch's intra-op pool and NumPy's BLAS use for a job.

On a small machine the defaults hurt: torch starts one OpenMP thread per core, and when another
program keeps one of two cores busy, the two threads wait on each other at every operation (OpenMP
threads spin at barriers). A LeNet-5 epoch that takes 1.5 s with one thread then takes up to 47 s
(measured on the project's 2-core machine; ``benchmarks/bench_threads.py``). The policy:

1. ``CNNLAB_THREADS`` or ``OMP_NUM_THREADS`` set by the user wins (``torchrun`` sets the latter to
   1 per process): nothing is changed.
2. Small work - under :data:`SMALL_WORK` multiply-accumulates per optimisation step or batch - runs
   on one thread: there is not enough work per operation to share, so more threads are never faster
   and are much slower on a busy machine.
3. Larger work uses the cores that are idle: the core count minus the 1-minute load average
   (rounded down, at least 1).

The NumPy engine's BLAS always runs on one thread (:func:`blas_threads`): its matrices are small.
"""

from __future__ import annotations

import contextlib
import math
import os

SMALL_WORK = 2e9  # MACs per step below which one thread is used (LeNet-5 on digits: 7e6 per batch of 16)
ENV_VARS = ("CNNLAB_THREADS", "OMP_NUM_THREADS")


def user_threads() -> int | None:
    """The thread count the user set in the environment, if any."""
    for var in ENV_VARS:
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def idle_cores() -> int:
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on every platform
        load = 0.0
    return max(1, min(cores, cores - math.floor(load)))


def choose_threads(macs_per_step: float | None) -> int:
    """The intra-op thread count for work of ``macs_per_step`` (see the module docstring)."""
    user = user_threads()
    if user is not None:
        return user
    if macs_per_step is not None and macs_per_step < SMALL_WORK:
        return 1
    return idle_cores()


def set_threads(macs_per_step: float | None) -> int:
    """Apply :func:`choose_threads` to torch; returns the count."""
    import torch

    n = choose_threads(macs_per_step)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def model_macs(model, input_size) -> float | None:
    """Multiply-accumulates of one forward pass of one image (None when it cannot be counted)."""
    try:
        from ..analysis.profiler import profile

        return float(profile(model, tuple(input_size)).macs)
    except Exception:  # counting is advice for the thread policy, never a reason to fail a run
        return None


@contextlib.contextmanager
def blas_threads(n: int):
    """NumPy's BLAS (OpenBLAS, MKL) limited to ``n`` threads inside the block (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn, a dependency
        yield
        return
    if user_threads() is not None:
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield
