"""Listing and removing feature-cache entries (``cnnlab cache ls|rm``): only what is provably an entry
of :mod:`cnnlab.transfer.feature_cache` (a manifest of its format, or an entry-shaped folder holding
nothing but its own files) is listed or touched; other folders are named and left alone.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import CnnlabError
from .feature_cache import FORMAT, MANIFEST, default_cache_dir

ENTRY_NAME = re.compile(r"^[A-Za-z0-9_.]+-[0-9a-f]{16}$")
OWN_FILE = re.compile(r"^((train|val)-\d{5}\.safetensors|manifest\.json|\.lock|\..+)$")


@dataclass
class CacheListing:
    name: str
    path: Path
    complete: bool
    bytes: int
    manifest: dict


def _is_entry(folder: Path) -> tuple[bool, dict]:
    """(whether ``folder`` is provably a cache entry, its manifest): a manifest of this format, or an
    entry-shaped name holding nothing but this cache's own files (an interrupted extraction)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        manifest = None
    if isinstance(manifest, dict) and manifest.get("format") == FORMAT:
        return True, manifest
    try:
        names = [f.name for f in folder.iterdir()]
    except OSError:
        return False, {}
    own = ENTRY_NAME.match(folder.name) is not None and all(OWN_FILE.match(n) for n in names)
    return own and manifest is None, {}


def list_caches(cache_dir: str | os.PathLike | None = None) -> list[CacheListing]:
    """Every entry under ``cache_dir`` (complete or not), sorted by name; other folders are not listed."""
    root = Path(cache_dir or default_cache_dir())
    if not root.is_dir():
        return []
    out = []
    for entry in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        ours, manifest = _is_entry(entry)
        if ours:
            size = sum(f.stat().st_size for f in entry.iterdir() if f.is_file())
            out.append(CacheListing(entry.name, entry, bool(manifest), size, manifest))
    return out


def foreign_folders(cache_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders under ``cache_dir`` that are not cache entries (never listed, never removed)."""
    root = Path(cache_dir or default_cache_dir())
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and not _is_entry(p)[0]
    )


def remove_caches(names: list[str] | None = None, cache_dir: str | os.PathLike | None = None) -> list[Path]:
    """Remove the named entries (all when ``names`` is empty). Only what is provably an entry is
    touched, and only its own files: the manifest first (an entry half-removed by a kill is merely
    incomplete), then the shards, then the folder if nothing else is in it."""
    root = Path(cache_dir or default_cache_dir())
    entries = list_caches(root)
    if names:
        known = {e.name: e for e in entries}
        unknown = [n for n in names if n not in known]
        if unknown:
            what = "is not a feature cache entry" if (root / unknown[0]).exists() else "does not exist"
            raise CnnlabError(f"{root / unknown[0]} {what}; `cnnlab cache ls` lists the caches")
        entries = [known[n] for n in names]
    removed = []
    for e in entries:
        (e.path / MANIFEST).unlink(missing_ok=True)
        for f in e.path.iterdir():
            if f.is_file() and OWN_FILE.match(f.name):
                f.unlink(missing_ok=True)
        try:
            e.path.rmdir()
        except OSError:  # something else was put in it: leave it
            continue
        removed.append(e.path)
    return removed
