"""The weights cache: where downloaded weights live, who may write them, and what was first seen.

Layout under :func:`cnnlab_home` (``$CNNLAB_HOME``, else ``$CNNLAB_CACHE``, else ``~/.cache/cnnlab``)::

    weights/<model>/<tag>.safetensors   the converted weights, with cnnlab metadata (classes,
                                        preprocessing, source, the source file's sha256 and size)
    weights/known_files.json            sha256 and size of every source file at its first download
                                        (later downloads and imports of the same file must match)
    weights/.partial/<model>.<tag>/     a download in progress (removed when it ends, however it ends)
    weights/.locks/<model>.<tag>.lock   the file lock that lets one process fetch an entry at a time

Writes are atomic (:mod:`cnnlab.utils.io`): a reader sees no file or a whole one. A process that is
killed mid-download leaves a ``.partial`` folder that the next fetch of the same entry removes first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import CnnlabError
from ..utils.io import write_json
from ..utils.paths import HOME_ENV, LEGACY_ENV, cnnlab_home  # noqa: F401  (re-exported)

PINS = "known_files.json"


def weights_dir() -> Path:
    return cnnlab_home() / "weights"


def cached_file(model: str, tag: str) -> Path:
    return weights_dir() / model / f"{tag}.safetensors"


def partial_dir(model: str, tag: str) -> Path:
    return weights_dir() / ".partial" / f"{model}.{tag}"


def clear_partial(model: str, tag: str) -> None:
    """Remove a download in progress (or one a killed process left) and stale temporary files."""
    shutil.rmtree(partial_dir(model, tag), ignore_errors=True)
    folder = weights_dir() / model
    if folder.is_dir():
        for stale in folder.glob(f".{tag}.*.safetensors"):  # an atomic write cut short
            with contextlib.suppress(OSError):
                stale.unlink()


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """An exclusive lock named ``name`` across processes (``fcntl.flock``; waits for the holder)."""
    folder = weights_dir() / ".locks"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise CnnlabError(f"cannot write the weights cache {weights_dir()}: {exc.strerror or exc}; set "
                          f"${HOME_ENV} to a writable folder") from None
    try:
        try:
            import fcntl
        except ImportError:  # no flock (Windows): one process at a time is up to the user
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def sha256_file(path: str | os.PathLike) -> tuple[str, int]:
    """(hex SHA-256, size in bytes) of a file, read in 1 MiB blocks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def read_pins() -> dict[str, dict]:
    path = weights_dir() / PINS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CnnlabError(f"{path} is unreadable ({exc}); remove it (it only records first-download "
                          "hashes)") from None
    return data if isinstance(data, dict) else {}


def pin(source_key: str, sha256: str, size: int, what: str) -> None:
    """Record ``source_key``'s hash and size if this is the first time it is seen."""
    with locked("known_files"):
        pins = read_pins()
        if source_key in pins:
            return
        pins[source_key] = {"sha256": sha256, "size": size, "weights": what,
                            "first_seen": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        write_json(weights_dir() / PINS, pins)


def cached_files() -> list[Path]:
    """Every converted weights file in the cache."""
    root = weights_dir()
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("*/*.safetensors") if not p.name.startswith("."))


def is_cnnlab_weights(path: Path) -> bool:
    """True for a file this cache wrote (safetensors whose metadata names the weights it holds)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except Exception:  # not safetensors at all, or damaged: not ours to judge, so not ours to delete
        return False
    return meta.get("format") == "cnnlab" and meta.get("weights") == f"{path.parent.name}:{path.stem}"
