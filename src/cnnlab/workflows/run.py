"""What every training workflow (``train``, ``finetune``) does around the loop: one home, one policy.

* **The run folder** ``<out>/<name>/`` is claimed atomically (``mkdir`` of the final name): of two
  processes given the same ``--name`` one gets a one-line error; default names (``<model>-<data>``,
  then ``-2``, ``-3``, ...) are claimed by trying each in turn, so two runs started together get two
  folders. A name that is not a single folder name (``../x``, ``a/b``) is refused. A run that fails
  before its first checkpoint removes the folder it claimed, so the name stays free.
* **One run at a time**: the process that trains a folder holds an exclusive ``flock`` on the folder
  (released by the kernel when the process dies); a second ``--resume`` of the same run is a one-line
  error. Temporary files of writes that a kill interrupted are removed on resume.
* **Resume** (one policy for every workflow): the saved ``config.json`` is the run's configuration;
  a flag the user gives must equal the saved value, except :data:`RESUME_FREE` (``--epochs`` may grow,
  never fall below the epochs already trained). A run that has nothing left to train says so and
  leaves its folder untouched.
* **Seeding**: Python's, NumPy's and torch's generators from one integer.
* **Finishing**: pictures, ``summary.json``/``summary.txt`` (the wall time of every session of the
  run added up), the closing lines.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from ..config import apply_overrides
from ..engine import distributed as D
from ..engine import runfolder as F
from ..engine.runfolder import SKIPPED_LOG, check_run_name  # noqa: F401  (check_run_name: the configs' check)
from ..engine.state import STATE_FILE, load_state
from ..errors import CheckpointError, CnnlabError
from ..utils.io import write_json

# Settings that may change when a run is resumed; any other differing setting is an error.
RESUME_FREE = {"epochs", "workers", "device", "progress", "checkpoint_every", "early_stop", "report"}
NOT_COMPARED = {"resume", "overwrite", "name", "out"}
RUN_FILES = (
    "config.json",
    "metrics.csv",
    "curves.png",
    "confusion.png",
    "best.safetensors",
    "last.safetensors",
    STATE_FILE,
    "tensorboard",
    SKIPPED_LOG,
    "summary.json",
    "summary.txt",
    "lr_find.png",
    "interpret",
    "report.html",
)


@dataclass
class TrainResult:
    run_dir: Path
    best: dict  # the row of the best validation top-1 (keys as metrics.csv)
    last: dict
    stopped: str  # completed | early-stop | interrupted | complete (resumed a finished run: nothing to do)
    seconds: float  # wall time of the whole run, every session added up
    files: dict[str, Path] = field(default_factory=dict)


@dataclass
class RunContext:
    """One training session of a run: its configuration, folder, process and device."""

    config: object  # TrainConfig or a subclass
    info: D.DistInfo
    device: torch.device  # this rank's device
    state: dict | None = None  # the training state being resumed
    started: float = field(default_factory=time.perf_counter)
    run_dir: Path | None = None
    created: bool = False  # this session made run_dir (and removes it when it fails before a checkpoint)
    lock: int | None = None  # file descriptor holding the run folder's lock (rank 0)

    @property
    def resumed(self) -> bool:
        return self.state is not None

    def elapsed(self) -> float:
        """Wall seconds of the run so far: earlier sessions (saved in the state) plus this one."""
        before = float(self.state.get("wall_seconds", 0.0)) if self.state else 0.0
        return before + time.perf_counter() - self.started


def run_session(config, explicit: set[str] | None, command: str, body) -> TrainResult:
    """The frame of every training workflow: resume (when asked), check the configuration, join the
    process group (torchrun), run ``body(ctx)`` (nothing when a resumed run is complete), leave together."""
    state = None
    if config.resume:
        config, state = resume_config(config, explicit)
    config.check()
    device = resolve_device(config.device)
    info = D.setup(device.type)
    ctx = RunContext(config, info, rank_device(device, info), state)
    try:
        if ctx.resumed and is_complete(config, state):
            return complete_result(ctx, command)
        result = body(ctx)
        D.barrier(info)  # leave together: a rank that tears gloo down while rank 0 still writes can abort
        return result
    finally:
        D.teardown()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise CnnlabError(f"--device {name!r} is not one of auto, cpu, cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise CnnlabError("--device cuda: no CUDA device is available here; use --device cpu")
    return torch.device(name)


def rank_device(device: torch.device, info: D.DistInfo) -> torch.device:
    return torch.device("cuda", info.local_rank) if device.type == "cuda" else device


def claim_run_dir(ctx: RunContext) -> Path:
    """Rank 0 claims the run folder (:func:`cnnlab.engine.runfolder.claim`); every rank gets its path."""
    result = None
    if ctx.info.is_main:
        try:
            result = str(F.claim(Path(ctx.config.out), ctx.config.name, F.default_run_name(ctx.config),
                                 ctx.config.overwrite))
        except CnnlabError as exc:
            result = exc
    result = D.broadcast_object(result, ctx.info)
    if isinstance(result, Exception):
        raise CnnlabError(str(result))
    ctx.run_dir, ctx.created = Path(result), ctx.info.is_main
    if ctx.info.is_main:
        ctx.lock = F.acquire_lock(ctx.run_dir)
    return ctx.run_dir


def release(ctx: RunContext) -> None:
    if ctx.lock is not None:
        os.close(ctx.lock)
        ctx.lock = None


@contextlib.contextmanager
def guarded(ctx: RunContext):
    """Remove a folder this session claimed when the session fails before its first checkpoint."""
    try:
        yield
    except BaseException:
        if ctx.created and ctx.run_dir is not None and not (ctx.run_dir / STATE_FILE).exists():
            release(ctx)
            shutil.rmtree(ctx.run_dir, ignore_errors=True)
        raise
    finally:
        release(ctx)


def claim_or_lock(ctx: RunContext) -> None:
    """A new run claims its folder; a resumed one locks it and clears what killed writes left."""
    if not ctx.resumed:
        claim_run_dir(ctx)
        return
    ctx.run_dir = Path(ctx.config.resume)
    if ctx.info.is_main:
        ctx.lock = F.acquire_lock(ctx.run_dir)
        F.remove_stale_temporaries(ctx.run_dir)


def start(ctx: RunContext, trainer) -> None:
    """Restore the resumed state (or seed the training stream) and write config.json (rank 0)."""
    if ctx.resumed:
        load_resume_state(trainer, ctx.state, ctx.run_dir)
    else:
        seed_everything(ctx.config.seed + ctx.info.rank)  # the training stream, independent of the init
    if ctx.info.is_main:
        write_run_config(ctx.run_dir, ctx.config)


def fit_or_explain(trainer, folder, ctx: RunContext):
    """``trainer.fit()``; a non-finite loss says whether a good checkpoint is left."""
    from ..engine.loop import NonFiniteLoss

    try:
        return trainer.fit()
    except NonFiniteLoss as exc:
        if folder.last_checkpoint:
            step, _ = folder.last_checkpoint
            where = f"the last good checkpoint ({ctx.run_dir / STATE_FILE}, step {step}) is intact"
        else:
            where = "no checkpoint was saved before it, so the run folder is removed"
        raise NonFiniteLoss(f"{exc}; {where}; lower --lr, add --grad-clip or check the data") from None


def write_run_config(run_dir: Path, config) -> None:
    saved = {k: v for k, v in asdict(config).items() if k not in NOT_COMPARED}
    write_json(run_dir / "config.json", saved | {"name": run_dir.name, "out": str(run_dir.parent)})


# -- resume -----------------------------------------------------------------------------------------

def read_run_config(run_dir: Path, config_cls):
    """The configuration saved in ``run_dir/config.json`` as ``config_cls``; a damaged file is one line."""
    cfg_file = run_dir / "config.json"
    if not run_dir.is_dir():
        raise CnnlabError(f"--resume {run_dir}: no such run folder; give runs/<name>")
    if not cfg_file.is_file():
        raise CnnlabError(f"--resume {run_dir}: not a run folder (no config.json); give runs/<name>")
    try:
        data = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CnnlabError(f"{cfg_file} is damaged ({type(exc).__name__}: {str(exc)[:80]}); the run cannot be "
                          "resumed from it") from None
    if not isinstance(data, dict):
        raise CnnlabError(f"{cfg_file} is damaged (not a JSON object); the run cannot be resumed from it")
    if data.get("step_size") == 0:  # cnnlab 0.1 wrote 0 for "unset"
        data["step_size"] = None
    return apply_overrides(config_cls(), data, origin=str(cfg_file))


def resume_config(config, explicit: set[str] | None):
    """(the resumed run's configuration, its training state); see the module docstring."""
    run_dir = Path(config.resume)
    saved = read_run_config(run_dir, type(config))
    default = type(config)()
    given = explicit if explicit is not None else {f.name for f in fields(config)
                                                   if getattr(config, f.name) != getattr(default, f.name)}
    changes = {}
    for key in sorted(given - NOT_COMPARED):
        new, old = getattr(config, key), getattr(saved, key)
        if new == old:
            continue
        if key not in RESUME_FREE:
            raise CnnlabError(
                f"--{key.replace('_', '-')} {new} does not match the run being resumed "
                f"({key} = {old} in {run_dir / 'config.json'}); drop the flag or start a new run"
            )
        changes[key] = new
    state = load_state(run_dir / STATE_FILE)
    resumed = apply_overrides(saved, {**changes, "resume": str(run_dir)})
    done = int(state.get("epoch", 0))
    if "epochs" in changes and resumed.epochs < done:
        raise CnnlabError(
            f"--epochs {resumed.epochs} is fewer than the {done} epochs run {run_dir} has trained; "
            f"give --epochs {done + 1} or more to train it longer"
        )
    return resumed, state


def is_complete(config, state: dict) -> bool:
    """Whether a resumed run has nothing left to train (all epochs, or its early stop reached)."""
    if state.get("batch_in_epoch", 0):
        return False
    if int(state.get("epoch", 0)) >= config.epochs:
        return True
    return bool(config.early_stop) and int(state.get("bad_epochs", 0)) >= config.early_stop


def complete_result(ctx: RunContext, command: str) -> TrainResult:
    """The result of resuming a finished run: nothing is trained or written."""
    run_dir, state = Path(ctx.config.resume), ctx.state
    history = state.get("history") or []
    best = {k: v for k, v in (state.get("best") or {}).items() if k != "confusion"}
    if ctx.info.is_main:
        print(
            f"cnnlab {command}: run {run_dir} is complete ({state.get('epoch', 0)} of {ctx.config.epochs} "
            f"epochs); nothing to train. Give --epochs N (more than {state.get('epoch', 0)}) to train it "
            "longer."
        )
    return TrainResult(run_dir, best, history[-1] if history else {}, "complete",
                       float(state.get("wall_seconds", 0.0)), _present(run_dir))


def load_resume_state(trainer, state: dict, run_dir: Path) -> None:
    saved_groups = (state.get("optimizer") or {}).get("param_groups") or [{}]
    needed = set(trainer.optimizer.param_groups[0]) - {"params"}
    if any(needed - set(group) for group in saved_groups):
        raise CheckpointError(f"{run_dir / STATE_FILE} holds the state of another optimizer than this run's "
                              f"({trainer.config.optimizer}); it cannot be resumed with these settings")
    try:
        trainer.load_state_dict(state)
    except Exception as exc:  # a state from other settings fails anywhere in torch's loaders
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise CheckpointError(f"{run_dir / STATE_FILE} does not fit this run's model and settings "
                              f"({type(exc).__name__}: {first})") from None


# -- finishing --------------------------------------------------------------------------------------

def _present(run_dir: Path) -> dict[str, Path]:
    return {name: run_dir / name for name in RUN_FILES if (run_dir / name).exists()}


def finish(ctx: RunContext, trainer, folder, splits, fit, command: str) -> TrainResult:
    """Pictures, the summary files and the closing lines (rank 0); the result on every rank."""
    from ..viz.plots import plot_confusion, plot_curves

    config, run_dir = ctx.config, ctx.run_dir
    best = {k: v for k, v in fit.best.items() if k != "confusion"}
    last = fit.history[-1] if fit.history else {}
    D.barrier(ctx.info)  # every rank's loader workers have finished logging skipped files
    seconds = ctx.elapsed()
    if ctx.info.is_main:
        title = f"{config.model} on {config.data}"
        if fit.history:
            plot_curves(fit.history, folder.file("curves.png"), title=title)
            if fit.best.get("confusion") is not None:
                plot_confusion(fit.best["confusion"], splits.classes, folder.file("confusion.png"),
                               title=f"{title}, best epoch {fit.best['epoch']}")
        skipped = splits.report.sync()
        present = [n for n in RUN_FILES if (run_dir / n).exists() or n.startswith("summary")]
        summary = {"model": config.model, "data": config.data, "stopped": fit.stopped, "seconds": seconds,
                   "steps": fit.step, "best": best, "last": last, "history": fit.history,
                   "skipped_files": skipped.to_dict(), "files": present}
        folder.write_summary(summary)
        if len(skipped):
            counts = ", ".join(f"{k}: {v}" for k, v in skipped.counts.items())
            print(f"skipped {len(skipped)} unreadable file(s) ({counts}); listed in {run_dir / SKIPPED_LOG}")
        if fit.stopped == "interrupted":
            print(f"cnnlab {command}: interrupted at step {fit.step}; checkpoint saved. "
                  f"Continue with: cnnlab {command} --resume {run_dir}")
        if best:
            print(f"best val top-1 {best['val_top1']:.2f}% (epoch {best['epoch']}), {seconds:.1f} s; "
                  f"run folder {run_dir}")
        if getattr(config, "report", False) and fit.history and fit.stopped != "interrupted":
            from .report import end_of_run

            if end_of_run(run_dir, ctx.device):  # reads summary.json; then the summary lists its files
                folder.write_summary(summary | {"files": [n for n in RUN_FILES if (run_dir / n).exists()]})
    return TrainResult(run_dir, best, last, fit.stopped, seconds, _present(run_dir))
