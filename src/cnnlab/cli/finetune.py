"""``cnnlab finetune`` (flags -> :class:`~cnnlab.workflows.finetune.FinetuneConfig` -> ``finetune``) and
``cnnlab cache ls|rm`` (the frozen-feature caches).

The training flags are ``cnnlab train``'s; flags are parsed with ``SUPPRESS`` defaults so that only the
flags given override the regime's presets and the ``--config`` file.
"""

from __future__ import annotations

from .train import BOOL, add_aug_flag, add_flags
from .train import FLAGS as TRAIN_FLAGS

OWN_HELP = {
    "--model": "registered model name (default efficientnet_lite0)",
    "--epochs": "epochs (default: the regime's, 30 small / 10 medium and large)",
    "--lr": "peak learning rate of the head (default: the regime's, 1e-3)",
    "--augment": "augmentation preset for training images (default none: the eval preprocessing)",
}
TRANSFER_FLAGS = (
    (
        "--weights",
        str,
        "a pretrained tag (imagenet, imagenet1k_v2, ...: cnnlab weights ls) | torchvision/timm file | "
        "cnnlab checkpoint or run folder",
    ),
    (
        "--regime",
        str,
        "small (freeze all + feature cache) | medium (freeze the early half) | large (freeze none)",
    ),
    ("--freeze", str, "all | none | N: freeze the stem and the first N stages (default: the regime's)"),
    ("--frozen-bn", str, "eval: frozen BatchNorm keeps its running statistics (default) | train"),
    ("--backbone-lr-mult", float, "backbone lr = lr * this (default: the regime's, 0.1 medium and large)"),
    ("--cache", BOOL, "train the head on cached backbone features (default: on for the small regime)"),
    (
        "--cache-dir",
        str,
        "where feature caches live (default ~/.cache/cnnlab/features or $CNNLAB_CACHE/features)",
    ),
    ("--cache-from", str, "use this cache entry folder (checked against the model and weights)"),
    (
        "--cache-augment",
        int,
        "store K augmented copies of each training image in the cache (needs --augment)",
    ),
    ("--cache-shard-rows", int, "feature rows per cache shard file (default 2048)"),
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "finetune", help="transfer learning from trained weights (small / medium / large regimes)",
        description="Replace the head of a trained model for the data's classes, freeze the first stages as "
        "the regime says and train into runs/<name>/ (the files of `cnnlab train`, plus transfer.json). The "
        "small regime trains the head on cached features of the frozen backbone.")
    p.add_argument("--config", metavar="FILE", default=None, help="YAML or TOML file of the same keys")
    add_flags(p, TRANSFER_FLAGS)
    add_flags(p, TRAIN_FLAGS, OWN_HELP)
    add_aug_flag(p)
    p.set_defaults(func=run)

    cache = subparsers.add_parser("cache", help="list or remove frozen-feature caches")
    sub = cache.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    ls = sub.add_parser("ls", help="list the feature caches")
    ls.add_argument("--cache-dir", default=None, help="cache folder (default ~/.cache/cnnlab/features)")
    ls.set_defaults(func=run_ls)
    rm = sub.add_parser("rm", help="remove feature caches")
    rm.add_argument("names", nargs="*", help="entry names as `cnnlab cache ls` shows them")
    rm.add_argument("--all", action="store_true", help="remove every entry")
    rm.add_argument("--cache-dir", default=None, help="cache folder (default ~/.cache/cnnlab/features)")
    rm.set_defaults(func=run_rm)


def run(args) -> int:
    from ..config import apply_overrides, read_config_file
    from ..workflows.finetune import FinetuneConfig, finetune

    given = {k: v for k, v in vars(args).items() if k not in ("config", "func", "command")}
    from_file = read_config_file(args.config, section="finetune") if args.config else {}
    config = apply_overrides(FinetuneConfig(), from_file, origin=f"{args.config}")
    config = apply_overrides(config, given, origin="flag")
    result = finetune(config, explicit=set(from_file) | set(given))
    return 130 if result.stopped == "interrupted" else 0


def run_ls(args) -> int:
    from ..transfer.cache_admin import foreign_folders, list_caches
    from ..transfer.feature_cache import default_cache_dir

    entries = list_caches(args.cache_dir)
    root = args.cache_dir or default_cache_dir()
    others = foreign_folders(args.cache_dir)
    if others:
        print(f"not feature caches (left alone): {', '.join(p.name for p in others)}")
    if not entries:
        print(f"no feature caches in {root}")
        return 0
    print(f"feature caches in {root}:")
    print(f"  {'name':<36} {'state':<10} {'MiB':>8} {'train':>7} {'val':>6} {'dim':>5}  created")
    for e in entries:
        splits = e.manifest.get("splits", {})
        rows = [str(splits.get(s, {}).get("rows", "-")) for s in ("train", "val")]
        dim = str(splits.get("train", {}).get("dim", "-"))
        state = "complete" if e.complete else "incomplete"
        print(f"  {e.name:<36} {state:<10} {e.bytes / 2**20:>8.1f} {rows[0]:>7} {rows[1]:>6} {dim:>5}  "
              f"{e.manifest.get('created', '-')}")
    return 0


def run_rm(args) -> int:
    from ..errors import CnnlabError
    from ..transfer.cache_admin import foreign_folders, remove_caches

    if not args.names and not args.all:
        raise CnnlabError("name the caches to remove (see `cnnlab cache ls`) or pass --all")
    removed = remove_caches(None if args.all else args.names, args.cache_dir)
    for path in removed:
        print(f"removed {path}")
    if args.all:
        for path in foreign_folders(args.cache_dir):
            print(f"skipped {path}: not a feature cache entry")
    if not removed:
        print("no feature caches to remove")
    return 0
