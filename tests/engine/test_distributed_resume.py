"""DDP (2 gloo processes under torchrun) killed with SIGKILL mid-epoch and resumed ends bitwise equal to
a run that was never interrupted: weights, BatchNorm buffers, metrics of every epoch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cnnlab.engine import evaluate
from cnnlab.weights import load_weights, read_checkpoint
from cnnlab.workflows.train import TrainConfig
from cnnlab.workflows.train_setup import build_model, data_setup, open_data

from .conftest import cli_env

EPOCHS = 3
# Batches of 4: each rank's 15 of the 30 training images make 3 batches an epoch, so the first checkpoint
# (step 1) falls in the middle of epoch 1. MobileNetV2 has BatchNorm buffers and a dropout layer (which
# draws from each rank's own torch generator).
ARGS = ["--in-chans", "1", "--input-size", "32", "--batch-size", "4", "--model", "mobilenet_v2",
        "--epochs", str(EPOCHS), "--checkpoint-every", "1", "--seed", "3", "--optimizer", "adam",
        "--augment", "digits", "--out", "runs"]
ROW_KEYS = (
    "epoch",
    "step",
    "train_loss",
    "train_top1",
    "train_top5",
    "val_loss",
    "val_top1",
    "val_top5",
    "lr",
)

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="finds torchrun's workers in /proc"
)


def _torchrun_cmd(args: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "cnnlab",
        "train",
        *args,
    ]


def _torchrun(args: list[str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        _torchrun_cmd(args), cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=300
    )


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``. torchrun starts each worker in a session of its own, so killing
    torchrun's process group alone would leave the workers training."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state
    found, frontier = [], [pid]
    while frontier:
        kids = [p for p, pp in parents.items() if pp in frontier]
        found += kids
        frontier = kids
    return found


def _kill_after_first_checkpoint(args: list[str], cwd: Path, run: Path) -> None:
    """Start a torchrun, and at its first state.pt SIGKILL torchrun and both workers (a lost machine)."""
    proc = subprocess.Popen(_torchrun_cmd(args), cwd=cwd, env=cli_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 240
        # rank 0 writes config.json after both ranks joined the group: the workers exist by then
        while not (run / "config.json").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        workers = _descendants(proc.pid)
        while not (run / "state.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
    finally:
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def _history(run: Path) -> list[dict]:
    return [
        {k: row[k] for k in ROW_KEYS} for row in json.loads((run / "summary.json").read_text())["history"]
    ]


def _assert_same_weights(got: Path, expected: Path) -> None:
    a, _ = read_checkpoint(got)
    b, _ = read_checkpoint(expected)
    assert a.keys() == b.keys()
    for k in b:
        assert torch.equal(a[k], b[k]), f"{got.name}: {k} differs"


def _one_process_evaluation(run: Path):
    cfg = TrainConfig(**json.loads((run / "config.json").read_text()))
    splits, chans = open_data(cfg)
    model = build_model(cfg, splits, chans)
    splits.val.transform = data_setup(cfg, splits, model).eval_transform
    load_weights(model, run / "last.safetensors")
    return evaluate(model, splits.val, batch_size=cfg.batch_size, num_classes=len(splits.classes),
                    device=torch.device("cpu"))


@pytest.mark.slow
def test_ddp_sigkill_mid_epoch_then_resume_is_bitwise_identical(tmp_path, tiny_folder):
    data = ["--data", str(tiny_folder), *ARGS]
    ref = _torchrun([*data, "--name", "ref"], tmp_path)
    assert ref.returncode == 0, ref.stderr[-3000:]
    ref_run = tmp_path / "runs" / "ref"

    # Each rank evaluates its share of the validation batches with the BatchNorm statistics of rank 0,
    # i.e. of the saved weights: one process evaluating last.safetensors gets the same figures bitwise.
    one, last = _one_process_evaluation(ref_run), _history(ref_run)[-1]
    assert (one.loss, one.top1, one.top5) == (last["val_loss"], last["val_top1"], last["val_top5"])

    for attempt in range(3):
        run = tmp_path / "runs" / f"killed{attempt}"
        _kill_after_first_checkpoint([*data, "--name", run.name], tmp_path, run)
        assert (run / "state.pt").is_file(), "the run ended before its first checkpoint"
        state = torch.load(run / "state.pt", weights_only=True)
        if state["epoch"] < EPOCHS:
            break  # else the run had finished before the kill landed: nothing to resume, try again
    else:
        pytest.fail("every run finished before it could be killed")
    assert state["world_size"] == 2 and state["step"] >= 1

    resumed = _torchrun(["--resume", str(run)], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _assert_same_weights(run / "last.safetensors", ref_run / "last.safetensors")
    _assert_same_weights(run / "best.safetensors", ref_run / "best.safetensors")
    assert _history(run) == _history(ref_run)
