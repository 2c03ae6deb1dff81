"""`cnnlab data check|stats|preview` as a user runs them (real subprocesses)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cnnlab.data.check import check_folder
from cnnlab.data.transforms import parse_aug_options
from cnnlab.errors import CnnlabError

from .conftest import make_exif_rotated, make_odd_modes, make_truncated, photo, save


def cnnlab(*args, tmp_path):
    env = {**os.environ, "CNNLAB_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "cnnlab", "data", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def messy_folder(root):
    for i in range(3):
        save(photo(seed=i), root / "good" / f"{i}.jpg")
    make_odd_modes(root / "odd")
    make_exif_rotated(root / "odd" / "rotated.jpg")
    save(photo(20, 10), root / "odd" / "tiny.png")
    (root / "bad").mkdir()
    (root / "bad" / "empty.jpg").write_bytes(b"")
    (root / "bad" / "page.jpg").write_text("<html>not found</html>")
    make_truncated(root / "bad" / "half.jpg")
    (root / "bad" / "README.txt").write_text("notes")
    return root


def test_check_finds_every_kind_of_problem(tmp_path):
    report = check_folder(messy_folder(tmp_path / "messy"), workers=2)
    problems = {f.path: f.problem.split(":")[0] for f in report.problems}
    assert problems == {"bad/empty.jpg": "empty file", "bad/page.jpg": "not an image (unidentified format)",
                        "bad/half.jpg": "truncated"}
    notes = {f.path: " ".join(f.notes) for f in report.files if f.notes}
    for path, words in {"odd/cmyk.jpg": "CMYK", "odd/deep.png": "16-bit", "odd/palette.png": "palette",
                        "odd/gray.png": "grayscale", "odd/alpha.png": "alpha", "odd/rotated.jpg": "EXIF",
                        "odd/tiny.png": "tiny", "bad/README.txt": "ignored"}.items():
        assert words in notes[path], path
    assert report.class_counts()["bad"] == {"readable": 0, "bad": 3}


def test_check_cli_exit_codes_and_json(tmp_path):
    messy = messy_folder(tmp_path / "messy")
    run = cnnlab("check", str(messy), "--json", "--workers", "2", tmp_path=tmp_path)
    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)
    assert not report["ok"] and len(report["problems"]) == 3
    clean = tmp_path / "clean"
    for i in range(2):
        save(photo(seed=i), clean / "a" / f"{i}.jpg")
    run = cnnlab("check", str(clean), tmp_path=tmp_path)
    assert run.returncode == 0 and "no broken files" in run.stdout
    run = cnnlab("check", str(tmp_path / "missing"), tmp_path=tmp_path)
    assert run.returncode == 2 and run.stderr.count("\n") == 1


def test_check_finds_exactly_the_broken_scenes(scenes_dir):
    report = check_folder(scenes_dir)
    assert len(report.problems) == 11
    assert all(f.problem for f in report.problems)
    assert sum(n["readable"] for n in report.class_counts().values()) == 1818 - 11


@pytest.mark.slow
def test_stats_cli_saves_what_open_dataset_reads(tmp_path, class_folder):
    run = cnnlab("stats", str(class_folder), "--val-split", "0.5", tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "PCA eigenvalues" in run.stdout and "saved to" in run.stdout
    saved = json.loads(open(run.stdout.split("saved to ")[1].strip()).read())
    os.environ["CNNLAB_CACHE"] = str(tmp_path / "cache")  # restored by the autouse fixture
    from cnnlab.data import open_dataset

    splits = open_dataset(str(class_folder), val_split=0.5)
    assert splits.mean == tuple(saved["mean"]) and splits.pca.eigval == tuple(saved["pca"]["eigval"])


@pytest.mark.slow
def test_preview_writes_a_png(tmp_path, class_folder):
    out = tmp_path / "grid.png"
    run = cnnlab("preview", str(class_folder), "--val-split", "0.5", "--preset", "alexnet", "--size", "32",
                 "--columns", "2", "--aug", "grid=0.3", "-o", str(out), tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    im = Image.open(out)
    assert im.format == "PNG" and im.size[0] > 200
    assert np.asarray(im.convert("L")).std() > 10  # not a blank canvas
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".png"] == ["grid.png"]  # no temp leftovers


def test_aug_options_are_typed_and_checked():
    assert parse_aug_options(["rotate=15", "flip=true", "scale=0.2,1", "padding=2", "base=rrc"]) == {
        "rotate": 15.0, "flip": True, "scale": (0.2, 1.0), "padding": 2, "base": "rrc"}
    with pytest.raises(CnnlabError, match="spin"):
        parse_aug_options(["spin=3"])
    with pytest.raises(CnnlabError, match="rotate takes"):
        parse_aug_options(["rotate=lots"])
