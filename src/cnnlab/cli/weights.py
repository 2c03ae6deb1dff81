"""``cnnlab weights ls|download|import|path|rm``: the pretrained-weights catalogue and its cache.

* ``ls [PATTERN] [--json|--markdown|--coverage]``: model, tag, top-1, size, source, cached or not;
* ``download MODEL[:TAG] ...``: fill the cache (on a connected machine, before going offline);
* ``import FILE --model M [--tag T] [--sha256 HEX]``: check a file copied over by hand and cache it;
* ``path [MODEL[:TAG]]``: the cache folder, or one cached file;
* ``rm MODEL[:TAG] ... | --all``: delete cached weights (only the files the cache wrote).

The work is done by :mod:`cnnlab.weights.hub`; this module parses arguments and prints.
"""

from __future__ import annotations

import json
import sys

from ..errors import CnnlabError

SPEC_HELP = "MODEL or MODEL:TAG (no tag: imagenet; shell wildcards allowed, e.g. 'resnet*' or 'resnet50:*')"


def register(subparsers) -> None:
    p = subparsers.add_parser("weights", help="pretrained weights: list, download, import, locate, remove",
                              description="The pretrained-weights catalogue and the local cache "
                              "($CNNLAB_HOME/weights, default ~/.cache/cnnlab/weights).")
    sub = p.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    ls = sub.add_parser("ls", help="list pretrained weights", description="List the catalogue's weights.")
    ls.add_argument("pattern", nargs="?", default=None, help="model wildcard, or MODEL:TAG wildcard")
    fmt = ls.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable output")
    fmt.add_argument("--markdown", action="store_true", help="a Markdown table (docs/weights.md)")
    fmt.add_argument("--coverage", action="store_true",
                     help="how many models have weights in cnnlab, torchvision, timm and Keras")
    ls.set_defaults(func=run_ls)
    dl = sub.add_parser("download", help="download weights into the cache",
                        description="Download, verify and convert weights into the cache.")
    dl.add_argument("specs", nargs="+", metavar="MODEL[:TAG]", help=SPEC_HELP)
    dl.set_defaults(func=run_download)
    imp = sub.add_parser("import", help="verify a weights file copied by hand and put it in the cache",
                         description="Check a file against the catalogue entry MODEL:TAG and cache it.")
    imp.add_argument("file", help="the weights file (as published, or a cnnlab cache file)")
    imp.add_argument("--model", required=True, help="the registered model it is for")
    imp.add_argument("--tag", default="imagenet", help="the catalogue tag (default imagenet)")
    imp.add_argument("--sha256", default=None,
                     help="also check this full SHA-256 (e.g. from the hub's page of the file)")
    imp.set_defaults(func=run_import)
    path = sub.add_parser("path", help="print the cache folder or a cached file")
    path.add_argument("spec", nargs="?", default=None, metavar="MODEL[:TAG]", help="no tag: imagenet")
    path.set_defaults(func=run_path)
    rm = sub.add_parser("rm", help="delete cached weights", description="Delete cached weights files.")
    rm.add_argument("specs", nargs="*", metavar="MODEL[:TAG]", help=SPEC_HELP)
    rm.add_argument("--all", action="store_true", help="every weights file of the cache")
    rm.set_defaults(func=run_rm)


def run_ls(args) -> int:
    from ..weights.catalogue import catalogue
    from ..weights.hub import coverage_table, list_weights

    if args.coverage:
        print(coverage_table())
        return 0
    cat = catalogue()
    pattern = args.pattern
    if pattern and ":" not in pattern and pattern in cat.none:
        print(f"{pattern}: no pretrained weights - {cat.none[pattern]}")
        return 0
    rows = list_weights(pattern)
    if not rows:
        raise CnnlabError(f"no pretrained weights match {pattern!r}; `cnnlab weights ls` lists them "
                          "(`cnnlab models` lists the models)")
    if args.json:
        print(json.dumps(rows, indent=2))
    elif args.markdown:
        print(to_markdown(rows))
    else:
        print(to_text(rows))
        if pattern is None and cat.none:
            print(f"{len(cat.none)} models have no published weights: {', '.join(sorted(cat.none))} "
                  "(`cnnlab weights ls MODEL` says why)")
    return 0


def _tag(row: dict) -> str:
    return f"{row['tag']} (imagenet)" if row["default"] else row["tag"]


def _num(value, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def to_text(rows: list[dict]) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rows)} pretrained weights")
    for col, just in (("model", "left"), ("tag", "left"), ("top-1 %", "right"), ("MB", "right"),
                      ("source", "left"), ("cached", "left")):
        table.add_column(col, justify=just)
    for r in rows:
        table.add_row(r["model"], _tag(r), _num(r["top1"], ".2f"), _num(r["size_mb"], ".1f"), r["source"],
                      "yes" if r["cached"] else "no")
    console = Console(width=150, record=True)
    with console.capture() as cap:
        console.print(table)
    return cap.get().rstrip()


def to_markdown(rows: list[dict]) -> str:
    lines = ["| model | tag | top-1 % | MB | evaluation preprocessing | source |",
             "|---|---|---:|---:|---|---|"]
    for r in rows:
        p = r["preprocessing"]
        pre = f"{p['input_size'][-1]} px, crop {p['crop_pct']:g}, {p['interpolation']}, mean {p['mean'][0]:g}"
        top1, size = _num(r["top1"], ".2f"), _num(r["size_mb"], ".1f")
        lines.append(f"| `{r['model']}` | `{_tag(r)}` | {top1} | {size} | {pre} | {r['source']} |")
    return "\n".join(lines)


def run_download(args) -> int:
    from ..weights.hub import download_weights

    for path in download_weights(args.specs):
        print(path)
    return 0


def run_import(args) -> int:
    from ..weights.hub import import_weights

    path = import_weights(args.file, args.model, args.tag, sha256=args.sha256)
    print(f"imported {args.file} as {args.model}:{args.tag}: {path}", file=sys.stderr)
    print(path)
    return 0


def run_path(args) -> int:
    from ..weights.hub import weights_path

    print(weights_path(args.spec))
    return 0


def run_rm(args) -> int:
    from ..weights.hub import remove_weights

    if args.all and args.specs:
        raise CnnlabError("name the weights to delete (MODEL[:TAG] ...) or pass --all, not both")
    if not args.all and not args.specs:
        raise CnnlabError("name the weights to delete (MODEL[:TAG] ..., wildcards allowed) or pass --all")
    removed = remove_weights(args.specs, everything=args.all)
    for path in removed:
        print(f"removed {path}")
    if not removed:
        print("nothing to remove: none of those weights are in the cache", file=sys.stderr)
    return 0
