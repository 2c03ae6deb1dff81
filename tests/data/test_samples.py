"""``cnnlab data samples``: real files for the README's commands, from data that ships with the
dependencies; they open as what they claim to be and the image folder trains."""

from __future__ import annotations

from PIL import Image

import cnnlab
from cnnlab.cli.main import main


def test_samples_are_an_image_folder_two_photos_and_a_digit(tmp_path, capsys):
    assert main(["data", "samples", str(tmp_path / "s"), "--per-class", "3"]) == 0
    root = tmp_path / "s"
    assert sorted(p.name for p in (root / "photos").iterdir()) == ["china.jpg", "flower.jpg"]
    assert Image.open(root / "photos" / "china.jpg").size == (640, 427)
    assert Image.open(root / "digit.png").size == (32, 32)
    splits = cnnlab.data.open_dataset(str(root / "digits"), val_split=0.34, in_chans=1)
    assert splits.classes == [str(i) for i in range(10)] and len(splits.train) + len(splits.val) == 30
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*.png")}
    assert main(["data", "samples", str(root), "--per-class", "3"]) == 0  # rerun: nothing rewritten
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.png")} == before
    assert "0 new" in capsys.readouterr().out
