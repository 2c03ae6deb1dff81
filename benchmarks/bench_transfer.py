"""Transfer learning on the CPU: the feature cache against the frozen backbone, the three regimes, and
pretrained-and-cached against from-scratch for the same wall time, in the same run.

Data: buildings vs forest of ../shared/data/scenes (150x150 JPEGs), ``--train`` and ``--val`` images
per class (the first files by name; symlinks in a temporary folder). Model: ``efficientnet_lite0`` at
its default 224x224 (bicubic resize to 256, centre crop), batch 32, Adam, cosine schedule.

Measured (seconds are wall-clock of the training loop of one epoch, the engine's ``seconds`` column;
"one-epoch run wall" is a whole ``finetune`` call of one epoch: set-up, the epoch, validation, files):

1. small regime end to end: ``cnnlab.finetune`` with ``--weights imagenet`` (feature extraction over
   train + val, then ``--epochs`` of head training from the cache): total seconds and best val top-1;
2. the same model from random initialisation, trained for the same wall time (epochs until the
   time is spent), same preprocessing: its best val top-1;
3. one head epoch from the cache (median of the small run's epochs) vs one epoch of the same frozen
   model without the cache (``--no-cache``: images decoded and passed through the backbone);
4. one epoch of the medium (freeze the early half) and large (freeze none) regimes.

    python benchmarks/bench_transfer.py [--threads 2] [--train 60] [--val 60] [--epochs 15]

Prints a table and writes benchmarks/results/transfer.json (atomically).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

SCENES = Path(__file__).resolve().parents[2] / "shared" / "data" / "scenes"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train", type=int, default=60, help="training images per class")
    p.add_argument("--val", type=int, default=60, help="validation images per class")
    p.add_argument("--epochs", type=int, default=15, help="head epochs of the small regime")
    p.add_argument("--scenes", default=str(SCENES))
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "transfer.json"))
    return p.parse_args()


ARGS = parse_args()
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)

import torch  # noqa: E402

from cnnlab.utils.io import write_json  # noqa: E402


def make_subset(root: Path) -> Path:
    for cls in ("buildings", "forest"):
        files = sorted(f for f in os.listdir(Path(ARGS.scenes) / cls) if not f.startswith("."))
        for split, part in (("train", files[:ARGS.train]), ("val", files[ARGS.train:ARGS.train + ARGS.val])):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for f in part:
                (folder / f).symlink_to(Path(ARGS.scenes) / cls / f)
    return root


def finetune_run(data: Path, work: Path, name: str, **kw):
    from cnnlab.workflows.finetune import FinetuneConfig, finetune

    cfg = FinetuneConfig(
        data=str(data),
        weights="imagenet",
        out=str(work / "runs"),
        name=name,
        progress=False,
        cache_dir=str(work / "cache"),
        batch_size=32,
        **kw,
    )
    start = time.perf_counter()
    result = finetune(cfg)
    return result, time.perf_counter() - start


def scratch_for(data: Path, budget: float) -> dict:
    """efficientnet_lite0 from random weights, same preprocessing, as many whole epochs as fit in
    ``budget`` seconds (at least one)."""
    from cnnlab import create_model
    from cnnlab.data import eval_transform, open_dataset
    from cnnlab.engine import FitConfig, Hooks, Trainer

    torch.manual_seed(0)
    splits = open_dataset(str(data))
    model = create_model("efficientnet_lite0", num_classes=2)
    splits.train.transform = splits.val.transform = eval_transform(model.default_cfg)
    start = time.perf_counter()

    class StopAtBudget(Hooks):
        """Stop when the next epoch (as long as the last one) would end past the budget."""

        last = start

        def epoch_end(self, trainer, row, result):
            now = time.perf_counter()
            if now + (now - self.last) > start + budget:
                trainer._stop_requested = True  # the loop's own clean-stop flag (as Ctrl-C sets it)
            self.last = now

    trainer = Trainer(
        model,
        splits.train,
        splits.val,
        FitConfig(epochs=1000, batch_size=32, lr=1e-3, progress=False),
        num_classes=2,
        hooks=StopAtBudget(),
    )
    fit = trainer.fit()
    return {
        "seconds": time.perf_counter() - start,
        "epochs": len(fit.history),
        "best_val_top1": fit.best.get("val_top1", 0.0),
        "history": [round(h["val_top1"], 2) for h in fit.history],
    }


def main() -> None:
    torch.set_num_threads(ARGS.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = make_subset(work / "bf")
        small, small_wall = finetune_run(data, work, "small", regime="small", epochs=ARGS.epochs)
        record = json_of(small, small_wall)
        history = read_history(small)
        scratch = scratch_for(data, small_wall)
        nocache, _ = finetune_run(data, work, "nocache", regime="small", cache=False, epochs=1)
        medium, _ = finetune_run(data, work, "medium", regime="medium", epochs=1)
        large, _ = finetune_run(data, work, "large", regime="large", epochs=1)
    cached_epoch = statistics.median(h["seconds"] for h in history)
    results = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": ARGS.threads,
            "torch": torch.__version__,
        },
        "data": {
            "train_per_class": ARGS.train,
            "val_per_class": ARGS.val,
            "classes": ["buildings", "forest"],
        },
        "small_end_to_end": record,
        "scratch_same_wall_time": scratch,
        "epoch_seconds": {
            "head_from_cache": cached_epoch,
            "frozen_backbone_no_cache": nocache.last["seconds"],
            "speedup": nocache.last["seconds"] / max(cached_epoch, 1e-9),
            "medium": medium.last["seconds"],
            "large": large.last["seconds"],
        },
        "one_epoch_run_wall_seconds": {
            "frozen_backbone_no_cache": nocache.seconds,
            "medium": medium.seconds,
            "large": large.seconds,
        },
    }
    write_json(ARGS.out, results)
    print_table(results)


def read_history(result) -> list[dict]:
    import json

    return json.loads((result.run_dir / "summary.json").read_text())["history"]


def json_of(result, wall: float) -> dict:
    import json

    summary = json.loads((result.run_dir / "summary.json").read_text())
    record = json.loads((result.run_dir / "transfer.json").read_text())
    return {"wall_seconds": wall, "extract_seconds": record["cache"]["extract_seconds"],
            "epochs": len(summary["history"]), "best_val_top1": result.best["val_top1"],
            "val_top1_per_epoch": [round(h["val_top1"], 2) for h in summary["history"]]}


def print_table(r: dict) -> None:
    s, sc, e = r["small_end_to_end"], r["scratch_same_wall_time"], r["epoch_seconds"]
    print(f"efficientnet_lite0, buildings vs forest, {ARGS.train}+{ARGS.val} images per class, "
          f"{ARGS.threads} threads, torch {torch.__version__}")
    print(f"{'measurement':<58} {'value':>12}")
    rows = [
        ("small regime end to end (imagenet weights), wall s", f"{s['wall_seconds']:.1f}"),
        ("  of which feature extraction, s", f"{s['extract_seconds']:.1f}"),
        ("  best val top-1 %", f"{s['best_val_top1']:.2f}"),
        (
            f"from scratch, same wall time ({sc['epochs']} epochs), best val top-1 %",
            f"{sc['best_val_top1']:.2f}",
        ),
        ("head epoch from the cache, s", f"{e['head_from_cache']:.4f}"),
        ("same epoch through the frozen backbone (no cache), s", f"{e['frozen_backbone_no_cache']:.2f}"),
        ("  speed-up of the cache, x", f"{e['speedup']:.0f}"),
        ("medium regime epoch (freeze early half), s", f"{e['medium']:.2f}"),
        ("large regime epoch (freeze none), s", f"{e['large']:.2f}"),
    ]
    for name, value in rows:
        print(f"{name:<58} {value:>12}")
    print(f"written to {ARGS.out}")


if __name__ == "__main__":
    main()
