"""``cnnlab lr-find``: flags -> :class:`~cnnlab.workflows.lr_find.LRFindConfig` -> ``lr_find``.

The model, data and optimizer flags are ``cnnlab train``'s (and, for ``--weights``, ``cnnlab finetune``'s
transfer flags): the same table, limited to the settings the range test uses.
"""

from __future__ import annotations

from .finetune import TRANSFER_FLAGS
from .train import BOOL, FLAGS, S, add_aug_flag

OWN_FLAGS = (
    ("--start-lr", float, "first learning rate of the sweep (default 1e-7)"),
    ("--end-lr", float, "last learning rate of the sweep (default 10)"),
    ("--steps", int, "optimizer steps of the sweep, one batch each; the data is cycled (default 100)"),
    ("--smoothing", float, "beta of the loss's moving average (default 0.9)"),
    ("--diverge", float, "stop once the smoothed loss exceeds this multiple of its minimum (default 4)"),
    ("--out", str, "the picture to write (default lr_find.png)"),
)
OWN_HELP = {"--weights": "start from these weights and set up as cnnlab finetune does (default: a new "
                         "network as cnnlab train builds it)"}


# The LRFindConfig fields taken from train's and finetune's tables (named here, not imported, so that
# building the parser does not import torch; a test checks them against the dataclass).
SHARED = ("model", "data", "val_split", "split_file", "batch_size", "optimizer", "momentum", "weight_decay",
          "wd_exclude_norm_bias", "label_smoothing", "aux_weight", "dropout", "grad_clip", "seed", "augment",
          "workers", "in_chans", "input_size", "device", "weights", "regime", "freeze", "frozen_bn",
          "backbone_lr_mult")


def flags():
    """(flag, type, help) of ``cnnlab lr-find``: its own, then the shared rows of train's and finetune's."""
    yield from OWN_FLAGS
    for flag, kind, text in (*TRANSFER_FLAGS, *FLAGS):
        if flag[2:].replace("-", "_") in SHARED:
            yield flag, kind, OWN_HELP.get(flag, text)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "lr-find", help="the learning-rate range test: loss against an exponentially growing lr",
        description="Train for a few steps while the learning rate grows exponentially (Smith 2015, "
        "arXiv:1506.01186), print the suggested learning rates (steepest descent, minimum / 10) and write "
        "lr_find.png. The model and data are set up as cnnlab train (or, with --weights, cnnlab finetune) "
        "would; nothing else is written and no run folder is made.")
    p.add_argument("--config", metavar="FILE", default=None, help="YAML or TOML file of the same keys")
    for flag, kind, text in flags():
        if kind is BOOL:
            p.add_argument(flag, action=BOOL, default=S, help=text)
        else:
            p.add_argument(flag, type=kind, default=S, help=text)
    add_aug_flag(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..config import apply_overrides, read_config_file
    from ..workflows.lr_find import LRFindConfig, lr_find

    given = {k: v for k, v in vars(args).items() if k not in ("config", "func", "command")}
    from_file = read_config_file(args.config, section="lr-find") if args.config else {}
    config = apply_overrides(LRFindConfig(), from_file, origin=f"{args.config}")
    result = lr_find(apply_overrides(config, given, origin="flag"))
    print(result.summary())
    return 0
