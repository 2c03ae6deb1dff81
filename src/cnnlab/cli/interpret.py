"""``cnnlab interpret RUN``: flags -> :class:`~cnnlab.workflows.interpret.InterpretConfig` ->
``interpret``."""

from __future__ import annotations

import argparse

S = argparse.SUPPRESS


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "interpret", help="per-class metrics, most confused pairs, top losses, calibration of a run",
        description="Score a run's validation split with its model and preprocessing and write "
        "RUN/interpret/: per_class.csv (precision, recall, F1, support), top_losses.png (with Grad-CAM), "
        "reliability.png (ECE before/after a fitted temperature), misclassified.csv and interpret.json.")
    p.add_argument("run", help="a run folder of cnnlab train / finetune (or a cnnlab checkpoint)")
    p.add_argument("--data", default=None, help="other data to interpret on (default: the run's own split)")
    p.add_argument("--out", default=S, help="output folder (default RUN/interpret)")
    p.add_argument("--top-k", type=int, default=S, help="images in top_losses.png (default 9)")
    p.add_argument("--confused", type=int, default=S, help="most confused pairs listed (default 10)")
    p.add_argument("--bins", type=int, default=S, help="equal-width confidence bins of the ECE (default 15)")
    p.add_argument("--cam", action=argparse.BooleanOptionalAction, default=S,
                   help="Grad-CAM overlays in top_losses.png (default on)")
    p.add_argument("--save-temperature", action=argparse.BooleanOptionalAction, default=S,
                   help="write the fitted temperature to RUN/calibration.json")
    p.add_argument("--batch-size", type=int, default=S, help="images per forward pass (default 64)")
    p.add_argument("--device", default=S, help="auto | cpu | cuda")
    p.add_argument("--workers", type=int, default=S, help="DataLoader worker processes (default 0)")
    p.add_argument("--val-split", type=float, default=S, help="validation fraction (default: the run's)")
    p.add_argument("--seed", type=int, default=S, help="split seed (default: the run's)")
    p.add_argument("--split-file", default=S, help="a saved split (default: the run's)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..workflows.interpret import interpret

    given = {k: v for k, v in vars(args).items() if k not in ("run", "data", "func", "command")}
    result = interpret(args.run, args.data, given)
    print(result.text())
    return 0
