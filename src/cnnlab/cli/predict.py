"""``cnnlab predict MODEL|RUN|FILE.onnx IMAGE|FOLDER... [--weights W] [--topk K] [--json] [--out FILE.csv]``.

Prints, per image, its top-k classes with probabilities (or a JSON list with ``--json``); ``--out``
also writes them as a CSV (file, class and probability of each of the top-k, error). MODEL may be a
run folder or a cnnlab checkpoint, which name their model, or an ONNX file (run with onnxruntime;
``--input-size``/``--mean``/``--std`` for one without cnnlab's metadata). An unreadable image prints one
line on
stderr and the others are still classified; the exit code is 1 when any image could not be read.
"""

from __future__ import annotations

import json
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="classify images with a model",
                              description="Classify image files with a model and print the top-k classes.")
    p.add_argument("model", help="registered model name (e.g. efficientnet_lite0), MODEL:WEIGHTS, a run "
                   "folder / cnnlab checkpoint, which names its model, or an ONNX file (cnnlab export)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders of images")
    p.add_argument("--weights", default=None,
                   help="checkpoint, run folder or pretrained tag, e.g. 'imagenet' (default: untrained)")
    p.add_argument("--topk", type=int, default=5, help="classes shown per image (default 5)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto (default cpu)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--out", default=None, metavar="FILE.csv", help="also write the predictions as CSV")
    p.add_argument("--input-size", type=int, default=None, metavar="PX",
                   help="ONNX files only: the input side (default: the file's metadata)")
    p.add_argument("--mean", type=float, nargs="+", default=None, help="ONNX files only: per-channel mean")
    p.add_argument("--std", type=float, nargs="+", default=None, help="ONNX files only: per-channel std")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..utils.io import check_output_file
    from ..workflows.predict import predict, write_csv

    if args.out:
        check_output_file(args.out, "--out")
    results = predict(args.model, args.images, weights=args.weights, topk=args.topk, device=args.device,
                      input_size=args.input_size, mean=args.mean, std=args.std)
    for r in results:
        if r.error:
            print(f"cnnlab: error: {r.error}", file=sys.stderr)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        for r in results:
            if r.error is None:
                print(r.source)
                for t in r.top:
                    print(f"  {t.prob:7.2%}  {t.index:>5}  {t.name}")
    if args.out:
        print(f"wrote {write_csv(results, args.out, args.topk)}", file=sys.stderr)
    return 1 if any(r.error for r in results) else 0
