"""``cnnlab evaluate MODEL[:WEIGHTS] [MODEL[:WEIGHTS] ...] --data DATA [--tta ...]``: accuracy of a model or
an ensemble on a validation split, with test-time views (flip, five crops, AlexNet's 10-crop, VGG's
multi-scale).

Prints a line per model and one for the ensemble (top-1, top-5, loss, the views), or the whole result
as JSON with ``--json``; ``--out FILE`` also writes the JSON. See :mod:`cnnlab.workflows.evaluate`.
"""

from __future__ import annotations

import json
import sys

from ..errors import CnnlabError

TTA_HELP = ("none: the centre crop | flip: + its mirror | 5crop: 4 corners + centre | "
            "10crop: AlexNet's 5crop + mirrors | multiscale: centre + mirror at each of --scales (VGG)")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="evaluate a model or an ensemble, with test-time augmentation",
        description="Top-1/top-5, loss and per-class accuracy of one model or an ensemble on the validation "
        "split of a dataset, averaging softmax probabilities over test-time views and models.")
    p.add_argument(
        "models",
        nargs="+",
        metavar="MODEL[:WEIGHTS]",
        help="model name and a run folder, checkpoint file or pretrained tag (e.g. lenet5:runs/a), or "
        "an ONNX file from `cnnlab export` (run by onnxruntime); several make an ensemble",
    )
    p.add_argument(
        "--data",
        default=None,
        help="digits | image folder | list.csv | cifar10:DIR | ... (default: the first run's data)",
    )
    p.add_argument("--tta", default="none", help=TTA_HELP + " (default none)")
    p.add_argument("--scales", default=None, metavar="Q,Q,...",
                   help="shorter sides in pixels to take the views at (default: the model's own; multiscale: "
                   "size x 256,384,512 / 224)")
    p.add_argument("--combine", default="mean_prob",
                   help="mean_prob: average softmax probabilities (default) | mean_logit: average logits")
    p.add_argument("--member-weights", default=None, metavar="W,W,...",
                   help="ensemble weight of each model (default equal)")
    p.add_argument("--val-split", type=float, default=None, help="validation fraction (default: the run's)")
    p.add_argument("--seed", type=int, default=None, help="split seed (default: the run's)")
    p.add_argument("--split-file", default=None, help="a saved train/val split (default: the run's)")
    p.add_argument(
        "--batch-size", type=int, default=32, help="images per forward pass, with their views (32)"
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--out", default=None, metavar="FILE", help="also write the result as JSON to FILE")
    p.add_argument("--misclassified", default=None, metavar="FILE.csv",
                   help="write the images the model (or the ensemble) gets wrong, with the probabilities")
    p.set_defaults(func=run)


def _numbers(text: str | None, flag: str, kind):
    if text is None:
        return None
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CnnlabError(f"{flag} {text!r} must be comma-separated {kind.__name__}s, e.g. "
                          f"{'256,384,512' if kind is int else '2,1'}") from None
    if not values:
        raise CnnlabError(f"{flag} is empty; give comma-separated numbers")
    return values


def run(args) -> int:
    from ..utils.io import check_output_file, write_json
    from ..workflows.evaluate import EvaluateConfig, evaluate

    if args.out:
        check_output_file(args.out, "--out")
    config = EvaluateConfig(tta=args.tta, scales=_numbers(args.scales, "--scales", int),
                            member_weights=_numbers(args.member_weights, "--member-weights", float),
                            combine=args.combine, batch_size=args.batch_size, device=args.device,
                            workers=args.workers, val_split=args.val_split, seed=args.seed,
                            split_file=args.split_file, misclassified=args.misclassified)
    result = evaluate(args.models, args.data, config)
    if args.out:
        write_json(args.out, result.to_dict())
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.table())
    if args.misclassified:
        wrong = sum(1 for _ in open(args.misclassified, encoding="utf-8")) - 1
        print(f"wrote {args.misclassified} ({wrong} misclassified image(s))", file=sys.stderr)
    return 0
