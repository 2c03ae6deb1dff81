"""The GPU path: JPEG decoding with nvJPEG and batched augmentation on the device.

When CPU decoding is the bottleneck (many GPUs' worth of images per second), worker processes only
read the files' bytes; the main process decodes a whole batch at once with
``torchvision.io.decode_jpeg(list, device="cuda")`` and applies RandomResizedCrop + horizontal flip
+ normalisation to the batch with a constant number of kernel launches:

* the crops of all images are cut and resized by ONE ``torchvision.ops.roi_align`` call on the
  zero-padded batch (bilinear, ``sampling_ratio=-1``: each output pixel averages
  ``ceil(crop / size)`` x ``ceil(crop / size)`` samples, an antialiasing box filter), not by a Python
  loop of per-image resizes (which is what limits naive GPU pipelines);
* flips are one ``torch.where`` with a per-image mask; normalisation one multiply-add.

The same code runs on the CPU (decode_jpeg on the CPU, roi_align on the CPU): that is the fallback
on machines without CUDA, and what the tests exercise. :func:`auto_loader` picks the GPU path only on
CUDA, for RandomResizedCrop + flip training transforms, when a short timed probe finds it faster than
the CPU workers; otherwise it returns the ordinary :func:`~cnnlab.data.loader.make_loader`.
"""

from __future__ import annotations

import math
import time
import warnings

import torch
from torch.utils.data import Dataset
from torchvision.ops import roi_align

from ..utils.log import notice
from .datasets import ImageFileDataset
from .images import BadImage, exif_orientation, open_image
from .loader import make_loader
from .transforms import Augment

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from torchvision.io import ImageReadMode, decode_image, decode_jpeg

PROBE_BATCHES = 2  # batches timed on each path by auto_loader
ROTATIONS = {3: 2, 6: -1, 8: 1}  # EXIF orientation -> torch.rot90 quarter turns (counter-clockwise)


class EncodedFiles(Dataset):
    """Items ``(file bytes as a uint8 tensor, label, EXIF orientation)`` of an :class:`ImageFileDataset`.
    Unreadable headers are skipped like the dataset skips them (the next file is used)."""

    def __init__(self, dataset: ImageFileDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        samples = self.dataset.samples
        for step in range(len(samples)):
            path, label = samples[(index + step) % len(samples)]
            try:
                with open(path, "rb") as fh:
                    data = bytearray(fh.read())
                orientation = exif_orientation(open_image(path, data))
            except (BadImage, OSError) as exc:
                self.dataset.report.add(path, getattr(exc, "reason", str(exc)))
                continue
            return torch.frombuffer(data, dtype=torch.uint8), label, orientation, path
        raise RuntimeError("every file of this dataset is unreadable; run `cnnlab data check` on it")


def collate_encoded(batch):
    data, labels, orientations, paths = zip(*batch)
    return list(data), torch.tensor(labels), list(orientations), list(paths)


def orient(img: torch.Tensor, orientation: int) -> torch.Tensor:
    """Apply an EXIF orientation (1-8) to a (C, H, W) tensor."""
    if orientation in (2, 4, 5, 7):  # the mirrored ones: mirror first, then rotate
        img = img.flip(-1)
        orientation = {2: 1, 4: 3, 5: 8, 7: 6}[orientation]
    return torch.rot90(img, ROTATIONS[orientation], dims=(-2, -1)) if orientation in ROTATIONS else img


def decode_batch(data: list[torch.Tensor], device, mode: str = "RGB", orientations=None, paths=None,
                 report=None) -> tuple[list[torch.Tensor], list[int]]:
    """Decode a batch on ``device`` (nvJPEG on CUDA, all at once); a file the batch decoder rejects is
    decoded on its own (PNG & co. on the CPU), and a file nothing can decode is dropped and reported.
    Returns the images and the indices (into ``data``) they come from."""
    read_mode = ImageReadMode.RGB if mode == "RGB" else ImageReadMode.GRAY
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            images = decode_jpeg(data, mode=read_mode, device=device)
        except RuntimeError:
            images = [_decode_one(d, read_mode, device) for d in data]
    out, kept = [], []
    for i, img in enumerate(images):
        if img is None:
            if report is not None and paths is not None:
                report.add(paths[i], "corrupt: the decoder rejected it")
            continue
        out.append(orient(img, orientations[i]) if orientations and orientations[i] != 1 else img)
        kept.append(i)
    return out, kept


def _decode_one(data: torch.Tensor, read_mode, device):
    try:
        return decode_jpeg(data, mode=read_mode, device=device)
    except RuntimeError:
        try:
            return decode_image(data, mode=read_mode).to(device)
        except RuntimeError:
            return None


class BatchRandomResizedCrop:
    """RandomResizedCrop (torchvision's sampling) + horizontal flip + normalisation on a batch."""

    def __init__(self, size: int, mean, std, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), flip: bool = True):
        self.size, self.scale, self.ratio, self.flip = int(size), tuple(scale), tuple(ratio), flip
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def boxes(self, sizes: torch.Tensor) -> torch.Tensor:
        """(B, 4) crop boxes x1, y1, x2, y2 for image sizes (B, 2) = (H, W): 10 tries per image, all
        images at once, then the centre crop of the clamped aspect ratio where no try fitted."""
        n, tries = len(sizes), 10
        h, w = sizes[:, :1].float(), sizes[:, 1:].float()
        u = torch.rand(n, tries, 4)
        area = h * w * (self.scale[0] + (self.scale[1] - self.scale[0]) * u[..., 0])
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = torch.exp(log_lo + (log_hi - log_lo) * u[..., 1])
        cw, ch = torch.sqrt(area * aspect).round(), torch.sqrt(area / aspect).round()
        ok = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
        first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((n,), -1))
        pick = first.clamp(min=0).unsqueeze(1)
        cw, ch = cw.gather(1, pick).squeeze(1), ch.gather(1, pick).squeeze(1)
        top = (u[..., 2].gather(1, pick).squeeze(1) * (h[:, 0] - ch + 1)).floor()
        left = (u[..., 3].gather(1, pick).squeeze(1) * (w[:, 0] - cw + 1)).floor()
        miss = first < 0  # fallback: the whole image cut to the nearest allowed aspect ratio
        in_ratio = (w[:, 0] / h[:, 0]).clamp(self.ratio[0], self.ratio[1])
        fw = torch.minimum(w[:, 0], (h[:, 0] * in_ratio).round())
        fh = torch.minimum(h[:, 0], (w[:, 0] / in_ratio).round())
        cw, ch = torch.where(miss, fw, cw), torch.where(miss, fh, ch)
        top = torch.where(miss, ((h[:, 0] - fh) / 2).floor(), top)
        left = torch.where(miss, ((w[:, 0] - fw) / 2).floor(), left)
        return torch.stack([left, top, left + cw, top + ch], dim=1)

    def __call__(self, images: list[torch.Tensor]) -> torch.Tensor:
        device = images[0].device
        sizes = torch.tensor([img.shape[-2:] for img in images])
        hmax, wmax = sizes.max(0).values.tolist()
        batch = torch.zeros(len(images), images[0].shape[0], hmax, wmax, device=device)
        for i, img in enumerate(images):  # one copy per image: padding to a common size
            batch[i, :, : img.shape[-2], : img.shape[-1]] = img
        boxes = self.boxes(sizes)
        rois = torch.cat([torch.arange(len(images)).unsqueeze(1).float(), boxes], dim=1).to(device)
        out = roi_align(
            batch, rois, output_size=self.size, spatial_scale=1.0, sampling_ratio=-1, aligned=True
        )
        if self.flip:
            mirror = (torch.rand(len(images)) < 0.5).to(device).view(-1, 1, 1, 1)
            out = torch.where(mirror, out.flip(-1), out)
        return out.div_(255.0).sub_(self.mean.to(device)).div_(self.std.to(device))


class GpuLoader:
    """Batches ``(images normalised on device, labels on device)`` through the GPU path."""

    def __init__(self, dataset: ImageFileDataset, augment: BatchRandomResizedCrop, *, batch_size: int,
                 shuffle: bool, workers: int = 0, seed: int = 0, drop_last: bool = False, device="cuda"):
        self.dataset, self.augment, self.device = dataset, augment, torch.device(device)
        self.loader = make_loader(
            EncodedFiles(dataset),
            batch_size=batch_size,
            shuffle=shuffle,
            workers=workers,
            seed=seed,
            drop_last=drop_last,
            device=device,
            collate_fn=collate_encoded,
        )

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for data, labels, orientations, paths in self.loader:
            images, kept = decode_batch(data, self.device, self.dataset.mode, orientations, paths,
                                        self.dataset.report)
            if not images:
                continue
            yield self.augment(images), labels[kept].to(self.device, non_blocking=True)


def gpu_path_fits(dataset, aug: Augment, device) -> bool:
    """The GPU path implements RandomResizedCrop + flip only, for files, on CUDA."""
    plain = Augment(base="rrc", scale=aug.scale, ratio=aug.ratio, flip=aug.flip)
    return (torch.device(device).type == "cuda" and torch.cuda.is_available()
            and isinstance(dataset, ImageFileDataset) and aug == plain)


def _rate(batches, count: int) -> float:
    start = time.perf_counter()
    seen = 0
    for i, (x, _) in enumerate(batches):
        seen += len(x)
        if i + 1 >= count:
            break
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return seen / max(time.perf_counter() - start, 1e-9)


def auto_loader(dataset, aug: Augment, *, size: int, mean, std, batch_size: int, shuffle: bool,
                workers: int = 0, seed: int = 0, drop_last: bool = False, device="cpu"):
    """The GPU path when it fits and a timed probe finds it faster; else the CPU DataLoader
    (``dataset.transform`` must then already be the training transform)."""
    cpu = make_loader(dataset, batch_size=batch_size, shuffle=shuffle, workers=workers, seed=seed,
                      drop_last=drop_last, device=device)
    if not gpu_path_fits(dataset, aug, device):
        return cpu
    augment = BatchRandomResizedCrop(size, mean, std, aug.scale, aug.ratio, aug.flip)
    gpu = GpuLoader(dataset, augment, batch_size=batch_size, shuffle=shuffle, workers=workers, seed=seed,
                    drop_last=drop_last, device=device)
    gpu_rate, cpu_rate = _rate(gpu, PROBE_BATCHES), _rate(cpu, PROBE_BATCHES)
    choice = gpu if gpu_rate > cpu_rate else cpu
    notice(f"data path: {'GPU (nvJPEG + batched augmentation)' if choice is gpu else 'CPU workers'} "
           f"({gpu_rate:,.0f} vs {cpu_rate:,.0f} images/s in a {PROBE_BATCHES}-batch probe)")
    return choice
