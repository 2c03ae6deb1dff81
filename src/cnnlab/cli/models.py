"""``cnnlab models``: the table of registered models (``--json``, ``--markdown``)."""

from __future__ import annotations

import json

from ..errors import CnnlabError


def register(subparsers) -> None:
    p = subparsers.add_parser("models", help="list the registered models",
                              description="List the registered models with their parameter counts.")
    p.add_argument("pattern", nargs="?", default=None, help="shell wildcard, e.g. 'resnet*'")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable output")
    fmt.add_argument("--markdown", action="store_true", help="the README's model table")
    fmt.add_argument("--scaling", action="store_true",
                     help="EfficientNet compound scaling: the formula beside the released B0-B7 table")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.scaling:
        from ..analysis.scaling import scaling_table

        print(scaling_table())
        return 0
    from ..workflows.models import model_rows, to_markdown, to_text

    rows = model_rows(args.pattern)
    if not rows:
        raise CnnlabError(f"no model matches {args.pattern!r}; run `cnnlab models` to list them")
    if args.json:
        print(json.dumps(rows, indent=2))
    elif args.markdown:
        print(to_markdown(rows))
    else:
        print(to_text(rows))
    return 0
