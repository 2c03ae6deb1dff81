"""cnnlab models beside their torchvision / timm peers, timed in the same run.

For each pair in ``PEERS`` (family -> rows) the peer is built with random weights (seed 0), its
state_dict is saved to a temporary file and loaded into the cnnlab model through ``weights=``; then
both run the same float32 batch of ``--batch`` images at the row's input size:

* inference: eval-mode forward under ``torch.inference_mode``, images/s;
* training: train-mode forward + backward of the summed logits (the main logits where a model
  returns a tuple), images/s.

Each figure is the median of ``--repeats`` timed runs after ``--warmup`` untimed ones; the two
libraries are timed alternately so that load on a shared machine hits both alike. Also reported:
the largest absolute difference of their eval logits (the exact part of the result). Batch, repeats
and warm-up default to each family's own settings (``Family``), so that new figures stay comparable
with the stored ones. ``--threads`` (default 1) intra-op threads for both; ``--device cuda`` times on
a GPU, synchronised around every run. ``--predict`` (efficient family) also times ``cnnlab.predict``
on the seven photos bundled with scikit-image / scikit-learn with the offline Lite0 ImageNet weights.

Prints one table per family and writes ``<--out>/<family>.json`` (atomically; default
benchmarks/results/). Each file keeps its family's historic layout: the row list under ``rows_key``
and the peer's columns named ``<peer_prefix>_infer_ips`` / ``<peer_prefix>_train_ips``.

    python benchmarks/bench_models.py --family classic|residual|efficient|attention|all
        [--models alexnet ...] [--threads 1] [--batch N] [--repeats N] [--warmup N]
        [--device cpu] [--predict] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass, field

import timm
import torch
import torchvision

import cnnlab
from cnnlab.utils.io import write_json


@dataclass(frozen=True)
class Pair:
    model: str  # cnnlab name
    library: str  # the peer's library: "torchvision" or "timm"
    peer: str  # the peer's name in that library
    kwargs: dict = field(default_factory=dict)  # cnnlab create_model keyword arguments
    peer_kwargs: dict = field(default_factory=dict)  # the peer builder's keyword arguments
    input: int = 224  # image side, px
    peer_head: str = ""  # classifier re-drawn from N(0, 0.05^2) before the copy (see PEERS)
    default: bool = True  # timed when --models is not given

    @property
    def label(self) -> str:
        return f"{self.library} {self.peer}"


@dataclass(frozen=True)
class Family:
    pairs: tuple[Pair, ...]
    batch: int  # images per timed run
    repeats: int  # timed runs per figure (median)
    warmup: int  # untimed runs before timing
    rows_key: str = "results"  # name of the row list in <family>.json
    peer_prefix: str = "peer"  # peer columns: <prefix>_infer_ips, <prefix>_train_ips


PEERS = {
    # GoogLeNet: aux heads off on both sides; Xception at its 299 px input.
    "classic": Family((
        Pair("alexnet", "torchvision", "alexnet"),
        Pair("vgg11", "torchvision", "vgg11"),
        Pair("googlenet", "torchvision", "googlenet", {"aux_logits": False},
             {"aux_logits": False, "init_weights": True}),
        Pair("xception", "timm", "legacy_xception", input=299),
    ), batch=2, repeats=3, warmup=1),
    "residual": Family((
        Pair("resnet50", "torchvision", "resnet50"),
        Pair("resnext50_32x4d", "torchvision", "resnext50_32x4d"),
        Pair("se_resnet50_v1", "timm", "legacy_seresnet50"),
        Pair("densenet121", "torchvision", "densenet121"),
        Pair("se_resnet50", "timm", "seresnet50", default=False),
        Pair("preact_resnet50", "timm", "resnetv2_50", default=False),
    ), batch=2, repeats=3, warmup=1, rows_key="rows"),
    # Lite0 against timm's TF port: "SAME" padding on both sides.
    "efficient": Family((
        Pair("mobilenet_v1", "timm", "mobilenetv1_100"),
        Pair("mobilenet_v2", "torchvision", "mobilenet_v2"),
        Pair("efficientnet_b0", "torchvision", "efficientnet_b0"),
        Pair("efficientnet_lite0", "timm", "tf_efficientnet_lite0"),
    ), batch=4, repeats=3, warmup=1),
    # torchvision zero-initialises ViT's head, which would make every logit 0 and the diff check empty,
    # so both heads are re-drawn before the copy.
    "attention": Family((
        Pair("vit_b_16", "torchvision", "vit_b_16", peer_head="heads.head"),
        Pair("swin_t", "torchvision", "swin_t", peer_head="head"),
    ), batch=4, repeats=5, warmup=2, rows_key="rows", peer_prefix="torchvision"),
}

BUILDERS = {
    "torchvision": lambda name, **kw: getattr(torchvision.models, name)(**kw),
    "timm": timm.create_model,
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", choices=[*PEERS, "all"], default="all")
    p.add_argument("--models", nargs="+", help="cnnlab names to time (default: each family's default rows)")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads for both libraries")
    p.add_argument("--batch", type=int, help="images per run (default: the family's)")
    p.add_argument("--repeats", type=int, help="timed runs per figure (default: the family's)")
    p.add_argument("--warmup", type=int, help="untimed runs first (default: the family's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--predict", action="store_true", help="also time predict() (efficient family)")
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"),
                   help="folder for <family>.json")
    args = p.parse_args()
    args.plan = plan(p, args)
    return args


def plan(p: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, list[Pair]]:
    """Family -> the pairs to time, from --family and --models (errors name the fix)."""
    families = list(PEERS) if args.family == "all" else [args.family]
    if args.models:  # in the order given
        chosen = {f: [r for m in args.models for r in PEERS[f].pairs if r.model == m] for f in families}
    else:
        chosen = {f: [r for r in PEERS[f].pairs if r.default] for f in families}
    known = {r.model for f in families for r in PEERS[f].pairs}
    unknown = sorted(set(args.models or ()) - known)
    if unknown:
        p.error(
            f"--models {' '.join(unknown)}: not in family {args.family}; choose from "
            f"{' '.join(sorted(known))}"
        )
    if args.predict and not chosen.get("efficient"):
        p.error("--predict goes with the efficient family: use --family efficient or all "
                "(and an efficient model in --models, if given)")
    return {f: rows for f, rows in chosen.items() if rows}


def load_pair(row: Pair, device: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(cnnlab model, peer), the peer's random weights loaded into the cnnlab model via weights=."""
    torch.manual_seed(0)
    peer = BUILDERS[row.library](row.peer, **row.peer_kwargs)
    if row.peer_head:
        torch.nn.init.normal_(peer.get_submodule(row.peer_head).weight, std=0.05)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "peer.pth")
        torch.save(peer.state_dict(), path)
        ours = cnnlab.create_model(row.model, weights=path, **row.kwargs)
    return ours.to(device), peer.to(device)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def infer_step(model, x):
    def run():
        with torch.inference_mode():
            model(x)
    return run


def train_step(model, x):
    def run():
        model.zero_grad(set_to_none=True)
        out = model(x)
        (out[0] if isinstance(out, tuple) else out).sum().backward()
    return run


def time_alternately(runs: list, args: argparse.Namespace) -> list[float]:
    """Median seconds of each callable, timed in turn after args.warmup untimed runs each."""
    for run in runs:
        for _ in range(args.warmup):
            run()
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(args.repeats):
        for i, run in enumerate(runs):
            sync(args.device)
            t0 = time.perf_counter()
            run()
            sync(args.device)
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def measure(row: Pair, family: Family, args: argparse.Namespace) -> dict:
    ours, peer = load_pair(row, args.device)
    x = torch.randn(args.batch, 3, row.input, row.input, device=args.device)
    ours.eval(), peer.eval()
    with torch.inference_mode():
        diff = (peer(x) - ours(x)).abs().max().item()
    t_infer = time_alternately([infer_step(ours, x), infer_step(peer, x)], args)
    ours.train(), peer.train()
    t_train = time_alternately([train_step(ours, x), train_step(peer, x)], args)
    ips = [args.batch / t for t in t_infer + t_train]
    p = family.peer_prefix
    return {
        "model": row.model,
        "peer": row.label,
        "input": row.input,
        "max_abs_diff": diff,
        "cnnlab_infer_ips": ips[0],
        f"{p}_infer_ips": ips[1],
        "cnnlab_train_ips": ips[2],
        f"{p}_train_ips": ips[3],
    }


def measure_predict(device: str) -> dict:
    from skimage import data
    from sklearn.datasets import load_sample_images

    photos = {n: getattr(data, n)() for n in ("chelsea", "coffee", "astronaut", "rocket", "camera")}
    photos.update(zip(("china", "flower"), load_sample_images().images))
    t0 = time.perf_counter()
    results = cnnlab.predict(
        "efficientnet_lite0", list(photos.values()), weights="imagenet", topk=1, device=device
    )
    seconds = time.perf_counter() - t0
    top1 = {n: f"{r.top[0].name} ({r.top[0].prob:.2f})" for n, r in zip(photos, results)}
    return {"images": len(photos), "seconds_incl_model_load": seconds, "top1": top1}


class Table:
    """Prints rows as they are measured, columns sized for the pairs about to run."""

    def __init__(self, pairs: list[Pair], peer_prefix: str):
        p = peer_prefix
        self.cols = [
            ("model", "model", "<", "s", max(5, *(len(r.model) for r in pairs))),
            ("peer", "peer", "<", "s", max(4, *(len(r.label) for r in pairs))),
            ("in", "input", ">", "d", 4),
            ("infer cnnlab", "cnnlab_infer_ips", ">", ".2f", 12),
            ("infer peer", f"{p}_infer_ips", ">", ".2f", 10),
            ("train cnnlab", "cnnlab_train_ips", ">", ".2f", 12),
            ("train peer", f"{p}_train_ips", ">", ".2f", 10),
            ("max|diff|", "max_abs_diff", ">", ".1e", 9),
        ]
        print("  ".join(f"{head:{a}{w}}" for head, _, a, _, w in self.cols), flush=True)

    def row(self, r: dict) -> None:
        print("  ".join(f"{r[key]:{a}{w}{fmt}}" for _, key, a, fmt, w in self.cols), flush=True)


def meta(args: argparse.Namespace) -> dict:
    return {"unit": "images/s (median)", "what": "cnnlab vs peer in the same run, float32, eval forward and "
            "train forward+backward", "device": args.device,
            "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
            "threads": args.threads, "batch": args.batch, "repeats": args.repeats, "warmup": args.warmup,
            "torch": torch.__version__, "torchvision": torchvision.__version__, "timm": timm.__version__,
            "cpu": platform.processor() or platform.machine(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "load_average_1min": os.getloadavg()[0]}


def family_settings(args: argparse.Namespace, family: Family) -> argparse.Namespace:
    """args with batch / repeats / warmup filled in from the family where not given."""
    own = {k: getattr(family, k) for k in ("batch", "repeats", "warmup") if getattr(args, k) is None}
    return argparse.Namespace(**{**vars(args), **own})


def run_family(name: str, pairs: list[Pair], args: argparse.Namespace) -> None:
    family = PEERS[name]
    args = family_settings(args, family)
    print(f"\n{name}: {args.device}, {args.threads} thread(s), batch {args.batch}, "
          f"median of {args.repeats} after {args.warmup} warm-up, images/s", flush=True)
    table = Table(pairs, family.peer_prefix)
    results = []
    for pair in pairs:
        results.append(measure(pair, family, args))
        table.row(results[-1])
    out = {"meta": meta(args), family.rows_key: results}
    if name == "efficient" and args.predict:
        out["predict"] = pr = measure_predict(args.device)
        print(
            f"predict: {pr['images']} photos in {pr['seconds_incl_model_load']:.2f} s (model load included): "
            f"{pr['top1']}"
        )
    path = os.path.join(args.out, f"{name}.json")
    write_json(path, out)
    print(f"wrote {path}", flush=True)


def main() -> None:
    args = parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    for name, pairs in args.plan.items():
        run_family(name, pairs, args)


if __name__ == "__main__":
    main()
