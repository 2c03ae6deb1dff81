"""Atomic file writes: a reader sees the old file or the whole new one, never half of it.

Every file cnnlab writes (checkpoints, configs, metrics, caches, pictures) goes through
:func:`atomic_write`: write to a temporary file in the same folder, flush and fsync, then
``os.replace`` it over the target and fsync the folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import CnnlabError


class WriteError(CnnlabError):
    """A file could not be written (full disk, read-only folder, a folder in the way); the previous
    version of the file, if any, is untouched."""


IO_MESSAGES = ("no space left", "read-only file system", "permission denied", "os error", "file write failed",
               "disk quota")


def _is_io_failure(exc: BaseException) -> bool:
    """An OSError, or a library's own error for one (torch.save raises RuntimeError, safetensors its
    SafetensorError, both naming the OS error in the message)."""
    return isinstance(exc, OSError) or (isinstance(exc, Exception) and any(
        m in str(exc).lower() for m in IO_MESSAGES))


def _write_error(target: Path, exc: BaseException) -> WriteError:
    reason = getattr(exc, "strerror", None) or (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
    for known in ("No space left on device", "Read-only file system", "Permission denied"):
        if known.lower() in str(exc).lower():
            reason = known
    return WriteError(f"cannot write {target}: {reason[:120]}; nothing was replaced")


def check_output_file(path: str | os.PathLike, flag: str = "output") -> Path:
    """An output file path that can be written: a one-line error when it is a folder, when its folder
    is a file, or when its folder cannot be created or written (checked before any work is done)."""
    target = Path(path)
    if not str(path) or target.is_dir():
        raise CnnlabError(f"{flag} {str(path)!r} is a folder; give a file name such as {target / 'out'}")
    parent = target.parent
    for p in (parent, *parent.parents):
        if p.exists():
            if not p.is_dir():
                raise CnnlabError(f"{flag} {target}: {p} is a file, not a folder")
            if not os.access(p, os.W_OK | os.X_OK):
                raise CnnlabError(f"{flag} {target}: the folder {p} is not writable")
            break
    return target


def check_output_dir(path: str | os.PathLike, flag: str = "output folder") -> Path:
    """A folder path to write into: a one-line error when it is a file or cannot be written."""
    target = Path(path)
    for p in (target, *target.parents):
        if p.exists():
            if not p.is_dir():
                raise CnnlabError(f"{flag} {target}: {p} is a file, not a folder")
            if not os.access(p, os.W_OK | os.X_OK):
                raise CnnlabError(f"{flag} {target}: {p} is not writable")
            break
    return target


def _umask_mode() -> int:
    """The mode a plain ``open()`` would give a new file (mkstemp's files are 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not supported on every platform
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temporary(target: Path, prefix: str, suffix: str) -> tuple[int, str]:
    """A new temporary file beside ``target`` (its folder created), or a :class:`WriteError`."""
    if target.is_dir():
        raise WriteError(f"cannot write {target}: it is a folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=target.parent)
    except OSError as exc:
        raise _write_error(target, exc) from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that insists on a file name; when the block
    succeeds the file is fsynced and replaces ``path`` atomically, else it is removed."""
    target = Path(path)
    fd, tmp = _temporary(target, f".{target.stem}.", target.suffix or ".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if _is_io_failure(exc):
            raise _write_error(target, exc) from None
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, mode) as fh:
        yield fh
        fh.flush()


def read_json_object(path: str | os.PathLike) -> dict | None:
    """The JSON object in ``path``; ``None`` when the file is missing, unreadable or not an object."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path, "w") as fh:
        fh.write(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
