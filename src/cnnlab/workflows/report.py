"""``cnnlab report RUN``: one self-contained HTML page of a run (``RUN/report.html`` by default).

The page holds the run summary and its configuration, a model card (parameters and MACs from
:func:`cnnlab.analysis.profile`, input and preprocessing, where the weights came from), the data
(classes, images per class, skipped files), the training curves, the LR range test when ``--lr auto``
ran one, the confusion matrix of the best epoch, the per-class table and the most confused pairs, the
top losses, the calibration and the timings. Every picture is embedded as a ``data:`` URI and the
style sheet is inline: the file references nothing outside itself (no script, font or image is
fetched), so it opens anywhere, from a USB stick too.

The error analysis is :func:`cnnlab.workflows.interpret.interpret`'s, read from ``RUN/interpret/``
when it was made from the run's current weights file on the run's own data and split, else made
afresh there. ``train`` and ``finetune`` write the report at the end of every run (``report=False``
/ ``--no-report`` turns it off).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..config import build_config, check_number, document
from ..data.splits import resolve_spec
from ..errors import CnnlabError
from ..utils.io import check_output_file, read_json_object, write_text
from ..utils.log import quiet
from ..viz import html as H
from . import report_sections as S
from .interpret import OUT_FOLDER, InterpretConfig, interpret, weights_fingerprint

REPORT_FILE = "report.html"
__all__ = ["ReportConfig", "ReportResult", "report"]


@dataclass
class ReportConfig:
    out: str | None = None  # the HTML file (default RUN/report.html)
    fresh: bool = False  # redo the error analysis even when RUN/interpret/ is up to date
    top_k: int = 9  # images in the top-losses picture
    device: str = "auto"  # auto | cpu | cuda (for the error analysis)
    batch_size: int = 64
    workers: int = 0

    def check(self) -> None:
        check_number("top_k", self.top_k, low=0, high=64, integer=True)
        check_number("batch_size", self.batch_size, low=1, integer=True)
        check_number("workers", self.workers, low=0, integer=True)
        if self.out is not None:
            check_output_file(self.out, "--out")


@dataclass
class ReportResult:
    path: Path
    seconds: float
    reused: bool  # the error analysis in RUN/interpret/ was up to date and read as it was


def report(run, config: ReportConfig | dict | None = None, **overrides) -> ReportResult:
    """Write the HTML report of run folder ``run`` (see the module docstring)."""
    started = time.perf_counter()
    config = build_config(ReportConfig, config, overrides)
    config.check()
    run_dir = _run_folder(run)
    out = Path(config.out) if config.out else run_dir / REPORT_FILE
    analysis, reused = _analysis(run_dir, config)
    run = S.RunPage(run_dir, read_json_object(run_dir / "config.json") or {},
                    read_json_object(run_dir / "summary.json") or {}, analysis)
    sections = [("summary", "Run", S.summary(run)), ("model", "Model card", S.model_card(run)),
                ("data", "Data", S.data(run)), ("training", "Training", S.training(run)),
                ("errors", "Errors", S.errors(run)), ("calibration", "Calibration", S.calibration(run)),
                ("timings", "Timings", S.timings(run, time.perf_counter() - started)),
                ("config", "Configuration", S.configuration(run))]
    title = f"{run_dir.name}: {run.config.get('model')} on {run.config.get('data')}"
    footer = (f"cnnlab report of {run_dir.resolve()}, written {time.strftime('%Y-%m-%d %H:%M:%S')}; every "
              "picture is embedded in this file.")
    write_text(out, H.page(title, S.lead(run), sections, footer))
    return ReportResult(out, time.perf_counter() - started, reused)


def end_of_run(run_dir: Path, device) -> Path | None:
    """The report at the end of a ``train``/``finetune`` run (on its device). A failure the user can
    fix is one line, and the run stands: it is complete without its report."""
    try:
        with quiet("cnnlab"):
            result = report(run_dir, device=getattr(device, "type", str(device)))
    except CnnlabError as exc:
        print(f"report not written: {exc}; write it later with: cnnlab report {run_dir}")
        return None
    print(f"report {result.path} ({result.seconds:.1f} s)")
    return result.path


def _run_folder(run) -> Path:
    p = Path(run)
    if not (p / "config.json").is_file():
        raise CnnlabError(f"{p} is not a run folder (no config.json); give runs/<name> as `cnnlab train` "
                          "made it")
    if not any((p / n).is_file() for n in ("best.safetensors", "last.safetensors")):
        raise CnnlabError(f"run {p} has no weights yet (no best.safetensors); train it for an epoch first")
    return p




def _analysis(run_dir: Path, config: ReportConfig) -> tuple[dict, bool]:
    """interpret.json of the run's current weights and own split: reused when it is, else made."""
    saved = read_json_object(run_dir / OUT_FOLDER / "interpret.json")
    run_config = read_json_object(run_dir / "config.json") or {}
    if saved and not config.fresh and _current(saved, run_dir, run_config, config):
        return saved, True
    settings = InterpretConfig(top_k=config.top_k, device=config.device, batch_size=config.batch_size,
                               workers=config.workers, out=str(run_dir / OUT_FOLDER))
    interpret(run_dir, config=settings)
    return read_json_object(run_dir / OUT_FOLDER / "interpret.json") or {}, False


def _current(saved: dict, run_dir: Path, run_config: dict, config: ReportConfig) -> bool:
    split = saved.get("split") or {}
    own = {"data": resolve_spec(run_config.get("data")), "val_split": run_config.get("val_split"),
           "seed": run_config.get("seed", 0), "split_file": run_config.get("split_file")}
    pictures = all((run_dir / OUT_FOLDER / f).is_file() for f in ("top_losses.png", "reliability.png"))
    return (saved.get("weights") == weights_fingerprint(run_dir) and split == own and pictures
            and len(saved.get("top_losses") or []) == min(config.top_k, saved.get("count", 0)))


document(report, ReportConfig)
