"""``cnnlab cache rm`` removes only what is provably a feature cache entry, and says what it skipped."""

from __future__ import annotations

import json

import torch
from safetensors.torch import save_file

from cnnlab.cli.main import main
from cnnlab.transfer.feature_cache import FORMAT, MANIFEST


def _entry(root, name: str, manifest: bool = True):
    entry = root / name
    entry.mkdir(parents=True)
    save_file({"features": torch.zeros(2, 3), "labels": torch.zeros(2, dtype=torch.int64)},
              str(entry / "train-00000.safetensors"), metadata={"key": "k", "first_row": "0"})
    if manifest:
        (entry / MANIFEST).write_text(json.dumps({"format": FORMAT, "splits": {}}))
    return entry


def test_rm_all_on_the_cache_root_removes_entries_only(tmp_path, capsys):
    root = tmp_path / "cache"
    complete = _entry(root / "features", "resnet20-0123456789abcdef")
    partial = _entry(root / "features", "resnet20-fedcba9876543210", manifest=False)
    users = [root / "splits" / "s.json", root / "stats" / "x.json", root / "features" / "notes" / "a.txt",
             root / "features" / "lenet5-aaaaaaaaaaaaaaaa" / "mine.txt"]  # entry-shaped name, a user's file
    for f in users:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("keep me")
    assert main(["cache", "rm", "--all", "--cache-dir", str(root)]) == 0  # the root, not root/features
    out = capsys.readouterr().out
    assert "no feature caches to remove" in out and all(f.exists() for f in users)
    assert "skipped" in out and "splits: not a feature cache entry" in out
    assert main(["cache", "rm", "splits", "--cache-dir", str(root)]) == 2
    assert "is not a feature cache entry" in capsys.readouterr().err and users[0].exists()
    assert main(["cache", "rm", "--all", "--cache-dir", str(root / "features")]) == 0
    out = capsys.readouterr().out
    assert not complete.exists() and not partial.exists() and all(f.exists() for f in users)
    assert "skipped" in out and "notes: not a feature cache entry" in out
