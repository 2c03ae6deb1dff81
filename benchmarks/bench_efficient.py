"""cnnlab's efficient CNNs beside their torchvision / timm peers, in the same run, plus predict().

Pairs: ``mobilenet_v1`` vs timm ``mobilenetv1_100``, ``mobilenet_v2`` vs torchvision ``mobilenet_v2``,
``efficientnet_b0`` vs torchvision ``efficientnet_b0``, ``efficientnet_lite0`` vs timm
``tf_efficientnet_lite0`` (TF "SAME" padding on both sides). The cnnlab model loads the peer's random
weights through ``weights=`` (a state_dict file), then both are timed on the same float32 batch of
``--batch`` images at 224x224:

* inference: eval-mode forward under ``torch.inference_mode``, images/s;
* training: forward + backward of the summed logits in train mode, images/s.

Each figure is the median of ``--repeats`` timed runs after one warm-up; the two libraries are timed
alternately so that load on a shared machine hits both alike. Also reported: the largest absolute
difference of their eval logits, and (``--predict``) the wall time of ``cnnlab.predict`` on the
seven bundled scikit-image / scikit-learn photos with the offline Lite0 ImageNet weights, with the
top-1 classes. ``--device cuda`` times on a GPU (synchronised). Prints a table and writes
benchmarks/results/efficient.json (atomically).

    python benchmarks/bench_efficient.py [--threads 1] [--batch 4] [--repeats 3] [--device cpu] [--predict]
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
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--predict", action="store_true", help="also time predict() on the bundled photos")
    p.add_argument("--models", nargs="+", default=["mobilenet_v1", "mobilenet_v2", "efficientnet_b0",
                                                     "efficientnet_lite0"])
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "efficient.json"))
    return p.parse_args()


ARGS = parse_args()
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)

import timm  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

import cnnlab  # noqa: E402
from cnnlab.utils.io import write_json  # noqa: E402

torch.set_num_threads(ARGS.threads)

PEERS = {  # cnnlab name -> (peer label, builder of the peer)
    "mobilenet_v1": ("timm mobilenetv1_100", lambda: timm.create_model("mobilenetv1_100")),
    "mobilenet_v2": ("torchvision mobilenet_v2", lambda: torchvision.models.mobilenet_v2()),
    "efficientnet_b0": ("torchvision efficientnet_b0", lambda: torchvision.models.efficientnet_b0()),
    "efficientnet_lite0": ("timm tf_efficientnet_lite0", lambda: timm.create_model("tf_efficientnet_lite0")),
}


def pair(name: str):
    label, make_peer = PEERS[name]
    peer = make_peer()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "peer.pth")
        torch.save(peer.state_dict(), path)
        ours = cnnlab.create_model(name, weights=path)
    return label, peer.to(ARGS.device), ours.to(ARGS.device)


def sync() -> None:
    if ARGS.device.startswith("cuda"):
        torch.cuda.synchronize()


def infer(model, x):
    def run():
        model.eval()
        with torch.inference_mode():
            model(x)
    return run


def train(model, x):
    def run():
        model.train()
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()
    return run


def time_alternately(runs: list, repeats: int) -> list[float]:
    """Median seconds of each callable, timed in turn (one warm-up each)."""
    for run in runs:
        run()
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for i, run in enumerate(runs):
            sync()
            t0 = time.perf_counter()
            run()
            sync()
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def measure(name: str) -> dict:
    label, peer, ours = pair(name)
    x = torch.randn(ARGS.batch, 3, 224, 224, device=ARGS.device)
    with torch.inference_mode():
        diff = (peer.eval()(x) - ours.eval()(x)).abs().max().item()
    t_inf = time_alternately([infer(ours, x), infer(peer, x)], ARGS.repeats)
    t_train = time_alternately([train(ours, x), train(peer, x)], ARGS.repeats)
    ips = [ARGS.batch / t for t in t_inf + t_train]
    return {"model": name, "peer": label, "max_abs_diff": diff,
            "cnnlab_infer_ips": ips[0], "peer_infer_ips": ips[1],
            "cnnlab_train_ips": ips[2], "peer_train_ips": ips[3]}


def measure_predict() -> dict:
    from skimage import data
    from sklearn.datasets import load_sample_images

    photos = {n: getattr(data, n)() for n in ("chelsea", "coffee", "astronaut", "rocket", "camera")}
    photos.update(zip(("china", "flower"), load_sample_images().images))
    t0 = time.perf_counter()
    results = cnnlab.predict("efficientnet_lite0", list(photos.values()), weights="imagenet", topk=1,
                             device=ARGS.device)
    seconds = time.perf_counter() - t0
    top1 = {n: f"{r.top[0].name} ({r.top[0].prob:.2f})" for n, r in zip(photos, results)}
    return {"images": len(photos), "seconds_incl_model_load": seconds, "top1": top1}


def main() -> None:
    rows = []
    print(f"{'model':<19} {'peer':<27} {'infer cnnlab':>13} {'infer peer':>11} "
          f"{'train cnnlab':>13} {'train peer':>11} {'max|diff|':>10}")
    for name in ARGS.models:
        r = measure(name)
        rows.append(r)
        print(f"{r['model']:<19} {r['peer']:<27} {r['cnnlab_infer_ips']:>13.2f} {r['peer_infer_ips']:>11.2f} "
              f"{r['cnnlab_train_ips']:>13.2f} {r['peer_train_ips']:>11.2f} {r['max_abs_diff']:>10.1e}", flush=True)
    out = {"meta": {"unit": "images/s (median)", "device": ARGS.device, "threads": ARGS.threads,
                    "batch": ARGS.batch, "repeats": ARGS.repeats, "input": 224, "torch": torch.__version__,
                    "torchvision": torchvision.__version__, "timm": timm.__version__,
                    "machine": platform.processor() or platform.machine(),
                    "gpu": torch.cuda.get_device_name() if ARGS.device.startswith("cuda") else None},
           "results": rows}
    if ARGS.predict:
        out["predict"] = measure_predict()
        print(f"predict: {out['predict']['images']} photos in {out['predict']['seconds_incl_model_load']:.2f} s "
              f"(model load included): {out['predict']['top1']}")
    write_json(ARGS.out, out)
    print(f"wrote {ARGS.out}")


if __name__ == "__main__":
    main()
