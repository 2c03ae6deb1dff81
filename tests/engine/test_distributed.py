"""DDP under torchrun on CPU (gloo, 2 processes): training, checkpoints, resume, exact evaluation."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from cnnlab.engine import evaluate
from cnnlab.weights import load_weights
from cnnlab.workflows.train import TrainConfig
from cnnlab.workflows.train_setup import build_model, data_setup, open_data

from .conftest import TINY_ARGS, cli_env


def _torchrun(args: list[str], cwd) -> subprocess.CompletedProcess:
    cmd = [
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
    return subprocess.run(cmd, cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=400)


@pytest.mark.slow
def test_two_process_training_resume_and_exact_evaluation(tmp_path, tiny_folder):
    args = [
        "--data",
        str(tiny_folder),
        *TINY_ARGS,
        "--epochs",
        "2",
        "--checkpoint-every",
        "1",
        "--name",
        "ddp",
        "--out",
        "runs",
    ]
    proc = _torchrun(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "runs" / "ddp"
    state = torch.load(run / "state.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng"]) == 2 and state["epoch"] == 2
    assert proc.stdout.count("cnnlab train: training") == 1  # rank 0 alone prints and writes

    resumed = _torchrun(["--resume", str(run), "--epochs", "3"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert [r["epoch"] for r in summary["history"]] == [1, 2, 3]

    # The last epoch was evaluated over 2 processes with the weights in last.safetensors: one process
    # must give exactly the same loss and accuracy on the 13 validation images (batches of 8 and 5).
    cfg = TrainConfig(**{k: v for k, v in json.loads((run / "config.json").read_text()).items()})
    splits, chans = open_data(cfg)
    model = build_model(cfg, splits, chans)
    splits.val.transform = data_setup(cfg, splits, model).eval_transform
    load_weights(model, run / "last.safetensors")
    one = evaluate(model, splits.val, batch_size=cfg.batch_size, num_classes=len(splits.classes),
                   device=torch.device("cpu"))
    last = summary["last"]
    assert one.count == 13
    assert (one.loss, one.top1, one.top5) == (last["val_loss"], last["val_top1"], last["val_top5"])
