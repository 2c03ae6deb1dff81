"""``cnnlab data samples|check|stats|preview``: write sample files, scan a folder for bad files, compute
statistics, draw augmentations."""

from __future__ import annotations

import json


def _add_data_args(p) -> None:
    p.add_argument("data", help="digits, an image folder, a .csv list, cifar10:DIR, mnist:DIR, ...")
    p.add_argument("--val-split", type=float, default=None, help="validation fraction for a single folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--in-chans", type=int, default=3, choices=(1, 3))


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="check, describe and preview datasets",
                              description="Scan image folders for bad files, compute dataset statistics "
                              "(mean, std, RGB PCA) and preview augmentations.")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    m = sub.add_parser(
        "samples", help="write sample files to try the commands on (photos, a digits image folder)"
    )
    m.add_argument("folder", nargs="?", default="samples", help="where to write them (default ./samples)")
    m.add_argument("--per-class", type=int, default=30, help="digit images per class in the image folder")
    m.set_defaults(func=run_samples)

    c = sub.add_parser(
        "check", help="decode every image and report broken or unusual files (exit 1 on problems)"
    )
    c.add_argument("folder")
    c.add_argument("--json", action="store_true", help="print the machine-readable report")
    c.add_argument("--workers", type=int, default=None, help="decoding threads (default: 2 per CPU)")
    c.set_defaults(func=run_check)

    s = sub.add_parser("stats", help="mean, std and RGB PCA of the training images, saved as JSON")
    _add_data_args(s)
    s.add_argument("-o", "--output", default=None, help="JSON file (default: where training looks for it)")
    s.add_argument("--max-images", type=int, default=5000, help="sample size for image folders")
    s.set_defaults(func=run_stats)

    v = sub.add_parser(
        "preview", help="a PNG grid: originals beside augmented versions, a row per augmentation"
    )
    _add_data_args(v)
    v.add_argument("--preset", default="alexnet", help="alexnet, vgg, inception, resnet, cifar, digits, none")
    v.add_argument("--aug", action="append", metavar="NAME=VALUE", help="augmentation option, e.g. rotate=15")
    v.add_argument("--size", type=int, default=None, help="crop size (default 224, or the native size)")
    v.add_argument("--columns", type=int, default=5, help="augmented draws per row")
    v.add_argument("-o", "--output", default="augmentations.png")
    v.set_defaults(func=run_preview)


def run_samples(args) -> int:
    from ..config import check_number
    from ..data.samples import write_samples

    check_number("per_class", args.per_class, low=1, high=170, integer=True)
    counts = write_samples(args.folder, args.per_class)
    print(
        f"{args.folder}: photos/ ({counts['photos']} new), digits/ ({counts['digits']} new PNGs in 10 class "
        f"folders), digit.png ({'new' if counts['digit'] else 'kept'})"
    )
    return 0


def run_check(args) -> int:
    from ..data.check import check_folder, format_report

    report = check_folder(args.folder, workers=args.workers)
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 0 if report.ok else 1


def run_stats(args) -> int:
    from ..data.splits import compute_stats
    from ..utils.io import check_output_file

    if args.output:
        check_output_file(args.output, "-o")

    stats, path = compute_stats(args.data, val_split=args.val_split, seed=args.seed, in_chans=args.in_chans,
                                out=args.output, max_images=args.max_images)
    print(f"images {stats.images}, pixels {stats.pixels:,}")
    print(f"mean   {', '.join(f'{v:.4f}' for v in stats.mean)}")
    print(f"std    {', '.join(f'{v:.4f}' for v in stats.std)}")
    if stats.pca:
        print(f"PCA eigenvalues  {', '.join(f'{v:.6f}' for v in stats.pca.eigval)}")
        for i, row in enumerate(stats.pca.eigvec):
            print(f"{'PCA eigenvectors' if i == 0 else '':<16} {'  '.join(f'{v:+.4f}' for v in row)}")
    if path:
        print(f"saved to {path}")
    return 0


def run_preview(args) -> int:
    from ..data import open_dataset
    from ..data.preview import preview_grid
    from ..data.transforms import parse_aug_options
    from ..utils.figures import check_picture_path

    check_picture_path(args.output, "-o")

    splits = open_dataset(args.data, val_split=args.val_split, seed=args.seed, in_chans=args.in_chans)
    size = args.size or (splits.input_size[-1] if splits.input_size else 224)
    out = preview_grid(splits, args.output, args.preset, size=size, columns=args.columns, seed=args.seed,
                       **parse_aug_options(args.aug))
    print(f"wrote {out}")
    return 0
