"""``cnnlab train`` as a user runs it (real subprocesses): bad input, Ctrl-C, config files."""

from __future__ import annotations

import json
import signal
import time

import pytest
import torch

from .conftest import TINY_ARGS, run_cli, start_cli


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("args, message", [
    (["--model", "lenet6"], "unknown model 'lenet6'"),
    (["--data", "no/such/folder"], "unknown data 'no/such/folder'"),
    (["--optimizer", "adamax"], "--optimizer 'adamax' is not one of"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, args, message):
    proc = run_cli(["train", "--out", "runs", *args], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert _files(tmp_path) == []


def test_run_folder_contents_then_refuses_overwrite_then_mismatched_resume(tmp_path, tiny_folder):
    args = ["train", "--data", str(tiny_folder), *TINY_ARGS, "--epochs", "2", "--name", "r", "--out", "runs"]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "runs" / "r"
    expected = {
        "config.json",
        "metrics.csv",
        "curves.png",
        "confusion.png",
        "best.safetensors",
        "last.safetensors",
        "state.pt",
        "tensorboard",
        "summary.json",
        "summary.txt",
    }
    assert expected <= {p.name for p in run.iterdir()}
    assert not [p for p in run.rglob(".*")], "temporary files left behind"
    assert "effective" not in proc.stdout and "lenet5_relu" in proc.stdout  # the config is printed
    state = torch.load(run / "state.pt", weights_only=True)
    assert {"optimizer", "scheduler", "scaler", "rng", "epoch", "step", "batch_in_epoch"} <= set(state)
    assert state["epoch"] == 2 and len(state["rng"][0]) == 4
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,step,train_loss") and len(rows) == 3
    assert any((run / "tensorboard").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped"] == "completed" and summary["best"]["val_top1"] >= 0

    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    again = run_cli(args, cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr and "--overwrite" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    mismatched = run_cli(["train", "--resume", str(run), "--model", "lenet5"], cwd=tmp_path)
    assert mismatched.returncode == 2 and "does not match the run being resumed" in mismatched.stderr
    assert len(mismatched.stderr.strip().splitlines()) == 1
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text((run / "config.json").read_text())
    (tmp_path / "bad" / "state.pt").write_bytes(b"not a checkpoint")
    corrupt = run_cli(["train", "--resume", str(tmp_path / "bad")], cwd=tmp_path)
    assert corrupt.returncode == 2 and "cannot read training state" in corrupt.stderr
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before


def test_config_file_and_flag_precedence(tmp_path, tiny_folder):
    (tmp_path / "c.yaml").write_text(f"data: {tiny_folder}\nepochs: 1\nbatch-size: 8\nlr: 0.5\nin_chans: 1\n"
                                     "input_size: 32\nmodel: lenet5_relu\noptimizer: sgd\n")
    proc = run_cli(
        ["train", "--config", "c.yaml", "--lr", "0.01", "--name", "c", "--out", "runs"], cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    saved = json.loads((tmp_path / "runs" / "c" / "config.json").read_text())
    assert saved["lr"] == 0.01 and saved["optimizer"] == "sgd" and saved["epochs"] == 1
    (tmp_path / "d.toml").write_text("[train]\nepochs = 1\nbogus = 3\n")
    bad = run_cli(["train", "--config", "d.toml"], cwd=tmp_path)
    assert bad.returncode == 2 and "unknown" in bad.stderr and "'bogus'" in bad.stderr


def test_ctrl_c_checkpoints_and_exits_cleanly_then_resumes(tmp_path, tiny_folder):
    args = ["train", "--data", str(tiny_folder), *TINY_ARGS, "--epochs", "40", "--checkpoint-every", "1",
            "--name", "i", "--out", "runs"]
    proc = start_cli(args, cwd=tmp_path)
    state = tmp_path / "runs" / "i" / "state.pt"
    deadline = time.monotonic() + 180
    while not state.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--resume" in out
    saved = torch.load(state, weights_only=True)
    assert 0 < saved["step"] < 40 * 3
    resumed = run_cli(
        ["train", "--resume", str(state.parent), "--epochs", str(saved["epoch"] + 1)], cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    assert torch.load(state, weights_only=True)["epoch"] == saved["epoch"] + 1


def test_non_finite_loss_names_the_step_and_keeps_the_last_checkpoint(tmp_path, tiny_folder):
    args = [
        "train",
        "--data",
        str(tiny_folder),
        *TINY_ARGS,
        "--optimizer",
        "sgd",
        "--lr",
        "1e8",
        "--epochs",
        "5",
        "--checkpoint-every",
        "1",
        "--name",
        "nf",
        "--out",
        "runs",
    ]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert "the loss became" in line and "at step" in line and "last good checkpoint" in line, line
    step = int(line.split("at step ")[1].split(" ")[0])
    state = torch.load(tmp_path / "runs" / "nf" / "state.pt", weights_only=True)
    assert state["step"] == step - 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_files_skipped_inside_loader_workers_reach_the_run_report(tmp_path, tiny_folder):
    import shutil

    import numpy as np
    from PIL import Image

    data = tmp_path / "data"
    shutil.copytree(tiny_folder, data)
    broken = []
    for split, cls in (("train", "class_a"), ("train", "class_c"), ("val", "class_b")):
        path = data / split / cls / "broken.jpg"
        noise = np.random.default_rng(len(broken)).integers(0, 256, (64, 64), dtype=np.uint8)
        Image.fromarray(noise).save(path, quality=95)  # the header reads; the body is cut short
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        broken.append(str(path))
    args = ["train", "--data", str(data), *TINY_ARGS, "--epochs", "2", "--workers", "2", "--name", "r",
            "--out", "runs"]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "runs" / "r"
    summary = json.loads((run / "summary.json").read_text())
    assert sorted(s["path"] for s in summary["skipped_files"]["skipped"]) == sorted(broken)
    assert summary["skipped_files"]["counts"] == {"truncated": 3}
    log = (run / "skipped_files.tsv").read_text().splitlines()
    assert sorted(line.split("\t")[0] for line in log) == sorted(broken)  # each file once, from any worker
    assert "skipped 3 unreadable file(s)" in proc.stdout
    assert "skipped: 3 unreadable image(s), listed in skipped_files.tsv" in (run / "summary.txt").read_text()
    assert sum(proc.stderr.count(f"skipping bad image {p}") for p in broken) <= 3  # one warning per file
