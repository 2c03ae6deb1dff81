"""cnnlab's classic CNNs beside their torchvision / timm peers, on the CPU, in the same run.

For each pair (``alexnet``, ``vgg11``, ``googlenet`` vs torchvision; ``xception`` vs timm
``legacy_xception``) the cnnlab model loads the peer's random weights through ``weights=`` (a
state_dict file), then both are timed on the same float32 batch of ``--batch`` images at the model's
default input size (224; Xception 299):

* inference: eval-mode forward under ``torch.inference_mode``, images/s;
* training: forward + backward of the summed logits in train mode (GoogLeNet: main logits only,
  aux heads off on both sides), images/s.

Each figure is the median of ``--repeats`` timed runs after one warm-up run; the two libraries are
timed alternately so that load on a shared machine hits both alike. Also reported: the largest
absolute difference of their eval logits. Threads: ``--threads`` (default 1) for both.
Prints a table and writes benchmarks/results/classic.json (atomically).

    python benchmarks/bench_classic.py [--threads 1] [--batch 2] [--repeats 3] [--models alexnet ...]
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
    p.add_argument("--models", nargs="+", default=["alexnet", "vgg11", "googlenet", "xception"])
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "classic.json"))
    return p.parse_args()


ARGS = parse_args()
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)

import timm  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

import cnnlab  # noqa: E402
from cnnlab.utils.io import write_json  # noqa: E402

torch.set_num_threads(ARGS.threads)

PEERS = {  # cnnlab name -> (peer label, builder of the peer, cnnlab keyword arguments)
    "alexnet": ("torchvision alexnet", lambda: torchvision.models.alexnet(), {}),
    "vgg11": ("torchvision vgg11", lambda: torchvision.models.vgg11(), {}),
    "googlenet": ("torchvision googlenet", lambda: torchvision.models.googlenet(aux_logits=False, init_weights=True),
                  {"aux_logits": False}),
    "xception": ("timm legacy_xception", lambda: timm.create_model("legacy_xception"), {}),
}


def pair(name: str) -> tuple[str, torch.nn.Module, torch.nn.Module]:
    label, make_peer, kwargs = PEERS[name]
    peer = make_peer()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "peer.pth")
        torch.save(peer.state_dict(), path)
        ours = cnnlab.create_model(name, weights=path, **kwargs)
    return label, peer, ours


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
        out = model(x)
        (out[0] if isinstance(out, tuple) else out).sum().backward()
    return run


def time_alternately(runs: list, repeats: int) -> list[float]:
    """Median seconds of each callable, timed in turn (one warm-up each)."""
    for run in runs:
        run()
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for i, run in enumerate(runs):
            t0 = time.perf_counter()
            run()
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def measure(name: str) -> dict:
    label, peer, ours = pair(name)
    size = ours.default_cfg.input_size[-1]
    x = torch.randn(ARGS.batch, 3, size, size)
    with torch.inference_mode():
        diff = (peer.eval()(x) - ours.eval()(x)).abs().max().item()
    t_inf = time_alternately([infer(ours, x), infer(peer, x)], ARGS.repeats)
    t_train = time_alternately([train(ours, x), train(peer, x)], ARGS.repeats)
    ips = [ARGS.batch / t for t in t_inf + t_train]
    return {"model": name, "peer": label, "input": size, "max_abs_diff": diff,
            "cnnlab_infer_ips": ips[0], "peer_infer_ips": ips[1],
            "cnnlab_train_ips": ips[2], "peer_train_ips": ips[3]}


def main() -> None:
    rows = []
    head = f"{'model':<10} {'peer':<22} {'in':>4} {'infer cnnlab':>13} {'infer peer':>11} " \
           f"{'train cnnlab':>13} {'train peer':>11} {'max|diff|':>10}"
    print(head)
    for name in ARGS.models:
        r = measure(name)
        rows.append(r)
        print(f"{r['model']:<10} {r['peer']:<22} {r['input']:>4} {r['cnnlab_infer_ips']:>13.2f} "
              f"{r['peer_infer_ips']:>11.2f} {r['cnnlab_train_ips']:>13.2f} {r['peer_train_ips']:>11.2f} "
              f"{r['max_abs_diff']:>10.1e}", flush=True)
    meta = {"unit": "images/s (median)", "device": "cpu", "threads": ARGS.threads, "batch": ARGS.batch,
            "repeats": ARGS.repeats, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "timm": timm.__version__, "cpu": platform.processor() or platform.machine()}
    write_json(ARGS.out, {"meta": meta, "results": rows})
    print(f"wrote {ARGS.out}")


if __name__ == "__main__":
    main()
