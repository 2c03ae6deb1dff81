"""Training-image throughput per worker: decode + RandomResizedCrop(224) + flip + normalise.

Images: ``--images`` JPEGs of 500x375 (ImageNet's typical size), made from the shared scenes photos
(150x150, upscaled bicubic, quality 90) into a temporary folder. Each pipeline turns a file path into
a normalised float32 3x224x224 tensor, in ONE process with one thread (a DataLoader worker):

* ``cnnlab``: ``ImageFileDataset`` + ``build_transform("none", base="rrc", flip=True)`` - libjpeg-turbo
  decoding (simplejpeg) with the fast IDCT that training transforms ask for, channels-last uint8
  antialiased resize, fused normalisation;
* ``cnnlab, exact decode``: the same with the exact IDCT (what evaluation uses; pixels identical to
  PIL's and torchvision's decoders);
* ``torchvision + PIL``: the classic ImageNet recipe - PIL ``open().convert("RGB")``,
  ``transforms.RandomResizedCrop(224)``, ``RandomHorizontalFlip``, ``ToTensor``, ``Normalize``;
* ``torchvision v2 + PIL``: the same with ``transforms.v2`` (``ToImage``, ``ToDtype``, ``Normalize``);
* ``albumentations``: ``cv2.imread`` + ``cvtColor``, ``A.RandomResizedCrop(224)``, ``HorizontalFlip``,
  ``Normalize``, ``ToTensorV2`` (OpenCV's resize is not antialiased; the others are);
* ``cnnlab GPU path``: files read by the loader, nvJPEG batch decode and batched crop/flip/normalise
  (:mod:`cnnlab.data.gpu`), batches of 256 - only when CUDA is present; ``... on CPU`` is the same
  batched code on the CPU (its fallback), for reference.

The pipelines run alternately (in a rotating order) ``--repeats`` times over all images; a figure is images /
CPU-second of
this process (``time.process_time``: on a shared machine, wall time mostly measures the neighbours)
- the best and the median of the repeats - and images / wall-second (best). Writes
benchmarks/results/data.json (atomically) and prints a table.

    python benchmarks/bench_data.py [--images 200] [--repeats 7] [--scenes ../shared/data/scenes]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--scenes", default=str(ROOT.parent / "shared" / "data" / "scenes"))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "data.json"))
    return p.parse_args()


ARGS = parse_args()
os.environ["OMP_NUM_THREADS"] = "1"
warnings.simplefilter("ignore", DeprecationWarning)

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from cnnlab.data import ImageFileDataset, build_transform  # noqa: E402
from cnnlab.utils.io import write_json  # noqa: E402

torch.set_num_threads(1)
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SIZE = 224


def make_jpegs(scenes: Path, folder: Path, n: int) -> list[str]:
    """``n`` 500x375 JPEGs from the readable scenes photos (buildings and forest, alternately)."""
    sources = []
    for cls in ("buildings", "forest"):
        sources.append(sorted(p for p in (scenes / cls).glob("*.jpg") if p.stat().st_size > 0))
    paths = []
    for i in range(n):
        src = sources[i % 2][i // 2]
        out = folder / f"{i:04d}.jpg"
        Image.open(src).convert("RGB").resize((500, 375), Image.BICUBIC).save(out, quality=90)
        paths.append(str(out))
    return paths


def cnnlab_pipeline(paths, fast_decode: bool = True):
    transform = build_transform(
        "none", train=True, input_size=SIZE, mean=MEAN, std=STD, base="rrc", flip=True
    )
    transform.fast_decode = fast_decode
    dataset = ImageFileDataset([(p, 0) for p in paths], ["x"], transform=transform)
    return lambda i: dataset[i][0]


def torchvision_pipeline(paths):
    from torchvision import transforms as T

    t = T.Compose([T.RandomResizedCrop(SIZE), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)])
    return lambda i: t(Image.open(paths[i]).convert("RGB"))


def torchvision_v2_pipeline(paths):
    from torchvision.transforms import v2 as T

    t = T.Compose([T.RandomResizedCrop(SIZE, antialias=True), T.RandomHorizontalFlip(), T.ToImage(),
                   T.ToDtype(torch.float32, scale=True), T.Normalize(MEAN, STD)])
    return lambda i: t(Image.open(paths[i]).convert("RGB"))


def albumentations_pipeline(paths):
    import albumentations as A
    import cv2
    from albumentations.pytorch import ToTensorV2

    cv2.setNumThreads(1)
    t = A.Compose(
        [
            A.RandomResizedCrop(size=(SIZE, SIZE)),
            A.HorizontalFlip(),
            A.Normalize(mean=MEAN, std=STD),
            ToTensorV2(),
        ]
    )
    return lambda i: t(image=cv2.cvtColor(cv2.imread(paths[i]), cv2.COLOR_BGR2RGB))["image"]


def batched_pipeline(paths, device: str, batch: int = 256):
    """The GPU path's code: returns a per-image callable that runs a whole batch every ``batch`` calls."""
    from cnnlab.data.gpu import BatchRandomResizedCrop, decode_batch

    augment = BatchRandomResizedCrop(SIZE, MEAN, STD)
    state = {}

    def step(i):
        if i % batch == 0:
            chunk = paths[i: i + batch]
            data = [torch.frombuffer(bytearray(Path(p).read_bytes()), dtype=torch.uint8) for p in chunk]
            images, _ = decode_batch(data, device)
            state["x"] = augment(images)
            if device == "cuda":
                torch.cuda.synchronize()
        return state["x"][i % batch]
    return step


def measure(pipelines: dict, n: int, repeats: int) -> dict:
    cpu = {k: [] for k in pipelines}
    wall = {k: [] for k in pipelines}
    for run in pipelines.values():  # warm-up (imports, allocator, caches)
        for i in range(min(n, 8)):
            run(i)
    names = list(pipelines)
    for r in range(repeats):  # the order rotates, so no pipeline always runs first in a round
        for name in names[r % len(names):] + names[: r % len(names)]:
            run = pipelines[name]
            c0, w0 = time.process_time(), time.perf_counter()
            for i in range(n):
                out = run(i)
            cpu[name].append(n / max(time.process_time() - c0, 1e-9))
            wall[name].append(n / max(time.perf_counter() - w0, 1e-9))
            assert tuple(out.shape) == (3, SIZE, SIZE) and out.dtype == torch.float32, name
    return {k: {"cpu_best": max(cpu[k]), "cpu_median": statistics.median(cpu[k]), "wall_best": max(wall[k])}
            for k in pipelines}


def main() -> int:
    scenes = Path(ARGS.scenes)
    if not scenes.is_dir():
        print(f"no scenes photos at {scenes}; pass --scenes DIR", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_jpegs(scenes, Path(tmp), ARGS.images)
        pipelines = {"cnnlab": cnnlab_pipeline(paths), "cnnlab, exact decode": cnnlab_pipeline(paths, False),
                     "torchvision + PIL": torchvision_pipeline(paths),
                     "torchvision v2 + PIL": torchvision_v2_pipeline(paths)}
        try:
            pipelines["albumentations"] = albumentations_pipeline(paths)
        except ImportError:
            print("albumentations is not installed (pip install -e '.[bench]'): skipped")
        pipelines["cnnlab batched path on CPU"] = batched_pipeline(paths, "cpu")
        if torch.cuda.is_available():
            pipelines["cnnlab GPU path (nvJPEG)"] = batched_pipeline(paths, "cuda")
        results = measure(pipelines, len(paths), ARGS.repeats)
    print(f"{'pipeline':<30} {'img/s/worker (CPU time) best':>28} {'median':>8} {'wall best':>10}")
    for name, r in results.items():
        print(f"{name:<30} {r['cpu_best']:>28,.0f} {r['cpu_median']:>8,.0f} {r['wall_best']:>10,.0f}")
    fastest_peer = max(v["cpu_best"] for k, v in results.items() if not k.startswith("cnnlab"))
    print(f"cnnlab / fastest peer (CPU time, best): {results['cnnlab']['cpu_best'] / fastest_peer:.2f}")
    write_json(
        ARGS.out,
        {
            "images": len(paths),
            "image_size": [500, 375],
            "crop": SIZE,
            "repeats": ARGS.repeats,
            "threads": 1,
            "torch": torch.__version__,
            "cuda": torch.cuda.is_available(),
            "machine": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
