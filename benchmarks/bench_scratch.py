"""The NumPy engine beside PyTorch on the CPU, in the same run.

1. Forward + backward of one convolution layer (im2col + GEMM vs torch's CPU conv2d), float32, for
   LeNet- and VGG-block-sized layers; the median of ``--repeats`` timed runs after 2 warm-up runs.
2. Training images/s of the scratch LeNet-5 vs cnnlab's torch ``lenet5_relu`` (the same network), SGD
   with momentum, batches of 64 random 1x32x32 images, float32.

Both libraries get the same number of threads (``--threads``, default 1; set before numpy and torch
load their BLAS). Prints a table and writes benchmarks/results/scratch.json (atomically).

    python benchmarks/bench_scratch.py [--threads 1] [--repeats 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--train-steps", type=int, default=40, help="timed training steps per library")
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "scratch.json"))
    return p.parse_args()


ARGS = parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import cnnlab  # noqa: E402
from cnnlab import scratch as S  # noqa: E402
from cnnlab.utils.io import write_json  # noqa: E402

torch.set_num_threads(ARGS.threads)

# (name, batch, in_ch, out_ch, size, kernel, padding)
CONV_LAYERS = (
    ("LeNet C1 1->6 5x5 @32", 64, 1, 6, 32, 5, 0),
    ("LeNet C3 6->16 5x5 @14", 64, 6, 16, 14, 5, 0),
    ("VGG (CIFAR) 64->64 3x3 @32", 16, 64, 64, 32, 3, 1),
    ("VGG block2 128->128 3x3 @56", 4, 128, 128, 56, 3, 1),
)


def median_seconds(fn, repeats: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def bench_conv(name, n, cin, cout, size, k, pad) -> dict:
    rng = np.random.default_rng(0)
    layer = S.Conv2d(cin, cout, k, padding=pad, rng=rng)
    x = rng.standard_normal((n, cin, size, size)).astype(np.float32)
    dout = rng.standard_normal(layer.forward(x).shape).astype(np.float32)

    def ours():
        layer.forward(x)
        layer.backward(dout)

    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(layer.weight.data, requires_grad=True)
    bt = torch.tensor(layer.bias.data, requires_grad=True)
    dt = torch.tensor(dout)

    def theirs():
        F.conv2d(xt, wt, bt, padding=pad).backward(dt)

    t_ours, t_torch = median_seconds(ours, ARGS.repeats), median_seconds(theirs, ARGS.repeats)
    macs = S.Sequential([layer]).mac_count((cin, size, size), batch=n)
    return {"layer": name, "batch": n, "macs": macs, "scratch_ms": 1e3 * t_ours, "torch_ms": 1e3 * t_torch,
            "ratio": t_ours / t_torch}


def bench_training(batch: int = 64) -> dict:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((ARGS.train_steps * batch, 1, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, len(x))
    ours = S.lenet5(seed=0)
    opt, loss_fn = S.Momentum(ours.params(), lr=0.01, momentum=0.9), S.SoftmaxCrossEntropy()

    def ours_epoch():
        for i in range(0, len(x), batch):
            loss_fn(ours.forward(x[i:i + batch]), y[i:i + batch])
            ours.backward(loss_fn.backward())
            opt.step()

    ref = cnnlab.create_model("lenet5_relu", num_classes=10, in_chans=1).train()
    topt = torch.optim.SGD(ref.parameters(), lr=0.01, momentum=0.9)
    xt, yt = torch.tensor(x), torch.tensor(y)

    def torch_epoch():
        for i in range(0, len(x), batch):
            topt.zero_grad()
            F.cross_entropy(ref(xt[i:i + batch]), yt[i:i + batch]).backward()
            topt.step()

    repeats = max(3, ARGS.repeats // 3)
    t_ours, t_torch = median_seconds(ours_epoch, repeats), median_seconds(torch_epoch, repeats)
    return {"model": "LeNet-5 (textbook, lenet5_relu)", "batch": batch, "images": len(x),
            "scratch_images_per_s": len(x) / t_ours, "torch_images_per_s": len(x) / t_torch,
            "ratio": t_ours / t_torch}


def main() -> int:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    convs = [bench_conv(*row) for row in CONV_LAYERS]
    train = bench_training()
    print(
        f"threads {ARGS.threads}, repeats {ARGS.repeats}, numpy {np.__version__}, torch {torch.__version__}, "
        f"load average at start {load}"
    )
    print(
        f"{'conv layer (fwd+bwd, float32)':<30} {'batch':>5} {'MMACs':>8} {'scratch ms':>11} {'torch ms':>9} "
        f"{'ratio':>6}"
    )
    for r in convs:
        print(f"{r['layer']:<30} {r['batch']:>5} {r['macs'] / 1e6:>8.1f} {r['scratch_ms']:>11.2f} "
              f"{r['torch_ms']:>9.2f} {r['ratio']:>6.2f}")
    print(f"{'training LeNet-5, batch 64':<30} scratch {train['scratch_images_per_s']:,.0f} img/s, "
          f"torch {train['torch_images_per_s']:,.0f} img/s, ratio {train['ratio']:.2f}")
    write_json(ARGS.out, {"threads": ARGS.threads, "repeats": ARGS.repeats, "numpy": np.__version__,
                          "torch": torch.__version__, "cpu_count": os.cpu_count(), "load_average": load,
                          "conv": convs, "training": train})
    print(f"wrote {ARGS.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
