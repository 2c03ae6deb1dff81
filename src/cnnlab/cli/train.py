"""``cnnlab train``: flags -> :class:`~cnnlab.workflows.train.TrainConfig` -> ``train(config)``.

Every flag is also a key of ``--config FILE`` (YAML or TOML, ``batch_size`` or ``batch-size``);
flags win over the file, the file over the defaults. Flags are parsed with ``SUPPRESS`` defaults so
that only the flags actually given override anything.
"""

from __future__ import annotations

import argparse

S = argparse.SUPPRESS
BOOL = argparse.BooleanOptionalAction

# (flag, type or action, help); the destination is the TrainConfig field of the same name.
FLAGS = (
    ("--model", str, "registered model name (default lenet5)"),
    (
        "--data",
        str,
        "digits | image folder | list.csv | cifar10:DIR | cifar100:DIR | mnist:DIR | fashion-mnist:DIR",
    ),
    ("--val-split", float, "validation fraction carved from the training data"),
    ("--split-file", str, "reuse a saved train/val split"),
    ("--epochs", int, "epochs (default 25)"),
    ("--batch-size", int, "batch size per process (default 16)"),
    (
        "--lr",
        str,
        "peak learning rate (default 1e-3), or auto: run the LR range test first and train at its "
        "suggestion (recorded in config.json; lr_find.png)",
    ),
    ("--lr-rule", str, "with --lr auto: steepest (default: the steepest descent of the loss) | min/10"),
    ("--optimizer", str, "sgd | momentum | nesterov | adagrad | rmsprop | adam | adamw (default adam)"),
    ("--momentum", float, "momentum of momentum/nesterov (default 0.9)"),
    ("--schedule", str, "constant | step | cosine | onecycle (default cosine)"),
    ("--warmup", float, "epochs of linear warmup"),
    ("--step-size", float, "epochs between decays of the step schedule (default: a third of the run)"),
    ("--gamma", float, "decay factor of the step schedule (default 0.1)"),
    ("--weight-decay", float, "L2 coefficient (decoupled for adamw)"),
    ("--wd-exclude-norm-bias", BOOL, "no weight decay / L1 on biases and norm parameters"),
    ("--l1", float, "L1 coefficient: l1 * sum(|w|) is added to the loss"),
    ("--dropout", float, "replace the dropout probability of the model's dropout layers"),
    ("--label-smoothing", float, "label smoothing of the cross-entropy"),
    ("--aux-weight", float, "weight of each auxiliary head's loss (default 0.3)"),
    ("--amp", str, "mixed precision: off | bf16 | fp16 (loss scaling)"),
    ("--channels-last", BOOL, "NHWC memory format"),
    ("--compile", BOOL, "torch.compile the model"),
    ("--ema", BOOL, "evaluate and export an exponential moving average of the weights"),
    ("--ema-decay", float, "EMA decay per optimizer step (default 0.999)"),
    ("--grad-clip", float, "clip the global gradient norm to this value"),
    ("--accum-steps", int, "batches per optimizer step (gradient accumulation)"),
    ("--early-stop", int, "stop after PATIENCE epochs without a better validation top-1"),
    ("--checkpoint-every", int, "also checkpoint every N optimizer steps (default: each epoch)"),
    ("--seed", int, "random seed (default 0)"),
    ("--deterministic", BOOL, "deterministic algorithms only"),
    ("--sync-bn", BOOL, "SyncBatchNorm under torchrun"),
    ("--augment", str, "augmentation preset (default: digits on digits, else none)"),
    ("--workers", int, "DataLoader worker processes (default 0)"),
    ("--in-chans", int, "input channels (default: the data's, else the model's)"),
    ("--input-size", int, "input side in pixels (default: the data's, else the model's)"),
    ("--device", str, "auto | cpu | cuda"),
    ("--name", str, "run folder name (default <model>-<data>, numbered when taken)"),
    ("--out", str, "where run folders go (default ./runs)"),
    ("--overwrite", BOOL, "replace an existing run folder of the same name"),
    ("--resume", str, "continue the run in this folder exactly where it stopped"),
    ("--progress", BOOL, "show the progress bar (on a terminal)"),
    ("--report", BOOL, "write report.html and interpret/ at the end of the run (default on; --no-report)"),
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a model (default: LeNet-5 on the built-in digits)",
        description="Train a registered model on a dataset into runs/<name>/: config.json, metrics.csv, "
        "curves.png, confusion.png, best/last weights, the training state, TensorBoard events, a summary, "
        "report.html. "
        "Under torchrun it trains with DDP.")
    p.add_argument("--config", metavar="FILE", default=None, help="YAML or TOML file of the same keys")
    add_flags(p, FLAGS)
    add_aug_flag(p)
    p.set_defaults(func=run)


def add_flags(p: argparse.ArgumentParser, flags, help_overrides: dict[str, str] | None = None) -> None:
    """Add a table of ``(flag, type or BOOL, help)`` rows with ``SUPPRESS`` defaults (only the flags
    given override the config)."""
    for flag, kind, text in flags:
        text = (help_overrides or {}).get(flag, text)
        if kind is BOOL:
            p.add_argument(flag, action=BOOL, default=S, help=text)
        else:
            p.add_argument(flag, type=kind, default=S, help=text)


def add_aug_flag(p) -> None:
    """``--aug NAME=VALUE`` (repeatable): one field of the augmentation preset (kept out of FLAGS, whose
    entries all take one value)."""
    p.add_argument("--aug", action="append", default=S, metavar="NAME=VALUE",
                   help="change one field of the augmentation preset, e.g. --aug rotate=8 (repeatable)")


def run(args) -> int:
    from ..config import apply_overrides, read_config_file
    from ..workflows.train import TrainConfig, train

    given = {k: v for k, v in vars(args).items() if k not in ("config", "func", "command")}
    config = TrainConfig()
    from_file = read_config_file(args.config, section="train") if args.config else {}
    config = apply_overrides(config, from_file, origin=f"{args.config}")
    config = apply_overrides(config, given, origin="flag")
    result = train(config, explicit=set(from_file) | set(given))
    return 130 if result.stopped == "interrupted" else 0
