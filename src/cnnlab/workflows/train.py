"""``cnnlab train``: train a registered model on a dataset into a run folder.

``train(TrainConfig(...))`` (or ``cnnlab.train(model="resnet18", data="cifar10:DIR")``) does what the
CLI does: checks the configuration, opens the data, builds the model, prints the effective
configuration, trains with :func:`cnnlab.engine.fit` and writes ``runs/<name>/`` (see
:mod:`cnnlab.engine.runfolder`). Nothing is written before every input has been checked, and an
existing run folder is never replaced without ``overwrite=True``. ``resume="runs/<name>"`` continues
a run exactly where its last checkpoint left it.

Defaults: ``lenet5`` on the built-in digits (1x32x32, 1,438 train / 359 validation images), Adam at
1e-3 with a cosine schedule over 25 epochs of batches of 16, the digits augmentation with milder
shifts and rotations (see docs/train.md for the measured accuracy and time).
"""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from ..config import apply_overrides
from ..engine import distributed as D
from ..engine.fitconfig import FitConfig
from ..engine.loop import FitResult, NonFiniteLoss, Trainer
from ..engine.runfolder import SKIPPED_LOG, RunFolder
from ..engine.state import STATE_FILE, load_state
from ..errors import CheckpointError, CnnlabError
from ..utils.io import write_json
from .train_setup import build_model, data_setup, open_data, resolve_device, run_name

# Settings that may change when a run is resumed; any other differing setting is an error.
RESUME_FREE = {"epochs", "workers", "device", "progress", "checkpoint_every", "early_stop"}
NOT_COMPARED = {"resume", "overwrite", "name", "out"}


@dataclass
class TrainConfig(FitConfig):
    """Everything a run needs; saved as ``config.json``. The loop's keys are documented in FitConfig."""

    model: str = "lenet5"
    data: str = "digits"  # digits | image folder | file.csv | cifar10:DIR | cifar100:DIR | mnist:DIR | ...
    val_split: float | None = None  # fraction carved out of the training data (default: the data's own)
    split_file: str | None = None  # reuse a saved split
    in_chans: int | None = None  # default: the data's native channels, else the model's default (3)
    input_size: int | None = None  # side in pixels; default: the data's native size, else the model's
    augment: str | None = None  # a preset of cnnlab.data.PRESETS; default: see train_setup.AUTO_AUGMENT
    aug: list[str] = field(default_factory=list)  # preset field overrides, "NAME=VALUE" (e.g. "rotate=8")
    dropout: float | None = None  # replaces p of every nn.Dropout of the model
    name: str | None = None  # run folder name; default <model>-<data>, numbered when taken
    out: str = "runs"
    overwrite: bool = False
    resume: str | None = None  # a run folder to continue
    device: str = "auto"  # auto | cpu | cuda
    deterministic: bool = False  # torch.use_deterministic_algorithms (slower on GPU)
    epochs: int = 25
    batch_size: int = 16
    lr: float = 1e-3


@dataclass
class TrainResult:
    run_dir: Path
    best: dict  # the row of the best validation top-1 (keys as metrics.csv)
    last: dict
    stopped: str  # completed | early-stop | interrupted
    seconds: float
    files: dict[str, Path] = field(default_factory=dict)


def train(config: TrainConfig | dict | None = None, *, explicit: set[str] | None = None, **overrides) -> TrainResult:
    """Train as configured (see the module docstring). ``explicit``: the keys the user set (for the
    resume check; default: every key that differs from the default)."""
    config = _as_config(config, overrides)
    started = time.perf_counter()
    state = None
    if config.resume:
        config, state = _resume_config(config, explicit)
    config.check()
    device = resolve_device(config.device)
    info = D.setup(device.type)
    try:
        result = _train(config, state, device, info, started)
        D.barrier(info)  # leave together: a rank that tears gloo down while rank 0 still writes can abort
        return result
    finally:
        D.teardown()


def _as_config(config, overrides: dict) -> TrainConfig:
    if config is None:
        config = TrainConfig()
    elif isinstance(config, dict):
        config = apply_overrides(TrainConfig(), config)
    return apply_overrides(config, overrides) if overrides else config


def _train(config: TrainConfig, state: dict | None, device, info, started: float) -> TrainResult:
    if config.deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    run_dir = Path(config.resume) if config.resume else _new_run_dir(config)
    D.barrier(info)  # every rank has chosen the same folder before rank 0 creates it
    _seed_everything(config.seed)
    splits, in_chans = open_data(config)
    model = build_model(config, splits, in_chans)
    data_cfg = data_setup(config, splits, model)
    splits.train.transform, splits.val.transform = data_cfg.train_transform, data_cfg.eval_transform
    folder = RunFolder(run_dir, _metadata(config, splits, data_cfg), quiet=not info.is_main)
    trainer = Trainer(model, splits.train, splits.val, config, num_classes=len(splits.classes), hooks=folder,
                      info=info, device=_rank_device(device, info))
    if state is not None:
        _load_resume_state(trainer, state, run_dir)
    else:
        _seed_everything(config.seed + info.rank)  # the training stream, independent of the model's init
    if info.is_main:
        _prepare_folder(run_dir, config, state is not None)
        _print_config(config, data_cfg, run_dir, resumed=state is not None)
    D.barrier(info)  # the folder exists (and an --overwrite has emptied it) before any rank logs into it
    splits.report.attach_log(run_dir / SKIPPED_LOG, write_existing=info.is_main)  # shared by loader workers
    fit = _fit(trainer, folder, run_dir)
    return _finish(config, trainer, folder, splits, fit, run_dir, time.perf_counter() - started, info)


def _fit(trainer: Trainer, folder: RunFolder, run_dir: Path) -> FitResult:
    try:
        return trainer.fit()
    except NonFiniteLoss as exc:
        if folder.last_checkpoint:
            step, _ = folder.last_checkpoint
            where = f"the last good checkpoint ({run_dir / STATE_FILE}, step {step}) is intact"
        else:
            where = "no checkpoint was saved before it"
        raise NonFiniteLoss(f"{exc}; {where}; lower --lr, add --grad-clip or check the data") from None


def _new_run_dir(config: TrainConfig) -> Path:
    out = Path(config.out)
    if config.name:
        path = out / config.name
        if path.exists() and not config.overwrite:
            raise CnnlabError(f"run folder {path} already exists; pass --overwrite to replace it, "
                              f"--resume {path} to continue it, or another --name")
        return path
    return run_name(out, config)


def _prepare_folder(run_dir: Path, config: TrainConfig, resumed: bool) -> None:
    if not resumed:
        if run_dir.exists() and config.overwrite:
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", {k: v for k, v in asdict(config).items() if k not in NOT_COMPARED | {"resume"}}
               | {"name": run_dir.name, "out": str(run_dir.parent)})


def _resume_config(config: TrainConfig, explicit: set[str] | None) -> tuple[TrainConfig, dict]:
    run_dir = Path(config.resume)
    cfg_file = run_dir / "config.json"
    if not cfg_file.is_file():
        raise CnnlabError(f"--resume {run_dir}: not a run folder (no config.json); give runs/<name>")
    saved = apply_overrides(TrainConfig(), json.loads(cfg_file.read_text()), origin="config.json")
    default = TrainConfig()
    given = explicit if explicit is not None else {f.name for f in fields(config)
                                                   if getattr(config, f.name) != getattr(default, f.name)}
    changes = {}
    for key in sorted(given - NOT_COMPARED):
        new, old = getattr(config, key), getattr(saved, key)
        if new == old:
            continue
        if key not in RESUME_FREE:
            raise CnnlabError(f"--{key.replace('_', '-')} {new} does not match the run being resumed "
                              f"({key} = {old} in {cfg_file}); drop the flag or start a new run")
        changes[key] = new
    state = load_state(run_dir / STATE_FILE)
    return apply_overrides(saved, {**changes, "resume": str(run_dir)}), state


def _load_resume_state(trainer: Trainer, state: dict, run_dir: Path) -> None:
    try:
        trainer.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise CheckpointError(f"{run_dir / STATE_FILE} does not fit this run's model and settings ({first})") from None


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rank_device(device: torch.device, info) -> torch.device:
    return torch.device("cuda", info.local_rank) if device.type == "cuda" else device


def _metadata(config: TrainConfig, splits, data_cfg) -> dict[str, str]:
    return {"data": config.data, "classes": json.dumps(list(splits.classes)),
            "input_size": json.dumps(list(data_cfg.input_size)), "mean": json.dumps(list(data_cfg.mean)),
            "std": json.dumps(list(data_cfg.std))}


def _print_config(config: TrainConfig, data_cfg, run_dir: Path, resumed: bool) -> None:
    verb = "resuming" if resumed else "training"
    print(f"cnnlab train: {verb} {config.model} on {config.data} -> {run_dir}")
    items = asdict(config) | {"input": "x".join(map(str, data_cfg.input_size)), "augment": data_cfg.augment}
    keys = sorted(items)
    width = max(map(len, keys))
    for i in range(0, len(keys), 3):
        print("  " + "  ".join(f"{k:<{width}} {str(items[k]):<14}" for k in keys[i:i + 3]).rstrip())


def _finish(config, trainer, folder, splits, fit: FitResult, run_dir, seconds, info) -> TrainResult:
    from .train_setup import write_pictures

    best = {k: v for k, v in fit.best.items() if k != "confusion"}
    last = fit.history[-1] if fit.history else {}
    files = {name: run_dir / name for name in ("config.json", "metrics.csv", "curves.png", "confusion.png",
                                                "best.safetensors", "last.safetensors", STATE_FILE,
                                                "tensorboard", SKIPPED_LOG, "summary.json", "summary.txt")}
    D.barrier(info)  # every rank's loader workers have finished logging skipped files
    if info.is_main:
        if fit.history:
            write_pictures(folder, fit, splits.classes, f"{config.model} on {config.data}")
        skipped = splits.report.sync()
        present = [n for n, p in files.items() if p.exists() or n.startswith("summary")]
        folder.write_summary({"model": config.model, "data": config.data, "stopped": fit.stopped,
                              "seconds": seconds, "steps": fit.step, "best": best, "last": last,
                              "history": fit.history, "skipped_files": skipped.to_dict(), "files": present})
        if len(skipped):
            print(f"skipped {len(skipped)} unreadable file(s) ({', '.join(f'{k}: {v}' for k, v in skipped.counts.items())}); "
                  f"listed in {run_dir / SKIPPED_LOG}")
        _print_end(fit, best, run_dir, seconds)
    return TrainResult(run_dir, best, last, fit.stopped, seconds, {k: p for k, p in files.items() if p.exists()})


def _print_end(fit: FitResult, best: dict, run_dir: Path, seconds: float) -> None:
    if fit.stopped == "interrupted":
        print(f"cnnlab train: interrupted at step {fit.step}; checkpoint saved. "
              f"Continue with: cnnlab train --resume {run_dir}")
    if best:
        print(f"best val top-1 {best['val_top1']:.2f}% (epoch {best['epoch']}), {seconds:.1f} s; run folder {run_dir}")
