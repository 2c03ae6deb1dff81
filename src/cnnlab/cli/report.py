"""``cnnlab report RUN``: flags -> :class:`~cnnlab.workflows.report.ReportConfig` -> ``report``."""

from __future__ import annotations

import argparse

S = argparse.SUPPRESS


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="one self-contained HTML page of a run (pictures embedded, nothing fetched)",
        description="Write RUN/report.html (or -o FILE): summary and configuration, model card, data, "
        "training curves, confusion matrix, per-class table, top losses, calibration and timings, in one "
        "file that references nothing outside itself. The error analysis of cnnlab interpret is reused "
        "when it is up to date, else made.")
    p.add_argument("run", help="a run folder of cnnlab train / finetune")
    p.add_argument("-o", "--out", default=S, help="the HTML file (default RUN/report.html)")
    p.add_argument("--fresh", action=argparse.BooleanOptionalAction, default=S,
                   help="redo the error analysis even when RUN/interpret/ is up to date")
    p.add_argument("--top-k", type=int, default=S, help="images in the top-losses picture (default 9)")
    p.add_argument("--batch-size", type=int, default=S, help="images per forward pass (default 64)")
    p.add_argument("--device", default=S, help="auto | cpu | cuda")
    p.add_argument("--workers", type=int, default=S, help="DataLoader worker processes (default 0)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..workflows.report import report

    given = {k: v for k, v in vars(args).items() if k not in ("run", "func", "command")}
    result = report(args.run, given)
    reused = ", error analysis reused" if result.reused else ""
    print(f"report {result.path} ({result.seconds:.1f} s{reused})")
    return 0
