"""cnnlab's residual and dense networks beside their torchvision / timm peers, on the CPU, same run.

Pairs (default): ``resnet50``, ``resnext50_32x4d``, ``densenet121`` vs torchvision; ``se_resnet50_v1``
vs timm ``legacy_seresnet50``. The cnnlab model loads the peer's random weights from a state_dict
file through ``weights=``; then both run the same float32 batch of ``--batch`` images at 224x224:

* inference: eval-mode forward under ``torch.inference_mode``, images/s;
* training: forward + backward of the summed logits in train mode, images/s.

Each figure is the median of ``--repeats`` timed runs after one warm-up; the two libraries are timed
in turn so that load on a shared machine hits both alike. Also reported: the largest absolute
difference of their eval logits. ``--threads`` (default 1) intra-op threads for both.
Prints a table and writes benchmarks/results/residual.json (atomically).

    python benchmarks/bench_residual.py [--threads 1] [--batch 2] [--repeats 3] [--models resnet50 ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--models", nargs="+", default=["resnet50", "resnext50_32x4d", "se_resnet50_v1", "densenet121"])
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "residual.json"))
    return p.parse_args()


ARGS = parse_args()
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)

import timm  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

import cnnlab  # noqa: E402
from cnnlab.utils.io import write_json  # noqa: E402

torch.set_num_threads(ARGS.threads)

PEERS = {  # cnnlab name -> (peer label, peer builder)
    "resnet50": ("torchvision resnet50", lambda: torchvision.models.resnet50()),
    "resnext50_32x4d": ("torchvision resnext50_32x4d", lambda: torchvision.models.resnext50_32x4d()),
    "densenet121": ("torchvision densenet121", lambda: torchvision.models.densenet121()),
    "se_resnet50": ("timm seresnet50", lambda: timm.create_model("seresnet50")),
    "se_resnet50_v1": ("timm legacy_seresnet50", lambda: timm.create_model("legacy_seresnet50")),
    "preact_resnet50": ("timm resnetv2_50", lambda: timm.create_model("resnetv2_50")),
}


def load_pair(name: str) -> tuple[str, torch.nn.Module, torch.nn.Module]:
    label, make_peer = PEERS[name]
    peer = make_peer()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "peer.pth")
        torch.save(peer.state_dict(), path)
        ours = cnnlab.create_model(name, weights=path)
    return label, peer, ours


def inference_step(model, x):
    def run():
        model.eval()
        with torch.inference_mode():
            model(x)
    return run


def training_step(model, x):
    def run():
        model.train()
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()
    return run


def median_seconds(runs: list, repeats: int) -> list[float]:
    for run in runs:  # warm-up
        run()
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for i, run in enumerate(runs):
            t0 = time.perf_counter()
            run()
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def measure(name: str) -> dict:
    label, peer, ours = load_pair(name)
    x = torch.randn(ARGS.batch, 3, 224, 224)
    with torch.inference_mode():
        diff = (peer.eval()(x) - ours.eval()(x)).abs().max().item()
    infer = median_seconds([inference_step(ours, x), inference_step(peer, x)], ARGS.repeats)
    train = median_seconds([training_step(ours, x), training_step(peer, x)], ARGS.repeats)
    ips = [ARGS.batch / t for t in infer + train]
    return {"model": name, "peer": label, "input": 224, "max_abs_diff": diff,
            "cnnlab_infer_ips": ips[0], "peer_infer_ips": ips[1], "cnnlab_train_ips": ips[2], "peer_train_ips": ips[3]}


def main() -> None:
    print(f"{'model':<16} {'peer':<28} {'infer cnnlab':>13} {'infer peer':>11} "
          f"{'train cnnlab':>13} {'train peer':>11} {'max|diff|':>10}")
    rows = []
    for name in ARGS.models:
        r = measure(name)
        rows.append(r)
        print(f"{name:<16} {r['peer']:<28} {r['cnnlab_infer_ips']:>13.2f} {r['peer_infer_ips']:>11.2f} "
              f"{r['cnnlab_train_ips']:>13.2f} {r['peer_train_ips']:>11.2f} {r['max_abs_diff']:>10.1e}")
    print("images/s on the CPU; median of", ARGS.repeats, "runs")
    meta = {"what": "images/s, CPU, float32, 224x224", "batch": ARGS.batch, "repeats": ARGS.repeats,
            "threads": ARGS.threads, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "timm": timm.__version__, "machine": platform.machine(), "cpus": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0]}
    write_json(ARGS.out, {"meta": meta, "rows": rows})
    print("wrote", ARGS.out)


if __name__ == "__main__":
    main()
