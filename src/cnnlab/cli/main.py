"""``cnnlab`` entry point: builds the argument parser from the subcommand modules and runs one.

Errors a user can cause (:class:`cnnlab.errors.CnnlabError`) print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from ..errors import CnnlabError

# Each module defines ``register(subparsers)``; its parsers set ``func(args) -> int``.
SUBCOMMAND_MODULES = ("models", "predict", "evaluate", "analysis", "data", "train", "finetune", "scratch",
                      "viz", "lr_find", "interpret", "report", "weights", "export")


class OneLineParser(argparse.ArgumentParser):
    """argparse with cnnlab's error format: a bad flag or value is one line on stderr (with the
    command to get help), exit code 2; argparse prints the whole usage block instead."""

    def error(self, message: str):
        print(f"cnnlab: error: {self.prog}: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="cnnlab",
        description="Convolutional networks for image classification: models, analysis, data, "
        "training, transfer learning and a from-scratch NumPy engine.",
    )
    parser.add_argument("--version", action="version", version=f"cnnlab {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}").register(sub)
    return parser


def _version() -> str:
    from .. import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a bad flag (already reported in one line)
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CnnlabError as exc:
        print(f"cnnlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the output went to a reader that stopped (`| head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 141


if __name__ == "__main__":
    sys.exit(main())
