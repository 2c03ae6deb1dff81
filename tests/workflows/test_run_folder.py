"""The run folder of ``cnnlab train``/``finetune`` (cnnlab.workflows.run): claimed atomically, locked
while training, refused names, one resume policy, damaged folders, stale temporaries, a full disk."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnlab.cli.main import main
from cnnlab.engine.state import load_state

FAST = ["--epochs", "1", "--batch-size", "64", "--no-progress"]


def _one_error_line(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1, err
    return err[0]


def _cli_env():
    import os

    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


@pytest.mark.slow
def test_two_processes_never_share_a_run_folder(tmp_path):
    def start(*extra):
        return subprocess.Popen([sys.executable, "-m", "cnnlab", "train", *FAST, "--out", "runs", *extra],
                                cwd=tmp_path, env=_cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    same = [start("--name", "same"), start("--name", "same")]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in same]
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 2], results
    refused = next(err for rc, err in results if rc == 2).strip().splitlines()
    assert len(refused) == 1 and "already exists" in refused[0], refused
    summary = json.loads((tmp_path / "runs" / "same" / "summary.json").read_text())
    assert summary["stopped"] == "completed" and len(summary["history"]) == 1

    default = [start(), start()]
    assert [p.wait(timeout=300) for p in default] == [0, 0], [p.stderr.read() for p in default]
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir() if p.name != "same")
    assert folders == ["lenet5-digits", "lenet5-digits-2"]
    for name in folders:
        assert json.loads((tmp_path / "runs" / name / "summary.json").read_text())["stopped"] == "completed"


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", ".hidden", ""])
def test_names_that_leave_the_output_folder_are_refused(tmp_path, capsys, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *FAST, "--out", "runs", "--name", name]) == 2
    assert "--name" in _one_error_line(capsys)
    assert not (tmp_path / "runs").exists() and not (tmp_path.parent / "x").exists()


def test_a_run_being_trained_is_locked(tmp_path, capsys, monkeypatch):
    from cnnlab.engine.runfolder import acquire_lock

    monkeypatch.chdir(tmp_path)
    assert main(["train", *FAST, "--out", "runs", "--name", "r", "--epochs", "2"]) == 0
    run = tmp_path / "runs" / "r"
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], "
                               "os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); "
                               "time.sleep(60)", str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["train", "--resume", str(run), "--epochs", "3"]) == 2
        assert "being trained by another process" in _one_error_line(capsys)
        assert main(["train", *FAST, "--out", "runs", "--name", "r", "--overwrite"]) == 2
        assert "being trained by another process" in _one_error_line(capsys)
    finally:
        holder.kill()
        holder.wait()
    assert (run / "state.pt").is_file()
    fd = acquire_lock(run)  # released by the killed holder
    import os

    os.close(fd)


def test_resume_removes_stale_temporaries_and_adds_up_the_time(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *FAST, "--out", "runs", "--name", "r", "--epochs", "1"]) == 0
    run = tmp_path / "runs" / "r"
    first = json.loads((run / "summary.json").read_text())["seconds"]
    stale = [run / ".state.k1ll3d.pt", run / ".metrics.csv.abc.tmp", run / "tensorboard" / ".events.x.tmp"]
    for p in stale:
        p.write_bytes(b"half a file")
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 0
    assert not any(p.exists() for p in stale)
    summary = json.loads((run / "summary.json").read_text())
    assert len(summary["history"]) == 2 and summary["seconds"] > first  # both sessions' wall time
    assert json.loads((run / "config.json").read_text())["epochs"] == 2


def test_resuming_a_finished_run_says_so_and_changes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *FAST, "--out", "runs", "--name", "r", "--epochs", "1"]) == 0
    run = tmp_path / "runs" / "r"
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 0
    assert "is complete (1 of 1 epochs); nothing to train" in capsys.readouterr().out
    assert main(["train", "--resume", str(run), "--epochs", "0"]) == 2
    assert "--epochs 0 is fewer than the 1 epochs" in _one_error_line(capsys)
    after = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    assert after == before


def test_fewer_epochs_than_trained_is_refused_without_touching_config(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *FAST, "--out", "runs", "--name", "r", "--epochs", "2"]) == 0
    run = tmp_path / "runs" / "r"
    config = (run / "config.json").read_text()
    assert main(["train", "--resume", str(run), "--epochs", "1"]) == 2
    assert "--epochs 1 is fewer than the 2 epochs" in _one_error_line(capsys)
    assert (run / "config.json").read_text() == config


@pytest.mark.parametrize("damage, message", [
    ("garbage", "is damaged (JSONDecodeError"),
    ("list", "is damaged (not a JSON object)"),
    ("bytes", "is damaged (UnicodeDecodeError"),
    ("optimizer", "holds the state of another optimizer than this run's (adam)"),
    ("beyond", "is complete (5 of 2 epochs)"),
])
def test_damaged_run_folders_give_one_line(tmp_path, monkeypatch, capsys, damage, message):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *FAST, "--out", "runs", "--name", "r", "--epochs", "2"]) == 0
    run = tmp_path / "runs" / "r"
    if damage == "optimizer":  # the state of an SGD run in an Adam run's folder
        assert main(["train", *FAST, "--out", "runs", "--name", "s", "--optimizer", "sgd"]) == 0
        (run / "state.pt").write_bytes((tmp_path / "runs" / "s" / "state.pt").read_bytes())
        state = load_state(run / "state.pt")
        state["epoch"] = 1
        torch.save(state, run / "state.pt")
    elif damage == "beyond":
        state = load_state(run / "state.pt")
        state["epoch"] = 5
        torch.save(state, run / "state.pt")
    else:
        text = {"garbage": b"{not json", "list": b"[1, 2]", "bytes": b"\xff\xfe\x00{"}[damage]
        (run / "config.json").write_bytes(text)
    capsys.readouterr()
    rc = main(["train", "--resume", str(run)])
    out = capsys.readouterr()
    if damage == "beyond":
        assert rc == 0 and message in out.out
    else:
        err = [ln for ln in out.err.splitlines() if ln.strip()]
        assert rc == 2 and len(err) == 1 and message in err[0], err


def test_finetune_and_train_share_the_resume_policy(tmp_path, monkeypatch, capsys):
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    for split in ("train", "val"):
        for c in ("a", "b"):
            (tmp_path / "data" / split / c).mkdir(parents=True)
            for i in range(4):
                Image.new("L", (16, 16), 60 * i + (100 if c == "a" else 0)).save(
                    tmp_path / "data" / split / c / f"{i}.png"
                )
    assert main(["train", "--model", "lenet5_relu", *FAST, "--out", "runs", "--name", "src", "--data",
                 str(tmp_path / "data"), "--in-chans", "1", "--input-size", "32"]) == 0
    args = ["finetune", "--model", "lenet5_relu", "--weights", "runs/src", "--data", str(tmp_path / "data"),
            "--epochs", "2", "--out", "runs", "--name", "ft", "--no-progress", "--batch-size", "4"]
    assert main(args) == 0
    assert main(["finetune", "--resume", "runs/ft", "--lr", "0.5"]) == 2
    assert "--lr 0.5 does not match the run being resumed" in _one_error_line(capsys)
    assert main(["finetune", "--resume", "runs/ft"]) == 0
    assert "is complete (2 of 2 epochs)" in capsys.readouterr().out


def _mount_tmpfs(path: Path, size: str, readonly: bool = False) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if readonly else "")
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True
        ).returncode
        == 0
    )


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "4m"):
        pytest.skip("this machine does not let tests mount a tmpfs (needs root in a mount namespace)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_full_disk_is_one_line_and_keeps_the_last_checkpoint(small_disk, monkeypatch, capsys):
    monkeypatch.chdir(small_disk.parent)
    assert main(["train", *FAST, "--out", str(small_disk), "--name", "r"]) == 0
    run = small_disk / "r"
    good = load_state(run / "state.pt")
    free = shutil.disk_usage(small_disk).free
    (small_disk / "filler").write_bytes(b"\0" * max(0, free - 64 * 1024))  # leave 64 KiB
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 2
    line = _one_error_line(capsys)
    assert "cannot write" in line and "No space left on device" in line, line
    assert load_state(run / "state.pt")["step"] == good["step"]  # the previous checkpoint is intact
    assert not [p for p in run.rglob(".*")], "temporary files left behind"


def test_a_read_only_output_is_one_line(tmp_path, monkeypatch, capsys):
    ro = tmp_path / "ro"
    if not _mount_tmpfs(ro, "1m", readonly=True):
        pytest.skip("this machine does not let tests mount a tmpfs (needs root in a mount namespace)")
    try:
        monkeypatch.chdir(tmp_path)
        assert main(["train", *FAST, "--out", str(ro / "runs")]) == 2
        assert "is not writable" in _one_error_line(capsys)
        assert main(["evaluate", "lenet5", "--data", "digits", "--out", str(ro / "r.json")]) == 2
        assert "not writable" in _one_error_line(capsys)
    finally:
        subprocess.run(["umount", "-l", str(ro)], capture_output=True)


def test_a_run_that_fails_before_its_first_checkpoint_frees_its_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            [
                "train",
                *FAST,
                "--out",
                "runs",
                "--name",
                "r",
                "--model",
                "lenet5_relu",
                "--optimizer",
                "sgd",
                "--lr",
                "1e12",
            ]
        )
        == 2
    )
    line = _one_error_line(capsys)
    assert "the loss became" in line and "so the run folder is removed" in line, line
    assert not (tmp_path / "runs" / "r").exists()
    assert main(["train", *FAST, "--out", "runs", "--name", "r"]) == 0  # the name is free
