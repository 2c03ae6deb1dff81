"""The thread policy under load: the default ``cnnlab train`` (LeNet-5 on the digits) and the NumPy
engine's ``cnnlab scratch train``, on a quiet machine and with one core kept busy by another program,
with one thread, with two threads (what torch and OpenBLAS choose by themselves on 2 cores) and with
cnnlab's own choice (:mod:`cnnlab.utils.threads`).

Each contender is a real ``cnnlab`` subprocess; the thread count is set through the environment
(``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``; "auto": both unset, so cnnlab chooses). The busy core
is a second process spinning in a Python loop. Figures: seconds per epoch from the run's own
``metrics.csv`` (median over the epochs after the first) and the wall time of the command. Writes
``benchmarks/results/threads.json`` (atomically) and prints a table.

    python benchmarks/bench_threads.py          # BENCH_EPOCHS=3 by default
"""

from __future__ import annotations

import csv
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cnnlab.utils.io import write_json

EPOCHS = int(os.environ.get("BENCH_EPOCHS", "3"))
THREADS = {"1 thread": "1", "2 threads": "2", "auto (cnnlab)": None}
LOADS = ("quiet", "one busy core")
RESULTS = Path(__file__).resolve().parent / "results" / "threads.json"


def _env(threads: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CNNLAB_THREADS")}
    if threads is not None:
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
    return env


def train_run(threads: str | None, folder: Path) -> dict:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cnnlab", "train", "--epochs", str(EPOCHS), "--no-progress",
                    "--out", str(folder), "--name", "r"], env=_env(threads), check=True, capture_output=True)
    wall = time.perf_counter() - start
    with open(folder / "r" / "metrics.csv") as fh:
        epochs = [float(row["seconds"]) for row in csv.DictReader(fh)]
    return {"epoch_s": statistics.median(epochs[1:] or epochs), "wall_s": wall}


def scratch_run(threads: str | None, folder: Path) -> dict:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cnnlab", "scratch", "train", "--epochs", "1", "--no-progress"],
                   env=_env(threads), check=True, capture_output=True, cwd=folder)
    return {"wall_s": time.perf_counter() - start}


def measure(load: str) -> dict:
    spinner = None
    if load != "quiet":
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(2.0)
    try:
        out = {}
        for label, threads in THREADS.items():
            with tempfile.TemporaryDirectory() as tmp:
                out[label] = {
                    "train": train_run(threads, Path(tmp)),
                    "scratch": scratch_run(threads, Path(tmp)),
                }
        return out
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()


def main() -> None:
    results = {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "load_before": os.getloadavg()[0], "epochs": EPOCHS,
               "runs": {load: measure(load) for load in LOADS}}
    write_json(RESULTS, results)
    print(f"{'load':<14} {'threads':<14} {'train s/epoch':>13} {'train wall s':>12} {'scratch wall s':>14}")
    for load, rows in results["runs"].items():
        for label, r in rows.items():
            print(f"{load:<14} {label:<14} {r['train']['epoch_s']:>13.2f} {r['train']['wall_s']:>12.1f} "
                  f"{r['scratch']['wall_s']:>14.1f}")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
