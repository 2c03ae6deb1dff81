"""Image folders and CSV lists: finding the files, the classes and the train/validation split.

A folder is either split already (``train/`` plus exactly one of ``val/``, ``valid/``,
``validation/``, ``test/``, each with one subfolder per class) or a single folder of class
subfolders that is split by a fraction. Anything ambiguous (two validation folders, split folders
beside class folders, no split and no fraction) is an error, never a silent guess.

The fraction split is stratified and seeded, and it is saved as JSON (relative paths) so that a
later run, or another person, can reuse exactly the same split with ``split_file``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import CnnlabError
from ..utils.io import write_json
from ..utils.log import notice
from .images import BadImage, open_image
from .report import BadFileReport, stratified_split

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
                  ".pbm", ".pnm", ".jfif"}
VAL_NAMES = ("val", "valid", "validation", "test")
Samples = list[tuple[str, int]]


def cache_dir() -> Path:
    """Where cnnlab keeps splits and statistics it made for read-only data (:func:`cnnlab_home`)."""
    from ..utils.paths import cnnlab_home

    return cnnlab_home()


def data_key(root: str | Path) -> str:
    """A short stable name for a data folder (for cached splits and statistics)."""
    root = Path(root).resolve()
    return f"{root.name}-{hashlib.sha1(str(root).encode()).hexdigest()[:10]}"


def is_image_name(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def subfolders(path: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith("."))


def list_class_folder(root: Path, classes: list[str] | None = None) -> tuple[list[str], Samples]:
    """``root/<class>/**/<image>`` -> (classes, samples); ``classes`` fixes the index order."""
    found = subfolders(root)
    if not found:
        raise CnnlabError(f"{root} has no class subfolders; arrange images as {root}/<class>/<image>")
    classes = classes or found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise CnnlabError(
            f"{root} has class folder(s) {', '.join(unknown)} that train/ lacks; add them to train/ or "
            "remove them"
        )
    samples: Samples = []
    for index, name in enumerate(classes):
        if name not in found:
            continue
        for dirpath, dirnames, filenames in os.walk(root / name):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            samples += [(os.path.join(dirpath, f), index) for f in sorted(filenames) if is_image_name(f)]
    return classes, samples


def screen(samples: Samples, report: BadFileReport, workers: int = 8) -> Samples:
    """Drop files whose header cannot be read (empty, not an image, bombs); record them in ``report``.
    Opening a header reads a few KiB, so this is cheap next to decoding; truncated bodies are caught
    later, when an item is decoded."""
    def probe(path: str) -> str | None:
        try:
            open_image(path).close()
        except BadImage as exc:
            return exc.reason
        return None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        reasons = list(pool.map(probe, [p for p, _ in samples], chunksize=64))
    bad = [(p, r) for (p, _), r in zip(samples, reasons) if r is not None]
    for path, reason in bad:
        report.add(path, reason, quiet=True)
    if bad:
        notice(f"skipping {len(bad)} unreadable file(s), e.g. {bad[0][0]}: {bad[0][1]} "
               "(all listed in the dataset report; `cnnlab data check` explains each)")
    return [s for s, r in zip(samples, reasons) if r is None]


def drop_empty_classes(classes: list[str], samples: Samples) -> tuple[list[str], Samples]:
    """Classes left with no readable image are removed (with a notice), and indices renumbered."""
    used = sorted({t for _, t in samples})
    if len(used) == len(classes):
        return classes, samples
    empty = [c for i, c in enumerate(classes) if i not in set(used)]
    notice(f"class(es) {', '.join(empty)} have no readable image and are left out")
    remap = {old: new for new, old in enumerate(used)}
    return [classes[i] for i in used], [(p, remap[t]) for p, t in samples]


def find_split_folders(root: Path) -> tuple[Path, Path | None]:
    """(train folder, validation folder or None) for a folder; raises on ambiguity."""
    names = subfolders(root)
    vals = [n for n in names if n.lower() in VAL_NAMES]
    has_train = any(n.lower() == "train" for n in names)
    if not has_train and not vals:
        return root, None
    others = [n for n in names if n.lower() not in (*VAL_NAMES, "train")]
    if not has_train:
        raise CnnlabError(
            f"{root} has {vals[0]}/ but no train/; add train/ or point to a folder of class subfolders"
        )
    if others:
        raise CnnlabError(
            f"{root} mixes split folders (train/) with other folders ({', '.join(others[:3])}/); "
            "move class folders into train/ or remove them"
        )
    if len(vals) > 1:
        raise CnnlabError(f"{root} has several validation folders ({', '.join(vals)}); keep one, or point to "
                          "train/ and pass a val split")
    train = next(root / n for n in names if n.lower() == "train")
    return train, (root / vals[0] if vals else None)


def read_csv_list(path: Path) -> tuple[list[str], Samples, list[str] | None]:
    """A CSV of ``path,label[,split]`` (a header row is optional; relative paths are relative to the
    CSV's folder). Returns classes (sorted label names), samples and the split column if any."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except (csv.Error, UnicodeDecodeError, ValueError) as exc:
        raise CnnlabError(
            f"{path} is not a readable CSV list ({str(exc)[:80]}); write rows 'path,label' as UTF-8 text"
        ) from None
    bad = next((i for i, r in enumerate(rows, 1) if any("\0" in c for c in r)), None)
    if bad is not None:
        raise CnnlabError(
            f"{path} is not a readable CSV list (row {bad} holds a NUL byte); write rows 'path,label' "
            "as UTF-8 text"
        )
    if rows and rows[0][0].strip().lower() in ("path", "file", "filename", "image"):
        rows = rows[1:]
    if not rows or any(len(r) < 2 for r in rows):
        raise CnnlabError(f"{path} must have rows 'path,label' (optionally ',train|val'); fix the CSV")
    classes = sorted(
        {r[1].strip() for r in rows}, key=lambda c: (not c.isdigit(), int(c) if c.isdigit() else 0, c)
    )
    index = {c: i for i, c in enumerate(classes)}
    samples = [(str((path.parent / r[0].strip()).resolve()), index[r[1].strip()]) for r in rows]
    splits = [r[2].strip().lower() for r in rows] if all(len(r) > 2 for r in rows) else None
    return classes, samples, splits


def split_samples(samples: Samples, classes: list[str], root: Path, val_split: float, seed: int,
                  split_file: str | None) -> tuple[Samples, Samples]:
    """A stratified seeded split, reused from ``split_file`` when it exists, saved otherwise."""
    target = (
        Path(split_file)
        if split_file
        else cache_dir() / "splits" / f"{data_key(root)}-{val_split}-{seed}.json"
    )
    if target.is_file():
        return load_split(target, samples, root)
    train_idx, val_idx = stratified_split([t for _, t in samples], val_split, seed, classes)
    train, val = [samples[i] for i in train_idx], [samples[i] for i in val_idx]
    rel = lambda s: [os.path.relpath(p, root) for p, _ in s]  # noqa: E731
    write_json(target, {"root": str(root.resolve()), "val_split": val_split, "seed": seed,
                        "train": rel(train), "val": rel(val)})
    notice(
        f"split {len(train)} train / {len(val)} val ({val_split:g} stratified, seed {seed}) saved to {target}"
    )
    return train, val


def load_split(path: Path, samples: Samples, root: Path) -> tuple[Samples, Samples]:
    try:
        saved = json.loads(path.read_text())
        names = {"train": set(saved["train"]), "val": set(saved["val"])}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CnnlabError(f"split file {path} is unreadable ({exc}); delete it to make a new split") from None
    by_rel = {os.path.relpath(p, root): (p, t) for p, t in samples}
    missing = (names["train"] | names["val"]) - set(by_rel)
    if missing:
        notice(f"{len(missing)} file(s) of split {path} are gone or unreadable now; they are left out")
    new = set(by_rel) - names["train"] - names["val"]
    if new:
        notice(f"{len(new)} file(s) are not in split {path}; they are left out (delete the file to re-split)")
    pick = lambda part: [by_rel[r] for r in sorted(names[part]) if r in by_rel]  # noqa: E731
    return pick("train"), pick("val")
