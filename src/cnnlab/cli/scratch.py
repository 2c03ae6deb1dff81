"""``cnnlab scratch train`` and ``cnnlab scratch gradcheck``: the NumPy engine from the command line
(flags -> :class:`~cnnlab.workflows.scratch.ScratchTrainConfig` -> :mod:`cnnlab.workflows.scratch`)."""

from __future__ import annotations

import argparse


def _train(args: argparse.Namespace) -> int:
    from ..workflows.scratch import ScratchTrainConfig, scratch_train

    fields = ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "l1", "l2", "val_fraction", "seed")
    cfg = ScratchTrainConfig(**{k: getattr(args, k) for k in fields}, progress=not args.no_progress)
    scratch_train(cfg, metrics=args.metrics)
    return 0


def _gradcheck(args: argparse.Namespace) -> int:
    from ..workflows.scratch import scratch_gradcheck

    return 0 if scratch_gradcheck(args.seed) else 1


def register(subparsers) -> None:
    from ..scratch.optim import OPTIMIZERS
    from ..workflows.scratch import ScratchTrainConfig

    parser = subparsers.add_parser("scratch", help="the from-scratch NumPy engine (train, gradcheck)")
    sub = parser.add_subparsers(dest="scratch_command", metavar="ACTION", required=True)
    d = ScratchTrainConfig()
    tr = sub.add_parser("train", help="train the NumPy LeNet-5 on the built-in digits (8x8 -> 32x32)")
    tr.add_argument("--epochs", type=int, default=d.epochs)
    tr.add_argument("--batch-size", type=int, default=d.batch_size)
    tr.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default=d.optimizer)
    tr.add_argument("--lr", type=float, default=None, help="default depends on the optimizer")
    tr.add_argument("--weight-decay", type=float, default=d.weight_decay)
    tr.add_argument("--l1", type=float, default=d.l1, help="L1 penalty strength on weights")
    tr.add_argument("--l2", type=float, default=d.l2, help="L2 penalty strength on weights")
    tr.add_argument("--val-fraction", type=float, default=d.val_fraction)
    tr.add_argument("--seed", type=int, default=d.seed)
    tr.add_argument(
        "--metrics", default=None, help="write the config and per-epoch figures to this JSON file"
    )
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")
    tr.set_defaults(func=_train)
    gc = sub.add_parser("gradcheck", help="numerical gradient check of every scratch layer (float64)")
    gc.add_argument("--seed", type=int, default=0)
    gc.set_defaults(func=_gradcheck)
