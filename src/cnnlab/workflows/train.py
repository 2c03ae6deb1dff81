"""``cnnlab train``: train a registered model on a dataset into a run folder.

``train(TrainConfig(...))`` (or ``cnnlab.train(model="resnet18", data="cifar10:DIR")``) does what the
CLI does: checks the configuration, opens the data, builds the model, prints the effective
configuration, trains with :func:`cnnlab.engine.fit` and writes ``runs/<name>/`` (see
:mod:`cnnlab.engine.runfolder`). Nothing is written before every input has been checked, and an
existing run folder is never replaced without ``overwrite=True``. ``resume="runs/<name>"`` continues
a run exactly where its last checkpoint left it. The run folder, the lock, resume and the closing
summary are :mod:`cnnlab.workflows.run`'s, shared with ``finetune``.

Defaults: ``lenet5`` on the built-in digits (1x32x32, 1,438 train / 359 validation images), Adam at
1e-3 with a cosine schedule over 25 epochs of batches of 16, the digits augmentation with milder
shifts and rotations (see docs/train.md for the measured accuracy and time).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..config import build_config, check_choice, check_number, document
from ..engine import distributed as D
from ..engine.fitconfig import FitConfig
from ..engine.loop import Trainer
from ..engine.runfolder import SKIPPED_LOG, RunFolder
from ..errors import CnnlabError
from ..utils.io import check_output_dir, check_output_file
from ..utils.threads import model_macs, set_threads
from ..weights import weights_metadata
from . import run as R
from .lr_find import auto_lr
from .run import RunContext, TrainResult
from .train_setup import build_model, data_setup, open_data

__all__ = ["TrainConfig", "TrainResult", "train"]


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
    lr: float | str = 1e-3  # peak learning rate; "auto": the LR range test's (lr_rule), saved as the number
    lr_rule: str | None = None  # with --lr auto: steepest (default) | min/10; config.json keeps the rule used
    report: bool = True  # write report.html and interpret/ into the run folder at the end of the run

    def __post_init__(self) -> None:
        # a run records where its data is, not where it was started from (evaluate, interpret and
        # report open the run's data from any working folder); a resumed run's record compares equal
        from ..data.splits import resolve_spec

        self.data = resolve_spec(self.data)
        if isinstance(self.split_file, str) and self.split_file:
            self.split_file = os.path.abspath(os.path.expanduser(self.split_file))

    def check(self) -> None:
        """The loop's checks (FitConfig) and the run's: one place for the CLI and the Python API."""
        super().check()
        if not isinstance(self.model, str) or not self.model:
            raise CnnlabError(f"--model must be a model name such as 'lenet5', got {self.model!r}")
        if not isinstance(self.data, str) or not self.data.strip():
            raise CnnlabError("--data is required: digits, an image folder, a .csv list, cifar10:DIR, ...")
        check_number("val_split", self.val_split, low=0, high=1, low_open=True, high_open=True, none=True)
        check_number("in_chans", self.in_chans, low=1, integer=True, none=True)
        check_number("input_size", self.input_size, low=1, integer=True, none=True)
        check_number("dropout", self.dropout, low=0, high=1, high_open=True, none=True)
        check_choice("device", self.device, ("auto", "cpu", "cuda"))
        R.check_run_name(self.name)
        check_output_dir(self.out, "--out")
        if self.split_file is not None and not Path(self.split_file).is_file():
            check_output_file(self.split_file, "--split-file")  # a new split is saved there
        from ..data.transforms import parse_aug_options, resolve_augment

        if self.augment is not None or self.aug:
            resolve_augment(self.augment, **parse_aug_options(list(self.aug)))

    def check_lr(self) -> None:
        """A number > 0 or "auto" (:mod:`cnnlab.workflows.lr_find`); a rule only with "auto", except in
        a run's config.json, where it records how the run's lr was chosen."""
        from .lr_find import check_lr

        check_lr(self.lr, self.lr_rule, recorded=bool(self.resume))


def train(config: TrainConfig | dict | None = None, *, explicit: set[str] | None = None,
          **overrides) -> TrainResult:
    """Train as configured (see the module docstring); ``overrides`` are TrainConfig fields.
    ``explicit``: the keys the user set (for the resume check; default: every key that differs from
    the default)."""
    return R.run_session(build_config(TrainConfig, config, overrides), explicit, "train", _train)


def _train(ctx: RunContext) -> TrainResult:
    config = ctx.config
    if config.deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    R.seed_everything(config.seed)
    splits, in_chans = open_data(config)
    model = build_model(config, splits, in_chans)
    data = data_setup(config, splits, model)
    splits.train.transform, splits.val.transform = data.train_transform, data.eval_transform
    set_threads(
        3 * config.batch_size * (model_macs(model, data.input_size) or 0) or None
    )  # forward + backward
    R.claim_or_lock(ctx)
    with R.guarded(ctx):
        config = ctx.config = auto_lr(ctx, model, splits.train)  # --lr auto: the range test's lr
        meta = weights_metadata(splits.classes, data.preprocessing, data=config.data)
        folder = RunFolder(ctx.run_dir, meta, quiet=not ctx.info.is_main, clock=ctx.elapsed)
        trainer = Trainer(
            model,
            splits.train,
            splits.val,
            config,
            num_classes=len(splits.classes),
            hooks=folder,
            info=ctx.info,
            device=ctx.device,
        )
        R.start(ctx, trainer)
        if ctx.info.is_main:
            _print_config(config, data, ctx)
        D.barrier(ctx.info)  # the folder exists before any rank logs into it
        splits.report.attach_log(ctx.run_dir / SKIPPED_LOG, write_existing=ctx.info.is_main)
        fit = R.fit_or_explain(trainer, folder, ctx)
        return R.finish(ctx, trainer, folder, splits, fit, "train")


def _print_config(config: TrainConfig, data, ctx: RunContext) -> None:
    verb = "resuming" if ctx.resumed else "training"
    print(f"cnnlab train: {verb} {config.model} on {config.data} -> {ctx.run_dir}")
    items = asdict(config) | {"input": "x".join(map(str, data.input_size)), "augment": data.augment}
    keys = sorted(items)
    width = max(map(len, keys))
    for i in range(0, len(keys), 3):
        print("  " + "  ".join(f"{k:<{width}} {str(items[k]):<14}" for k in keys[i:i + 3]).rstrip())


document(train, TrainConfig)
