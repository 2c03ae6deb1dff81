"""cnnlab's ViT and Swin beside torchvision's, on the CPU, in the same run.

For each pair (cnnlab ``vit_b_16`` / torchvision ``vit_b_16``, cnnlab ``swin_t`` / torchvision
``swin_t``), the cnnlab model loads the torchvision model's random weights, then both are timed on
the same float32 batch of ``--batch`` 3x224x224 images:

* inference: eval-mode forward under ``torch.inference_mode``, images/s;
* training: forward + backward of the summed logits in train mode, images/s.

Each figure is the median of ``--repeats`` timed runs after 2 warm-up runs; the two libraries are
timed alternately so that load on a shared machine hits both alike. Also reported: the largest
absolute difference of their eval logits. Threads: ``--threads`` (default 1) for both.
Prints a table and writes benchmarks/results/attention.json (atomically).

    python benchmarks/bench_attention.py [--threads 1] [--batch 4] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--models", nargs="+", default=["vit_b_16", "swin_t"])
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "attention.json"))
    return p.parse_args()


ARGS = parse_args()
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)

import torch  # noqa: E402
import torchvision  # noqa: E402

import cnnlab  # noqa: E402
from cnnlab.utils.io import write_json  # noqa: E402

torch.set_num_threads(ARGS.threads)


def infer_step(model, x):
    def run():
        with torch.inference_mode():
            model(x)
    return run


def train_step(model, x):
    def run():
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()
    return run


def time_pair(fns, repeats: int) -> list[float]:
    """Median seconds of each function, timing them alternately."""
    for fn in fns:
        for _ in range(2):
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def bench_model(name: str) -> dict:
    torch.manual_seed(0)
    tv = getattr(torchvision.models, name)()
    torch.nn.init.normal_(tv.get_submodule("heads.head" if name.startswith("vit") else "head").weight, std=0.05)
    ours = cnnlab.create_model(name)
    ours.load_state_dict(tv.state_dict())
    x = torch.randn(ARGS.batch, 3, 224, 224)
    tv.eval(), ours.eval()
    with torch.inference_mode():
        diff = (ours(x) - tv(x)).abs().max().item()
    infer = time_pair([infer_step(ours, x), infer_step(tv, x)], ARGS.repeats)
    tv.train(), ours.train()
    train = time_pair([train_step(ours, x), train_step(tv, x)], ARGS.repeats)
    ips = [ARGS.batch / s for s in infer + train]
    return {"model": name, "max_abs_diff": diff, "cnnlab_infer_ips": ips[0], "torchvision_infer_ips": ips[1],
            "cnnlab_train_ips": ips[2], "torchvision_train_ips": ips[3]}


def main() -> None:
    rows = [bench_model(name) for name in ARGS.models]
    print(f"CPU, {ARGS.threads} thread(s), batch {ARGS.batch} x 3x224x224 float32, median of {ARGS.repeats}")
    print(f"{'model':10} {'infer img/s cnnlab':>19} {'torchvision':>12} {'train img/s cnnlab':>19} "
          f"{'torchvision':>12} {'max |diff|':>11}")
    for r in rows:
        print(f"{r['model']:10} {r['cnnlab_infer_ips']:19.2f} {r['torchvision_infer_ips']:12.2f} "
              f"{r['cnnlab_train_ips']:19.2f} {r['torchvision_train_ips']:12.2f} {r['max_abs_diff']:11.2e}")
    meta = {"device": "cpu", "cpu": platform.processor() or platform.machine(), "threads": ARGS.threads,
            "batch": ARGS.batch, "repeats": ARGS.repeats, "torch": torch.__version__,
            "torchvision": torchvision.__version__, "cpu_count": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0]}
    write_json(ARGS.out, {"meta": meta, "rows": rows})
    print(f"wrote {ARGS.out}")


if __name__ == "__main__":
    main()
