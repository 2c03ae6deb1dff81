"""``cnnlab data check DIR``: decode every file of a data folder and say what is wrong with it.

Problems (exit code 1): files that loaders would skip - empty, not an image, truncated or corrupt,
refused as decompression bombs - and a folder without one readable image. Notes (reported, exit code 0):
unusual modes (grayscale, alpha,
CMYK, 16-bit, palette...) which loaders convert, EXIF rotation which loaders apply, tiny images,
files without an image name (ignored by loaders), classes too small for a stratified split.
Every file is decoded fully (and converted to RGB, as a loader would) in a pool of threads; PIL
releases the GIL while decoding.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import CnnlabError
from .folders import find_split_folders, is_image_name
from .images import UNUSUAL_MODES, BadImage, decode, exif_orientation, open_image, to_mode

TINY_SIDE = 32  # pixels: an image whose shorter side is below this is called tiny
MIN_SPLITTABLE = 2  # images a class needs for a stratified split (one each side)


@dataclass
class FileResult:
    path: str  # relative to the checked folder
    cls: str
    problem: str | None = None
    notes: list[str] = field(default_factory=list)
    mode: str | None = None
    size: tuple[int, int] | None = None


@dataclass
class CheckReport:
    root: str
    files: list[FileResult]
    seconds: float
    workers: int

    @property
    def problems(self) -> list[FileResult]:
        return [f for f in self.files if f.problem]

    @property
    def ok(self) -> bool:
        """No broken file, and at least one readable image (an empty folder is a problem too)."""
        return not self.problems and any(not f.problem for f in self.files)

    def class_counts(self) -> dict[str, dict[str, int]]:
        """{class: {"readable": n, "bad": m}} over image-named files."""
        counts: dict[str, dict[str, int]] = {}
        for f in self.files:
            if "ignored" in " ".join(f.notes):
                continue
            entry = counts.setdefault(f.cls, {"readable": 0, "bad": 0})
            entry["bad" if f.problem else "readable"] += 1
        return dict(sorted(counts.items()))

    def note_counts(self) -> dict[str, int]:
        return dict(Counter(n for f in self.files for n in f.notes))

    def to_dict(self) -> dict:
        small = [c for c, n in self.class_counts().items() if n["readable"] < MIN_SPLITTABLE]
        return {
            "root": self.root,
            "ok": self.ok,
            "files": len(self.files),
            "seconds": round(self.seconds, 3),
            "workers": self.workers,
            "problems": [{"path": f.path, "reason": f.problem} for f in self.problems],
            "notes": self.note_counts(),
            "classes": self.class_counts(),
            "classes_too_small_to_split": small,
            "details": [asdict(f) for f in self.files if f.problem or f.notes],
        }


def inspect_file(path: str, rel: str, cls: str) -> FileResult:
    """Open, fully decode and convert one file, recording what is unusual about it."""
    result = FileResult(rel, cls)
    if not is_image_name(os.path.basename(path)):
        result.notes.append("ignored: not an image file name")
        return result
    try:
        im = open_image(path)
        result.mode, result.size = im.mode, im.size
        orientation = exif_orientation(im)
        to_mode(decode(im, path), "RGB")
    except BadImage as exc:
        result.problem = exc.reason
        return result
    except Exception as exc:  # a decoder bug must not stop the scan
        result.problem = f"corrupt: {type(exc).__name__}: {exc}"
        return result
    if im.mode in UNUSUAL_MODES:
        result.notes.append(f"mode {im.mode} ({UNUSUAL_MODES[im.mode]}), converted by loaders")
    if orientation != 1:
        result.notes.append("EXIF-rotated, applied by loaders")
    if min(im.size) < TINY_SIDE:
        result.notes.append(f"tiny (shorter side < {TINY_SIDE} px)")
    return result


def _walk(root: Path) -> list[tuple[str, str, str]]:
    """(path, relative path, class) for every file under ``root``'s class folders (split folders aware)."""
    train, val = find_split_folders(root)
    out = []
    for part in (p for p in (train, val) if p is not None):
        prefix = "" if part == root else f"{part.name}/"
        for dirpath, dirnames, filenames in os.walk(part):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel_dir = os.path.relpath(dirpath, part)
            cls = prefix + (rel_dir.split(os.sep)[0] if rel_dir != "." else ".")
            for name in sorted(f for f in filenames if not f.startswith(".")):
                path = os.path.join(dirpath, name)
                out.append((path, os.path.relpath(path, root), cls))
    return out


def check_folder(root: str | os.PathLike, workers: int | None = None) -> CheckReport:
    """Scan every file under ``root`` (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise CnnlabError(f"'{root}' is not a folder; pass the folder that holds the class subfolders")
    workers = max(1, workers or min(32, (os.cpu_count() or 1) * 2))
    files = _walk(root)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda f: inspect_file(*f), files, chunksize=16))
    return CheckReport(str(root), results, time.perf_counter() - start, workers)


def format_report(report: CheckReport) -> str:
    """The human-readable summary that ``cnnlab data check`` prints."""
    lines = [
        f"checked {len(report.files)} files under {report.root} in {report.seconds:.1f} s ({report.workers} "
        "threads)"
    ]
    if not report.files:
        lines.append("PROBLEM: no files at all; point to the folder that holds the class subfolders")
    elif report.problems:
        lines.append(f"PROBLEMS: {len(report.problems)} file(s) that loaders will skip:")
        lines += [f"  {f.path}: {f.problem}" for f in report.problems]
        if len(report.problems) == len(report.files):
            lines.append("PROBLEM: not one readable image")
    else:
        lines.append("no broken files")
    for note, n in sorted(report.note_counts().items()):
        example = next(f.path for f in report.files if note in f.notes)
        lines.append(f"note: {n} file(s) {note} (e.g. {example})")
    lines.append("class counts (readable / bad):")
    for cls, n in report.class_counts().items():
        flag = "  <- too few for a stratified split" if n["readable"] < MIN_SPLITTABLE else ""
        lines.append(f"  {cls:<24} {n['readable']:>7} / {n['bad']}{flag}")
    return "\n".join(lines)
