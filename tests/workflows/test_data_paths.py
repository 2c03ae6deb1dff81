"""A run started with a relative data path records where the data is, so that evaluate, interpret
and resume find it from any working folder."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

import cnnlab
from cnnlab.data import resolve_spec


def _folder(root):
    rng = np.random.default_rng(0)
    for c, label in enumerate(("dark", "light")):
        (root / label).mkdir(parents=True)
        for i in range(6):
            a = rng.integers(0, 90, size=(20, 20), dtype=np.uint8) + 150 * c
            Image.fromarray(a.astype(np.uint8), mode="L").save(root / label / f"{i}.png")


def test_relative_data_is_recorded_absolute_and_opens_from_elsewhere(tmp_path, monkeypatch):
    start, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    _folder(start / "imgs")
    elsewhere.mkdir()
    monkeypatch.chdir(start)
    run = cnnlab.train(model="lenet5_relu", data="imgs", val_split=0.5, in_chans=1, input_size=32, epochs=1,
                       batch_size=4, out="runs", name="r", progress=False, report=False).run_dir.resolve()
    saved = json.loads((run / "config.json").read_text())
    assert saved["data"] == str(start / "imgs")
    monkeypatch.chdir(elsewhere)
    result = cnnlab.evaluate([f"lenet5_relu:{run}"], device="cpu")
    assert result.members[0].count == 6 and result.classes == ["dark", "light"]  # the run's own split
    assert cnnlab.interpret(str(run), out=str(elsewhere / "i")).count == 6
    monkeypatch.chdir(start)
    resumed = cnnlab.train(resume=str(run), data="imgs", epochs=2, progress=False, report=False)
    assert resumed.last["epoch"] == 2  # the relative --data is the run's data, not a mismatch


def test_resolve_spec_keeps_names_and_unknowns(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    assert resolve_spec("digits") == "digits"
    assert resolve_spec("d") == str(tmp_path / "d")
    assert resolve_spec("cifar10:d") == f"cifar10:{tmp_path / 'd'}"
    assert resolve_spec("no/such/dir") == "no/such/dir"  # refused, as typed, when opened
