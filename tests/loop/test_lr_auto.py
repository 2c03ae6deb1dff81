"""``--lr auto`` in train and finetune, and ``cnnlab lr-find``: the range test runs first, its choice is
recorded, and the training that follows is the one an explicit ``--lr`` of that value gives."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from cnnlab.errors import CnnlabError
from cnnlab.workflows.finetune import finetune
from cnnlab.workflows.lr_find import LRFindConfig, lr_find
from cnnlab.workflows.train import train

from .conftest import TINY_ARGS, run_cli

TINY = dict(model="lenet5_relu", in_chans=1, input_size=32, batch_size=8, progress=False, report=False)


def _rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in rows]


def test_auto_lr_is_recorded_and_trains_as_that_lr_given_explicitly(tiny, tmp_path):
    auto = train(data=str(tiny), lr="auto", epochs=2, out=str(tmp_path), name="auto", **TINY)
    saved = json.loads((auto.run_dir / "config.json").read_text())
    assert isinstance(saved["lr"], float) and saved["lr_rule"] == "steepest"
    assert (auto.run_dir / "lr_find.png").is_file()
    explicit = train(data=str(tiny), lr=saved["lr"], epochs=2, out=str(tmp_path), name="explicit", **TINY)
    assert _rows(auto.run_dir) == _rows(explicit.run_dir)  # losses, accuracies, lr of every epoch, to the bit
    a, b = load_file(auto.run_dir / "last.safetensors"), load_file(explicit.run_dir / "last.safetensors")
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
    # the saved lr is a number: resuming does not run the test again, and the rule is accepted as a record
    resumed = train(resume=str(auto.run_dir), epochs=3, progress=False)
    assert resumed.last["epoch"] == 3 and not (auto.run_dir / "report.html").exists()


def test_finetune_auto_lr_sweeps_the_heads_rate_with_the_backbone_ratio(folder_run, tiny, tmp_path):
    run, _ = folder_run
    result = finetune(model="lenet5_relu", weights=str(run), data=str(tiny), regime="medium", lr="auto",
                      epochs=1, in_chans=1, input_size=32, batch_size=8, out=str(tmp_path), name="ft",
                      progress=False, report=False)
    saved = json.loads((result.run_dir / "config.json").read_text())
    assert isinstance(saved["lr"], float) and saved["lr_rule"] == "steepest"
    assert saved["backbone_lr_mult"] == 0.1
    assert (result.run_dir / "lr_find.png").is_file() and (result.run_dir / "transfer.json").is_file()


def test_lr_find_cli_prints_the_suggestions_and_writes_only_its_picture(tiny, tmp_path):
    proc = run_cli(["lr-find", "--data", str(tiny), *TINY_ARGS, "--steps", "40", "--out", "sweep.png"],
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = dict(line.split() for line in proc.stdout.splitlines() if line.startswith("  "))
    assert set(lines) == {"steepest", "min/10"} and all(1e-7 <= float(v) <= 10 for v in lines.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.png"]  # no run folder


def test_lr_find_with_weights_sets_up_as_finetune(folder_run, tiny, tmp_path):
    run, _ = folder_run
    result = lr_find(model="lenet5_relu", weights=str(run), data=str(tiny), regime="large", in_chans=1,
                     input_size=32, batch_size=8, steps=30, out=str(tmp_path / "ft.png"))
    assert len(result.lrs) >= 10 and result.plot.is_file()
    assert set(result.suggestions) == {"steepest", "min/10"}


@pytest.mark.parametrize("bad, match", [({"lr": "fast"}, "or 'auto'"),
                                        ({"lr": 0.01, "lr_rule": "steepest"}, "only to --lr auto"),
                                        ({"lr": "auto", "lr_rule": "valley"}, "lr-rule"),
                                        ({"lr": -1.0}, "--lr")])
def test_bad_lr_settings_are_one_line_errors(bad, match, tmp_path):
    with pytest.raises(CnnlabError, match=match) as info:
        train(out=str(tmp_path), **bad)
    assert "\n" not in str(info.value) and not any(tmp_path.iterdir())


def test_lr_find_flags_are_its_fields():
    from cnnlab.cli.lr_find import flags

    names = {f[0][2:].replace("-", "_") for f in flags()}
    assert names | {"aug"} == set(LRFindConfig.__dataclass_fields__)
