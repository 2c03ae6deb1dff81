"""``cnnlab interpret`` and ``cnnlab report`` on real runs: the figures against scikit-learn and against the
run's own evaluation, the files, the one-line errors, the end-of-run report."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import precision_recall_fscore_support

from cnnlab.analysis import calibration as C
from cnnlab.engine.state import load_state
from cnnlab.errors import CnnlabError
from cnnlab.workflows.evaluate import evaluate
from cnnlab.workflows.interpret import interpret
from cnnlab.workflows.report import report

from .conftest import ece_directly, run_cli


def _copy(run, tmp_path):
    """A private copy of a session run, for tests that write into the run folder."""
    return shutil.copytree(run, tmp_path / run.name)


def test_every_run_ends_with_its_report(digits_run, folder_run):
    run, printed = digits_run
    assert f"report {run / 'report.html'} (" in printed
    assert "report runs/f/report.html (" in folder_run[1]  # and from the command line
    assert json.loads((folder_run[0] / "config.json").read_text())["lr"] == 2e-3  # --lr 2e-3 is a number
    for name in (
        "report.html",
        "interpret/interpret.json",
        "interpret/top_losses.png",
        "interpret/reliability.png",
        "interpret/per_class.csv",
        "interpret/misclassified.csv",
    ):
        assert (run / name).is_file(), name
    summary = json.loads((run / "summary.json").read_text())
    assert {"report.html", "interpret"} <= set(summary["files"])
    assert "report.html" in (run / "summary.txt").read_text()


def test_interpret_agrees_with_the_runs_own_evaluation_and_scikit_learn(digits_run, tmp_path):
    run, _ = digits_run
    result = interpret(run, out=str(tmp_path / "i"), top_k=5)
    # the training loop's confusion matrix of the best epoch: same weights, split and preprocessing
    confusion = np.asarray(load_state(run / "state.pt")["best"]["confusion"])
    t = np.repeat(np.arange(10), confusion.sum(1))
    p = np.concatenate([np.repeat(np.arange(10), row) for row in confusion])
    ref = precision_recall_fscore_support(t, p, labels=range(10), zero_division=0)
    assert [r.support for r in result.per_class] == ref[3].tolist() and result.count == len(t) == 359
    for i, row in enumerate(result.per_class):
        assert (row.precision, row.recall, row.f1) == pytest.approx(
            (ref[0][i], ref[1][i], ref[2][i]), abs=1e-12
        )
    summary = json.loads((run / "summary.json").read_text())
    assert result.top1 == pytest.approx(summary["best"]["val_top1"], abs=1e-9)
    off = [(int(confusion[i, j]), i, j) for i in range(10) for j in range(10) if i != j and confusion[i, j]]
    assert result.confused[0].count == max(off)[0]


def test_interpret_files_losses_and_calibration(digits_run, tmp_path):
    run, _ = digits_run
    result = interpret(run, out=str(tmp_path / "i"), top_k=6, bins=10)
    scored = evaluate(f"lenet5:{run}", keep_probs=True, batch_size=64).members[0]  # interpret's batches
    probs, targets = scored.probs.double().numpy(), scored.targets.numpy()
    cal = result.calibration
    assert cal["ece_before"] == pytest.approx(ece_directly(probs, targets, 10), abs=1e-9)
    assert cal["nll_after"] <= cal["nll_before"] + 1e-12  # T = 1 is among the candidates
    direct = C.reliability(C.scaled_probs(C.logits_from_probs(probs), cal["temperature"]), targets, 10)
    assert cal["ece_after"] == pytest.approx(direct.ece, abs=1e-6)
    losses = [x["loss"] for x in result.top_losses]
    assert len(losses) == 6 and losses == sorted(losses, reverse=True)
    all_losses = -np.log(np.maximum(probs[np.arange(len(targets)), targets], 1e-45))
    assert losses[0] == pytest.approx(all_losses.max(), rel=1e-6)
    with open(result.files["misclassified"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == int((probs.argmax(1) != targets).sum())
    assert all(math.isclose(float(r["loss"]), -math.log(float(r["p_true"])), rel_tol=1e-4) for r in rows)
    assert rows[0]["file"].startswith("item ")  # in-memory digits: the dataset item
    saved = json.loads((tmp_path / "i" / "interpret.json").read_text())
    assert saved["calibration"]["temperature"] == cal["temperature"] and len(saved["per_class"]) == 10


def test_interpret_of_a_folder_run_names_the_files(folder_run, tiny):
    run, _ = folder_run
    saved = json.loads((run / "interpret" / "interpret.json").read_text())
    assert saved["count"] == 13 and saved["class_counts"]["train"] == {
        "class_a": 10,
        "class_b": 10,
        "class_c": 10,
    }
    assert all(x["file"].startswith(str(tiny / "val")) for x in saved["top_losses"])
    html = (run / "report.html").read_text()
    assert "Skipped files: 1" in html and "broken.png" in html


def test_interpret_cli_saves_the_temperature(folder_run, tiny, tmp_path):
    run = _copy(folder_run[0], tmp_path)
    proc = run_cli(
        ["interpret", str(run), "--top-k", "4", "--save-temperature", "--out", "mine"], cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ECE" in proc.stdout and (tmp_path / "mine" / "top_losses.png").is_file()
    fitted = json.loads((tmp_path / "mine" / "interpret.json").read_text())["calibration"]["temperature"]
    assert json.loads((run / "calibration.json").read_text())["temperature"] == fitted
    # predict takes the softmax over the saved temperature
    import torch

    import cnnlab
    from cnnlab.data.images import read_image

    image = next((tiny / "val" / "class_a").glob("*.png"))
    trained = cnnlab.load_trained(weights=str(run))
    assert trained.temperature == fitted
    x = trained.transform()(read_image(image, trained.image_mode)).unsqueeze(0)
    with torch.no_grad():
        expected = torch.softmax(trained.model(x) / fitted, dim=1)[0]
    (pred,) = cnnlab.predict(str(run), [str(image)], topk=1)
    assert pred.top[0].prob == pytest.approx(float(expected.max()), rel=1e-5)


@pytest.mark.parametrize("call, match", [(lambda p: report(p), "not a run folder"),
                                         (lambda p: interpret(p), "neither a registered model nor"),
                                         (lambda p: interpret(p, top_k=-1), "--top-k")])
def test_bad_input_is_one_line(call, match, tmp_path):
    with pytest.raises(CnnlabError, match=match) as info:
        call(tmp_path / "missing")
    assert "\n" not in str(info.value) and not (tmp_path / "missing").exists()


def test_report_reuses_an_up_to_date_analysis_and_redoes_a_stale_one(digits_run, tmp_path):
    run = _copy(digits_run[0], tmp_path)
    first = report(run, out=str(tmp_path / "a.html"))
    assert first.reused and first.path.is_file()
    weights = run / "best.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))  # new weights
    second = report(run)
    assert not second.reused and second.path == run / "report.html"
    assert report(run).reused


def test_report_is_self_contained(digits_run):
    html = (digits_run[0] / "report.html").read_text()
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert html.count('<img src="data:image/png;base64,') == html.count("<img ") >= 4
    for section in ("Model card", "Training", "Errors", "Calibration", "Timings", "Configuration"):
        assert f">{section}</h2>" in html


@pytest.fixture(scope="module")
def browser():
    """System Chromium driven by Playwright (installed by .ci/run); skips with the reason when absent."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    flags = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"]
    import tempfile

    with sync_api.sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=chromium,
            args=flags,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()


def test_report_renders_in_chromium_with_every_image_and_no_request(folder_run, browser, tmp_path):
    page_file = folder_run[0] / "report.html"
    page = browser.new_page()
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        requests.append(r.request.url)
        r.continue_() if r.request.url == page_file.as_uri() else r.abort()

    page.route("**/*", route)
    page.goto(page_file.as_uri(), wait_until="load")
    images = page.evaluate("Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
    assert len(images) >= 4 and all(done and width > 0 for _, done, width in images), images
    assert requests == [page_file.as_uri()] and errors == []
    assert page.locator("h2").all_inner_texts()[:3] == ["Run", "Model card", "Data"]
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    pixels = np.array(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape[0] > 2000 and pixels.std() > 20  # a long page with content, not a blank one
    page.close()


def test_many_classes_list_the_lowest_f1_ones(tmp_path):
    from cnnlab.workflows import report_sections as S

    rows = [
        {"name": f"c{i}", "precision": 1.0, "recall": 1.0, "f1": i / 100, "support": 1} for i in range(70)
    ]
    html = S.errors(S.RunPage(tmp_path, {}, {}, {"per_class": rows, "count": 70, "top1": 50.0}))
    assert (
        "<td>c59</td>" in html and "<td>c60</td>" not in html and "all are in interpret/per_class.csv" in html
    )
