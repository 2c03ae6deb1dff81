"""``cnnlab models`` and the CLI's handling of bad input, through real subprocesses."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def cnnlab(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cnnlab", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_models_json_lists_every_model():
    import cnnlab as lib

    r = cnnlab("models", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [row["name"] for row in rows] == lib.list_models()
    lenet = next(row for row in rows if row["name"] == "lenet5")
    assert lenet["params"] == 60_000 and lenet["input"] == "1x32x32"


def test_readme_model_table_is_fresh():
    from cnnlab.workflows.models import model_rows, to_markdown

    readme = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- models:start -->\n(.*?)\n<!-- models:end -->", readme, re.S)
    assert m, "README.md lacks the model table markers"
    assert m.group(1).strip() == to_markdown(model_rows()).strip(), (
        "README model table is stale: regenerate it with `python scripts/update_readme.py`")


def test_unknown_model_is_one_line_exit_2():
    r = cnnlab("models", "lenet9*")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr


def test_bad_checkpoint_through_cli_is_one_line(tmp_path):
    """A checkpoint of another architecture fails in one line and leaves the folder unchanged."""
    import cnnlab as lib

    torch.save(lib.create_model("lenet5_relu").state_dict(), tmp_path / "w.pth")
    before = sorted(p.name for p in tmp_path.iterdir())
    code = ("import sys, cnnlab\n"
            "from cnnlab.cli.main import main\n"
            "from cnnlab.errors import CnnlabError\n"
            "try:\n    cnnlab.create_model('lenet5', weights=sys.argv[1])\n"
            "except CnnlabError as e:\n    print(e, file=sys.stderr); sys.exit(2)\n")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "w.pth")], capture_output=True, text=True)
    assert r.returncode == 2 and "does not fit lenet5" in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before
