"""Frozen-feature caching: run a frozen backbone once, keep its features on disk, train the head on them.

What is cached: ``model.forward_head(model.forward_features(x), pre_logits=True)`` in eval mode (the
input of the classifier) for every training and validation image, as float32 rows.

Key: the SHA-256 of the model name, the hash of every weight outside the classifier, the
preprocessing (input size, mean/std, interpolation, crop, augmentation preset, augmented copies,
seed), the class names and, per split, the file list with each file's size and mtime (in-memory
data: a hash of the pixels and labels). Any change gives another key, hence a fresh extraction; a
later run with the same key reuses the entry.

Layout: ``<cache_dir>/<model>-<key[:16]>/`` holds shards ``train-00000.safetensors``, ... (tensors
``features`` (rows, dim) float32 and ``labels`` (rows,) int64; metadata: key, split, shard) and
``manifest.json``, written LAST. An entry without a manifest is incomplete and never read as a
cache. Every file is written atomically, so a killed extraction leaves complete shards and no
manifest; the next run (holding the entry's lock) removes leftover temporary files, keeps the
complete shards of the same key and extracts the rest. Augmented copies: copy ``c`` of image ``i``
is row ``c * n + i`` of the training split, its augmentation seeded by ``(seed, c, batch start)``.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import Subset, TensorDataset

from ..errors import CnnlabError
from ..utils.io import atomic_path, write_json

FORMAT = "cnnlab-features-1"
SHARD_ROWS = 2048  # rows per shard file
MANIFEST = "manifest.json"
LOCK = ".lock"


def default_cache_dir() -> Path:
    """``$CNNLAB_CACHE/features`` (default ``~/.cache/cnnlab/features``)."""
    from ..data.folders import cache_dir

    return cache_dir() / "features"


# -- the key ----------------------------------------------------------------------------------------

def weights_hash(model: torch.nn.Module) -> str:
    """SHA-256 (hex, 16 digits) of every state_dict tensor outside the classifier."""
    head = getattr(model, "classifier_path", "") + "."
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        if name.startswith(head):
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def dataset_fingerprint(dataset) -> list | str:
    """Per file ``[path, size, mtime_ns, label]``; for in-memory images a hash of pixels and labels."""
    samples = getattr(dataset, "samples", None)
    if samples is not None:
        out = []
        for path, label in samples:
            try:
                st = os.stat(path)
                out.append([os.path.abspath(path), st.st_size, st.st_mtime_ns, int(label)])
            except OSError:
                out.append([os.path.abspath(path), -1, -1, int(label)])
        return out
    images = getattr(dataset, "images", None)
    if isinstance(images, torch.Tensor):
        h = hashlib.sha256(images.contiguous().reshape(-1).numpy().tobytes())
        h.update(json.dumps(list(map(int, dataset.targets))).encode())
        return h.hexdigest()
    raise CnnlabError(f"cannot fingerprint a {type(dataset).__name__} for the feature cache; "
                      "use a cnnlab dataset (open_dataset) or pass --no-cache")


@dataclass
class CacheSpec:
    """Everything the cached features depend on."""

    model: str
    weights_hash: str
    preprocessing: dict
    classes: list[str]
    files: dict[str, list | str]  # split -> dataset_fingerprint

    def key(self) -> str:
        text = json.dumps({"format": FORMAT, **self.__dict__}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def entry_name(self) -> str:
        return f"{self.model}-{self.key()[:16]}"


# -- an entry on disk -------------------------------------------------------------------------------

@dataclass
class FeatureCache:
    """A complete cache entry: ``path`` and its manifest."""

    path: Path
    manifest: dict
    reused: bool = False
    seconds: float = 0.0  # extraction time of this call (0 when reused)
    shards_reused: int = 0
    notes: list[str] = field(default_factory=list)

    def load(self, split: str) -> TensorDataset:
        """The split's ``(features, labels)`` as an in-memory TensorDataset."""
        from ..weights import read_checkpoint

        info = self.manifest["splits"][split]
        feats, labels = [], []
        for shard in info["shards"]:
            sd, _ = read_checkpoint(self.path / shard)
            feats.append(sd["features"])
            labels.append(sd["labels"])
        return TensorDataset(torch.cat(feats), torch.cat(labels))

    def check_matches(self, model: str, w_hash: str) -> None:
        """Refuse an entry made for another model or other weights (one line)."""
        m = self.manifest
        if m.get("model") != model or m.get("weights_hash") != w_hash:
            raise CnnlabError(
                f"feature cache {self.path} was made for {m.get('model')!r} (weights "
                f"{m.get('weights_hash')}), not {model!r} (weights {w_hash}); drop --cache-from "
                "or rebuild it"
            )


def open_entry(path: str | os.PathLike) -> FeatureCache:
    """An existing complete entry (a folder holding a manifest)."""
    p = Path(path)
    try:
        manifest = json.loads((p / MANIFEST).read_text())
    except (OSError, ValueError):
        raise CnnlabError(f"{p} is not a complete feature cache (no readable {MANIFEST}); "
                          "`cnnlab cache ls` lists the caches") from None
    if manifest.get("format") != FORMAT:
        raise CnnlabError(
            f"{p} is a feature cache of format {manifest.get('format')!r}, not {FORMAT}; remove it"
        )
    return FeatureCache(p, manifest, reused=True)


@contextlib.contextmanager
def _locked(entry: Path):
    """Hold the entry's exclusive lock (another process extracting the same key waits here)."""
    entry.mkdir(parents=True, exist_ok=True)
    fd = os.open(entry / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _remove_leftovers(entry: Path) -> None:
    """Temporary files of a killed writer (safe: we hold the lock, so no writer is alive)."""
    for f in entry.iterdir():
        if f.name.startswith(".") and f.name != LOCK:
            f.unlink(missing_ok=True)


# -- extraction -------------------------------------------------------------------------------------

@dataclass
class ExtractPlan:
    """How to read one split: the dataset (with its transform) and how many copies of it."""

    dataset: object
    transform: object
    copies: int = 1
    seed: int = 0


def cache_features(model: torch.nn.Module, plans: dict[str, ExtractPlan], spec: CacheSpec, *,
                   cache_dir: str | os.PathLike | None = None, batch_size: int = 64, workers: int = 0,
                   shard_rows: int = SHARD_ROWS, device: torch.device | None = None) -> FeatureCache:
    """The entry for ``spec``: reused when complete, else extracted (see the module docstring)."""
    entry = Path(cache_dir or default_cache_dir()) / spec.entry_name()
    if (entry / MANIFEST).is_file():
        return _checked(open_entry(entry), spec)
    with _locked(entry):
        if (entry / MANIFEST).is_file():  # another process finished it while we waited
            return _checked(open_entry(entry), spec)
        _remove_leftovers(entry)
        start = time.perf_counter()
        key = spec.key()
        job = Extraction(entry, key, batch_size, workers, shard_rows, device or torch.device("cpu"))
        splits, reused = {}, 0
        for split, plan in plans.items():
            splits[split], r = _extract_split(model, split, plan, job)
            reused += r
        manifest = {"format": FORMAT, "key": key, "model": spec.model, "weights_hash": spec.weights_hash,
                    "classes": spec.classes, "preprocessing": spec.preprocessing, "splits": splits,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "extract_seconds": round(time.perf_counter() - start, 3)}
        write_json(entry / MANIFEST, manifest)  # last: only now is the entry a cache
    return FeatureCache(
        entry, manifest, reused=False, seconds=manifest["extract_seconds"], shards_reused=reused
    )


def _checked(cache: FeatureCache, spec: CacheSpec) -> FeatureCache:
    if cache.manifest.get("key") != spec.key():
        raise CnnlabError(f"feature cache {cache.path} holds other features under this name; remove it with "
                          f"`cnnlab cache rm {cache.path.name}`")
    return cache


@dataclass
class Extraction:
    """Where and how one extraction writes: the entry folder, the key, the batch and shard sizes."""

    entry: Path
    key: str
    batch_size: int
    workers: int
    shard_rows: int
    device: torch.device


def _extract_split(model, split: str, plan: ExtractPlan, job: Extraction) -> tuple[dict, int]:
    from ..engine.loading import SeededSamples

    entry, key, shard_rows = job.entry, job.key, job.shard_rows
    data = copy.copy(plan.dataset)
    data.transform = plan.transform
    n = len(data)
    rows = n * plan.copies
    names, reused, dim = [], 0, None
    seeded = SeededSamples(data, plan.seed)
    for s, first in enumerate(range(0, rows, shard_rows)):
        name = f"{split}-{s:05d}.safetensors"
        names.append(name)
        count = min(shard_rows, rows - first)
        if _shard_ok(entry / name, key, count, first):
            reused += 1
            continue
        # key epoch * n + i of SeededSamples = copy ``epoch`` of image ``i`` (seeded per batch)
        feats, labels = _run_backbone(model, Subset(seeded, range(first, first + count)), job)
        dim = feats.shape[1]
        _write_shard(entry / name, feats, labels, {"key": key, "split": split, "shard": str(s),
                                                         "first_row": str(first)})
    if dim is None and names:
        dim = _shard_dim(entry / names[0])
    return {"rows": rows, "images": n, "copies": plan.copies, "dim": dim, "shards": names}, reused


@torch.no_grad()
def _run_backbone(model, subset, job: Extraction) -> tuple[torch.Tensor, torch.Tensor]:
    from ..data import make_loader

    was_training, device = model.training, job.device
    model.eval()
    loader = make_loader(
        subset, batch_size=job.batch_size, shuffle=False, workers=job.workers, device=device.type
    )
    feats, labels = [], []
    for x, y in loader:
        feats.append(model.forward_head(model.forward_features(x.to(device)), pre_logits=True).float().cpu())
        labels.append(torch.as_tensor(y, dtype=torch.int64))
    model.train(was_training)
    return torch.cat(feats), torch.cat(labels)


def _write_shard(path: Path, feats: torch.Tensor, labels: torch.Tensor, meta: dict) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({"features": feats.contiguous(), "labels": labels.contiguous()}, str(tmp), metadata=meta)


def _shard_ok(path: Path, key: str, rows: int, first: int) -> bool:
    """A complete shard of this key from an earlier, interrupted extraction."""
    if not path.is_file():
        return False
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            return (meta.get("key") == key and meta.get("first_row") == str(first)
                    and fh.get_slice("labels").get_shape()[0] == rows)
    except Exception:  # any unreadable file is simply extracted again
        return False


def _shard_dim(path: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        return int(fh.get_slice("features").get_shape()[1])
