"""Training throughput: cnnlab's trainer against a plain PyTorch loop and timm, in the same run.

Measured: training images/s (forward, cross-entropy, backward, optimizer step, loss read back; no
evaluation) on the CPU, with the same model, batch size, optimizer and data for every contender:

* ``resnet18`` at 64x64 on synthetic images (10 classes): cnnlab's trainer (``cnnlab.engine.fit``),
  a plain loop over the same cnnlab model, and a plain loop over timm's ``resnet18``;
* ``lenet5`` on the built-in digits (1x32x32, no augmentation): cnnlab's trainer and a plain loop.

The contenders alternate, ``REPEATS`` times each (after one warm-up round), so load that changes
during the run affects all of them alike; the table shows the best (the least disturbed) and the
median repeat, and the overhead is computed on the best. The trainer's figure is its own per-epoch images/s
(train
phase only). Writes benchmarks/results/train.json (atomically) and prints a table.

    python benchmarks/bench_train.py
"""

from __future__ import annotations

import os
import platform
import statistics
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from cnnlab import create_model
from cnnlab.engine import FitConfig, fit
from cnnlab.utils.io import write_json

REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
THREADS = int(os.environ.get("BENCH_THREADS", "1"))  # one thread: steadier on a shared machine
SETTINGS = {"optimizer": "momentum", "lr": 0.01, "batch_size": 32}


def plain_loop(model: nn.Module, data, epochs: int) -> float:
    """The loop everybody writes: images/s over ``epochs`` epochs."""
    loader = DataLoader(data, batch_size=SETTINGS["batch_size"], shuffle=True, drop_last=True)
    opt = torch.optim.SGD(model.parameters(), lr=SETTINGS["lr"], momentum=0.9)
    model.train()
    seen, start = 0, time.perf_counter()
    for _ in range(epochs):
        for x, y in loader:
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss.item()
            seen += len(y)
    return seen / (time.perf_counter() - start)


def trainer(model: nn.Module, data, epochs: int, num_classes: int) -> float:
    tiny_val = torch.utils.data.Subset(data, range(8))
    result = fit(
        model,
        data,
        tiny_val,
        FitConfig(epochs=epochs, progress=False, schedule="constant", **SETTINGS),
        num_classes=num_classes,
    )
    images = sum(r["images_per_s"] * r["seconds"] for r in result.history)
    return images / sum(r["seconds"] for r in result.history)


def synthetic(n: int, size: int, classes: int = 10) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    return TensorDataset(
        torch.randn(n, 3, size, size, generator=g), torch.randint(0, classes, (n,), generator=g)
    )


def digits() -> TensorDataset:
    from cnnlab.data import build_transform, open_dataset

    splits = open_dataset("digits", in_chans=1)
    t = build_transform("none", train=False, input_size=32, mean=splits.mean, std=splits.std)
    splits.train.transform = t
    xs, ys = zip(*(splits.train[i] for i in range(len(splits.train))))
    return TensorDataset(torch.stack(xs), torch.tensor(ys))


def contenders():
    import timm

    rn_data = synthetic(128, 64)
    lenet_data = digits()

    def fresh(name, **kw):
        torch.manual_seed(0)
        return create_model(name, **kw)

    return {
        ("resnet18 64x64 synthetic", "cnnlab trainer"): lambda: trainer(
            fresh("resnet18", num_classes=10), rn_data, 1, 10
        ),
        ("resnet18 64x64 synthetic", "plain PyTorch loop"): lambda: plain_loop(
            fresh("resnet18", num_classes=10), rn_data, 1
        ),
        ("resnet18 64x64 synthetic", "timm resnet18, plain loop"): lambda: plain_loop(
            timm.create_model("resnet18", num_classes=10), rn_data, 1
        ),
        ("lenet5 digits 1x32x32", "cnnlab trainer"): lambda: trainer(
            fresh("lenet5", num_classes=10, in_chans=1), lenet_data, 2, 10
        ),
        ("lenet5 digits 1x32x32", "plain PyTorch loop"): lambda: plain_loop(
            fresh("lenet5", num_classes=10, in_chans=1), lenet_data, 2
        ),
    }


def main() -> None:
    torch.set_num_threads(THREADS)
    runs = contenders()
    samples: dict = {k: [] for k in runs}
    for fn in runs.values():  # warm-up (allocator, first-call costs), not counted
        fn()
    for _ in range(REPEATS):
        for k, fn in runs.items():
            samples[k].append(fn())
    rows = []
    for (case, who), values in samples.items():
        plain = max(samples[(case, "plain PyTorch loop")])
        rows.append(
            {
                "case": case,
                "contender": who,
                "images_per_s": round(max(values), 1),
                "median_images_per_s": round(statistics.median(values), 1),
                "samples": [round(v, 1) for v in values],
                "vs_plain_pct": round(100 * (max(values) / plain - 1), 2),
            }
        )
    print(f"{'case':<26} {'contender':<27} {'best img/s':>10} {'median':>8} {'vs plain':>9}")
    for r in rows:
        print(
            f"{r['case']:<26} {r['contender']:<27} {r['images_per_s']:>10.1f} "
            f"{r['median_images_per_s']:>8.1f} "
            f"{r['vs_plain_pct']:>+8.2f}%"
        )
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "train.json")
    write_json(
        out,
        {
            "what": "training images/s on CPU, best and median of alternating repeats",
            "threads": THREADS,
            "repeats": REPEATS,
            "settings": SETTINGS,
            "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "rows": rows,
        },
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
