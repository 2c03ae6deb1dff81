"""Kill -9 at random moments, resume, and end bitwise equal to a run that was never interrupted."""

from __future__ import annotations

import random
import signal
import time

import pytest
import torch

from cnnlab.weights import read_checkpoint

from .conftest import TINY_ARGS, run_cli, start_cli

ARGS = [*TINY_ARGS, "--epochs", "4", "--checkpoint-every", "1", "--seed", "3", "--optimizer", "adam",
        "--augment", "digits", "--out", "runs"]


def _kill_at(args: list[str], cwd, delay: float) -> bool:
    """Start a run, wait for its first checkpoint plus ``delay`` seconds, SIGKILL it; True if it was
    still running when killed."""
    proc = start_cli(args, cwd)
    state = cwd / "runs" / args[args.index("--name") + 1] / "state.pt"
    deadline = time.monotonic() + 240
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(delay)
    alive = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return alive


@pytest.mark.slow
def test_sigkill_then_resume_is_bitwise_identical(tmp_path, tiny_folder):
    data = ["train", "--data", str(tiny_folder), *ARGS]
    ref = run_cli([*data, "--name", "ref"], cwd=tmp_path)
    assert ref.returncode == 0, ref.stderr
    expected, _ = read_checkpoint(tmp_path / "runs" / "ref" / "last.safetensors")
    rng = random.Random(7)
    killed = 0
    for i, delay in enumerate(sorted(rng.uniform(0.0, 1.5) for _ in range(3))):
        name = f"k{i}"
        if not _kill_at([*data, "--name", name], tmp_path, delay):
            continue  # it finished before the kill: nothing to test for this delay
        killed += 1
        state = torch.load(tmp_path / "runs" / name / "state.pt", weights_only=True)
        assert state["step"] >= 1
        resumed = run_cli(["train", "--resume", str(tmp_path / "runs" / name)], cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        got, _ = read_checkpoint(tmp_path / "runs" / name / "last.safetensors")
        assert got.keys() == expected.keys()
        for k in expected:
            assert torch.equal(got[k], expected[k]), f"kill {i} (after {delay:.2f} s): {k} differs"
    assert killed >= 2


@pytest.mark.slow
def test_resume_is_bitwise_whatever_the_loader_worker_counts(tmp_path, tiny_folder):
    """Augmentations are seeded per batch, not per worker: a run killed while 2 worker processes load
    its batches and resumed with none ends equal to a run that used no workers at all."""
    data = ["train", "--data", str(tiny_folder), *ARGS]
    ref = run_cli([*data, "--name", "ref"], cwd=tmp_path)
    assert ref.returncode == 0, ref.stderr
    expected, _ = read_checkpoint(tmp_path / "runs" / "ref" / "last.safetensors")
    for delay in (0.3, 0.0):  # the second try kills right after the first checkpoint
        name = f"w{delay}"
        if _kill_at([*data, "--workers", "2", "--name", name], tmp_path, delay):
            break
    else:
        pytest.fail("the run finished before it could be killed")
    state = torch.load(tmp_path / "runs" / name / "state.pt", weights_only=True)
    assert state["step"] >= 1
    resumed = run_cli(["train", "--resume", str(tmp_path / "runs" / name), "--workers", "0"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    got, _ = read_checkpoint(tmp_path / "runs" / name / "last.safetensors")
    for k in expected:
        assert torch.equal(got[k], expected[k]), f"{k} differs"
