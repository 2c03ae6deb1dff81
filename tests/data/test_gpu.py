"""The GPU path's batched decode + augmentation, run on the CPU (its fallback), and auto selection."""

import numpy as np
import torch
from torch.utils.data import DataLoader

from cnnlab.data import build_transform, open_dataset
from cnnlab.data.gpu import (
    BatchRandomResizedCrop,
    GpuLoader,
    auto_loader,
    decode_batch,
    gpu_path_fits,
    orient,
)
from cnnlab.data.transforms import resolve_augment

from .conftest import make_exif_rotated, make_truncated, photo, save

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def test_boxes_follow_random_resized_crop_rules():
    aug = BatchRandomResizedCrop(32, MEAN, STD, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3))
    torch.manual_seed(0)
    sizes = torch.tensor([[375, 500], [100, 40], [60, 60]] * 50)
    boxes = aug.boxes(sizes)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert (
        (boxes[:, :2] >= 0).all()
        and (boxes[:, 2] <= sizes[:, 1]).all()
        and (boxes[:, 3] <= sizes[:, 0]).all()
    )
    frac = (w * h) / (sizes[:, 0] * sizes[:, 1])
    assert (frac > 0.06).all() and (frac <= 1.0).all()
    assert ((w / h) > 0.7).all() and ((w / h) < 1.4).all()


def test_whole_image_box_is_an_identity_resize():
    x = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8)
    aug = BatchRandomResizedCrop(
        16, (0, 0, 0), (1 / 255, 1 / 255, 1 / 255), scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False
    )
    out = aug([x])
    assert torch.allclose(out[0], x.float(), atol=1e-3)


def test_batched_path_on_cpu_gives_normalised_batches(class_folder, tmp_path):
    make_truncated(class_folder / "cat" / "zz_half.jpg")
    save(photo(30, 30), class_folder / "dog" / "zz_png.png")
    splits = open_dataset(str(class_folder), val_split=0.3, split_file=str(tmp_path / "s.json"))
    aug = BatchRandomResizedCrop(24, MEAN, STD)
    loader = GpuLoader(splits.train, aug, batch_size=32, shuffle=True, seed=0, device="cpu")
    torch.manual_seed(0)
    batches = list(loader)
    x, y = batches[0]
    assert x.shape[1:] == (3, 24, 24) and x.dtype == torch.float32 and len(x) == len(y)
    assert -2.1 <= x.min() and x.max() <= 2.1  # (0..1 - 0.5) / 0.25
    total = sum(len(b[1]) for b in batches)
    truncated_in_train = any(p.endswith("zz_half.jpg") for p, _ in splits.train.samples)
    assert total == len(splits.train) - truncated_in_train


def test_exif_orientation_on_the_batched_path(tmp_path):
    path = make_exif_rotated(tmp_path / "r.jpg")
    data = torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8)
    (img,), kept = decode_batch([data], "cpu", "RGB", [6])
    assert kept == [0] and img.shape == (3, 40, 20)
    from cnnlab.data.images import load_image

    pil = torch.from_numpy(np.array(load_image(path))).permute(2, 0, 1)
    assert (img.int() - pil.int()).abs().float().mean() < 3
    x = torch.arange(6).view(1, 2, 3)
    assert torch.equal(orient(x, 3), x.flip(-1).flip(-2)) and orient(x, 8).shape == (1, 3, 2)


def test_auto_loader_falls_back_to_cpu_workers_without_cuda(class_folder, tmp_path):
    splits = open_dataset(str(class_folder), val_split=0.3, split_file=str(tmp_path / "s.json"))
    aug = resolve_augment("inception", color_jitter=0.0)
    assert not gpu_path_fits(splits.train, aug, "cpu")
    splits.train.transform = build_transform("inception", train=True, input_size=24, mean=MEAN, std=STD,
                                             color_jitter=0.0)
    for device in ("cpu", "cuda"):  # asking for CUDA on a CPU-only machine must still work
        if device == "cuda" and torch.cuda.is_available():
            continue
        loader = auto_loader(splits.train, aug, size=24, mean=MEAN, std=STD, batch_size=4, shuffle=True,
                             device=device)
        assert isinstance(loader, DataLoader)
        x, y = next(iter(loader))
        assert x.shape == (4, 3, 24, 24)
