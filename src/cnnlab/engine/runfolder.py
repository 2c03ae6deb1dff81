"""The run folder ``runs/<name>/``: claimed atomically and locked while a process trains it
(:func:`claim`, :func:`acquire_lock`; the policy is :mod:`cnnlab.workflows.run`'s), and written by
:class:`RunFolder`, the :class:`~cnnlab.engine.loop.Hooks` of ``cnnlab train`` (with the per-epoch
table). Every file is written atomically; rank 0 alone writes.

======================  =======================================================================
config.json             the effective configuration (written before the first step)
state.pt                the training state (:mod:`cnnlab.engine.state`), every checkpoint
last.safetensors        the weights at the last checkpoint (the EMA weights with ``--ema``)
best.safetensors        the weights of the epoch with the best validation top-1
metrics.csv             one row per epoch: losses, top-1/top-5 (%), lr, seconds, images/s
tensorboard/            TensorBoard events of the same rows (``tensorboard --logdir runs``)
curves.png              loss / top-1 / lr curves;  confusion.png: the best weights' confusion matrix
skipped_files.tsv       unreadable images the loaders skipped (path, reason), only when there are any
summary.json / .txt     best and last epoch, how the run ended, its wall time, the skipped files, the files
report.html, interpret/ the run on one page and the analysis behind it (cnnlab.workflows.report)
lr_find.png             with ``--lr auto``: the learning-rate range test run before training
transfer.json           ``cnnlab finetune`` only: regime, freezing, parameters per part, cache
======================  =======================================================================

Weights files carry the metadata of :mod:`cnnlab.weights.meta` (model, classes, preprocessing).
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
import shutil
import tempfile
from pathlib import Path

from tqdm import tqdm

from ..errors import CnnlabError
from ..utils.io import atomic_write, write_json
from ..weights import save_weights
from .loop import Hooks, Trainer
from .state import STATE_FILE, save_state

COLUMNS = (
    "epoch",
    "step",
    "train_loss",
    "train_top1",
    "train_top5",
    "val_loss",
    "val_top1",
    "val_top5",
    "lr",
    "seconds",
    "images_per_s",
)
TABLE = (
    ("epoch", "{:>5}", "{:>5d}"),
    ("train_loss", "{:>10}", "{:>10.4f}"),
    ("train_top1", "{:>10}", "{:>10.2f}"),
    ("val_loss", "{:>8}", "{:>8.4f}"),
    ("val_top1", "{:>8}", "{:>8.2f}"),
    ("val_top5", "{:>8}", "{:>8.2f}"),
    ("lr", "{:>9}", "{:>9.2e}"),
    ("seconds", "{:>7}", "{:>7.1f}"),
    ("images_per_s", "{:>8}", "{:>8.0f}"),
)
HEADER_NAMES = {"images_per_s": "img/s", "seconds": "sec"}
SKIPPED_LOG = "skipped_files.tsv"


def table_header() -> str:
    return " ".join(fmt.format(HEADER_NAMES.get(k, k)) for k, fmt, _ in TABLE)


def table_row(row: dict) -> str:
    return " ".join(fmt.format(row[k]) for k, _, fmt in TABLE)


class RunFolder(Hooks):
    """Writes a run's files as the trainer reports (see the module docstring). ``metadata``: the
    strings saved with every weights file (:func:`cnnlab.weights.weights_metadata`); ``clock``: the
    run's wall seconds so far, saved in the state so that a resumed run reports its whole time."""

    def __init__(self, path: Path, metadata: dict[str, str], quiet: bool = False, clock=None,
                 model=None) -> None:
        self.path, self.metadata, self.quiet, self.clock = Path(path), metadata, quiet, clock
        self.model = model  # the whole model, when the trainer trains only its head (cached features)
        self.last_checkpoint: tuple[int, str] | None = None  # (step, reason)
        self._printed_header = False

    def file(self, name: str) -> Path:
        return self.path / name

    def weights_model(self, trainer: Trainer):
        """What the weights files hold: the EMA weights with ``--ema``, else the (whole) model."""
        return (
            trainer.ema.module if trainer.ema else (self.model if self.model is not None else trainer.model)
        )

    def checkpoint(self, trainer: Trainer, state: dict, reason: str) -> None:
        save_weights(self.weights_model(trainer), self.file("last.safetensors"),
                     {**self.metadata, "epoch": state["epoch"], "step": state["step"]})
        if self.clock is not None:
            state = {**state, "wall_seconds": float(self.clock())}
        save_state(self.file(STATE_FILE), state)  # last: a resume reads the state, never the pair
        self.last_checkpoint = (state["step"], reason)

    def new_best(self, trainer: Trainer, row: dict) -> None:
        save_weights(self.weights_model(trainer), self.file("best.safetensors"),
                     {**self.metadata, "epoch": row["epoch"], "val_top1": f"{row['val_top1']:.4f}"})

    def epoch_end(self, trainer: Trainer, row: dict, result) -> None:
        self.write_metrics(trainer.history)
        self.write_tensorboard(trainer.history)
        self.print_row(row)

    def print_row(self, row: dict) -> None:
        if self.quiet:
            return
        if not self._printed_header:
            tqdm.write(table_header())
            self._printed_header = True
        tqdm.write(table_row(row))

    def write_metrics(self, history: list[dict]) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in history:
            writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
        with atomic_write(self.file("metrics.csv"), "w") as fh:
            fh.write(buf.getvalue())

    def write_tensorboard(self, history: list[dict]) -> None:
        """The whole history as one events file, rebuilt and replaced atomically every epoch."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is a dependency; tolerate a broken install
            return
        with tempfile.TemporaryDirectory(dir=self.path, prefix=".tb.") as tmp:
            writer = SummaryWriter(log_dir=tmp)
            for row in history:
                for part in ("train", "val"):
                    for metric in ("loss", "top1", "top5"):
                        writer.add_scalar(f"{metric}/{part}", row[f"{part}_{metric}"], row["epoch"])
                writer.add_scalar("lr", row["lr"], row["epoch"])
                writer.add_scalar("images_per_s", row["images_per_s"], row["epoch"])
            writer.close()
            events = next(Path(tmp).glob("events.out.tfevents.*"))
            with atomic_write(self.file("tensorboard") / "events.out.tfevents.cnnlab", "wb") as fh:
                with open(events, "rb") as src:
                    shutil.copyfileobj(src, fh)

    def write_summary(self, summary: dict) -> None:
        write_json(self.file("summary.json"), summary)
        best, last = summary.get("best") or {}, summary.get("last") or {}
        lines = [f"run {self.path.name}: {summary['model']} on {summary['data']}, {summary['stopped']} "
                 f"after {len(summary.get('history', [])) or last.get('epoch', 0)} epochs "
                 f"({summary['seconds']:.1f} s)"]
        if best:
            lines.append(f"best: epoch {best['epoch']}, val top-1 {best['val_top1']:.2f}%, "
                         f"top-5 {best['val_top5']:.2f}%, loss {best['val_loss']:.4f}")
        if last:
            lines.append(f"last: epoch {last['epoch']}, val top-1 {last['val_top1']:.2f}%")
        skipped = (summary.get("skipped_files") or {}).get("total", 0)
        if skipped:
            lines.append(f"skipped: {skipped} unreadable image(s), listed in {SKIPPED_LOG}")
        lines.append("files: " + ", ".join(summary["files"]))
        with atomic_write(self.file("summary.txt"), "w") as fh:
            fh.write("\n".join(lines) + "\n")


# -- claiming, locking and cleaning a run folder ---------------------------------------------------

def check_run_name(name: str | None) -> None:
    """A run name is one folder name: no separators, not ``.`` or ``..``, not hidden."""
    if name is None:
        return
    if not name or name in (".", "..") or name.startswith(".") or Path(name).name != name or "\\" in name \
            or "\0" in name:
        raise CnnlabError(
            f"--name {name!r} must be a plain folder name (no '/', not '.' or '..', not starting "
            "with '.'); --out says where run folders go"
        )


def default_run_name(config) -> str:
    kind, _, arg = str(config.data).partition(":")
    tag = Path(arg or kind).name or "data"
    return f"{config.model}-{tag}".replace(" ", "_")


def claim(out: Path, name: str | None, base: str, overwrite: bool) -> Path:
    """Create the run folder atomically (``mkdir`` of the final name): ``out/name``, or the first free
    ``out/base``, ``out/base-2``, ...; a taken ``name`` is an error unless ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise CnnlabError(f"--out {out} is a file; give a folder for the run folders")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CnnlabError(f"cannot create --out {out}: {exc.strerror or exc}") from None
    if name:
        return _claim_named(out / name, overwrite)
    for n in range(1, 10_000):
        path = out / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise CnnlabError(f"cannot create run folder {path}: {exc.strerror or exc}") from None
    raise CnnlabError(f"{out} holds 9,999 runs named {base}-N; give --name")


def _claim_named(path: Path, overwrite: bool) -> Path:
    if path.exists() and overwrite:
        fd = acquire_lock(path) if path.is_dir() else None  # never replace a run that is training now
        trash = path.with_name(f".{path.name}.replaced-{os.getpid()}")
        os.replace(path, trash)
        shutil.rmtree(trash, ignore_errors=True)
        if fd is not None:
            os.close(fd)
    try:
        path.mkdir()
    except FileExistsError:
        raise CnnlabError(
            f"run folder {path} already exists; pass --overwrite to replace it, --resume {path} "
            "to continue it, or another --name"
        ) from None
    except OSError as exc:
        raise CnnlabError(f"cannot create run folder {path}: {exc.strerror or exc}") from None
    return path


def acquire_lock(run_dir: Path) -> int:
    """An exclusive ``flock`` on the run folder itself for this process (see the module docstring):
    no lock file is left behind, and the kernel releases the lock when the process dies."""
    try:
        fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise CnnlabError(f"cannot open run folder {run_dir}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise CnnlabError(f"run {run_dir} is being trained by another process; wait for it to end "
                          "(or stop it) before resuming or replacing it") from None
    return fd


def remove_stale_temporaries(run_dir: Path) -> list[Path]:
    """Delete the temporary files that killed writes left (``.state.*.pt``, ``.metrics.csv.*.tmp``, ...)."""
    removed = []
    for folder in (run_dir, run_dir / "tensorboard"):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.name.startswith("."):
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
                removed.append(p)
    return removed
