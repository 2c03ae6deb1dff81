"""``cnnlab interpret RUN``: which images a trained model gets wrong, and how sure it is when it does.

``interpret("runs/a")`` loads the run's model with its classes and preprocessing
(:func:`~cnnlab.workflows.trained.load_trained`), scores the run's own validation split (its data,
``val_split``, ``seed`` and ``split_file``; ``data=`` another) with
:func:`cnnlab.workflows.evaluate.evaluate` and writes into ``RUN/interpret/`` (or ``out``):

==================  ==================================================================================
per_class.csv       precision, recall, F1 and support of each class (:mod:`cnnlab.analysis.errors`)
top_losses.png      the ``top_k`` images with the largest loss ``-log p(true)``: true and predicted class,
                    probabilities, a Grad-CAM overlay for the predicted class (:mod:`cnnlab.viz.top_losses`)
reliability.png     reliability diagrams before and after temperature scaling
                    (:mod:`cnnlab.analysis.calibration`)
misclassified.csv   file (``item N`` for in-memory data), true, predicted, p_predicted, p_true, loss
interpret.json      all of the above as numbers, the most confused pairs, ECE and NLL before/after,
                    the temperature, the class counts, and the weights file it read (for ``report``)
==================  ==================================================================================

The temperature is fitted on the same validation split it is reported on, so "after" is an
in-sample figure (Guo et al. fit it on a held-out validation set and report on the test set).
``save_temperature=True`` also writes ``RUN/calibration.json`` (``{"temperature": T, ...}``) for
inference: divide the logits by T before the softmax.
"""

from __future__ import annotations

import copy
import csv
import io
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..analysis import calibration as C
from ..analysis import errors as E
from ..config import build_config, check_number, document
from ..data.splits import resolve_spec
from ..errors import CnnlabError
from ..utils.io import atomic_write, check_output_dir, write_json
from .evaluate import SPLIT_KEYS, Member, evaluate
from .trained import Trained, load_trained

OUT_FOLDER = "interpret"
__all__ = ["InterpretConfig", "InterpretResult", "interpret", "weights_fingerprint"]


@dataclass
class InterpretConfig:
    top_k: int = 9  # images in top_losses.png
    confused: int = 10  # most confused (true, predicted) pairs listed
    bins: int = C.DEFAULT_BINS  # equal-width confidence bins of the reliability diagram and the ECE
    cam: bool = True  # Grad-CAM overlays in top_losses.png
    save_temperature: bool = False  # also write RUN/calibration.json (the fitted temperature)
    out: str | None = None  # output folder (default RUN/interpret)
    batch_size: int = 64  # images per forward pass
    device: str = "auto"  # auto | cpu | cuda
    workers: int = 0  # DataLoader worker processes
    val_split: float | None = None  # the split: default the run's
    seed: int | None = None
    split_file: str | None = None

    def check(self) -> None:
        check_number("top_k", self.top_k, low=0, high=64, integer=True)
        check_number("confused", self.confused, low=0, integer=True)
        check_number("bins", self.bins, low=1, high=1000, integer=True)
        check_number("batch_size", self.batch_size, low=1, integer=True)
        check_number("workers", self.workers, low=0, integer=True)


@dataclass
class InterpretResult:
    run: str
    data: str
    classes: list[str]
    count: int  # validation images scored
    top1: float  # percent
    per_class: list[E.ClassRow]
    averages: dict
    confused: list[E.ConfusedPair]
    calibration: dict  # temperature, ece/nll before and after, bins, reliability before/after
    top_losses: list[dict]  # item, file, true, predicted, p_predicted, p_true, loss
    class_counts: dict  # {"train": {class: n}, "val": {...}}
    weights: dict  # the weights file read (name, bytes, mtime_ns)
    seconds: float
    files: dict[str, Path] = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["files"] = {k: str(v) for k, v in self.files.items()}
        return out

    def text(self) -> str:
        cal = self.calibration
        lines = [f"{self.run}: {self.count} validation images of {self.data}, top-1 {self.top1:.2f}%",
                 f"calibration: ECE {100 * cal['ece_before']:.2f}% -> {100 * cal['ece_after']:.2f}%, NLL "
                 f"{cal['nll_before']:.4f} -> {cal['nll_after']:.4f} at temperature {cal['temperature']:.3f}"]
        if self.confused:
            pairs = ", ".join(f"{p.true} as {p.predicted} ({p.count})" for p in self.confused[:5])
            lines.append(f"most confused (true as predicted): {pairs}")
        worst = sorted(self.per_class, key=lambda r: r.f1)[:3]
        lines.append("lowest F1: " + ", ".join(f"{r.name} {r.f1:.3f}" for r in worst))
        lines.append("files: " + ", ".join(str(p) for p in self.files.values()))
        return "\n".join(lines)


def weights_fingerprint(run) -> dict:
    """Which weights file ``load_trained(run)`` reads, with its size and modification time."""
    from ..weights.loading import resolve_checkpoint_path

    p = resolve_checkpoint_path(run)
    st = p.stat()
    return {"file": p.name, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def interpret(run, data=None, config: InterpretConfig | dict | None = None, **overrides) -> InterpretResult:
    """Analyse the errors and the calibration of a trained run (see the module docstring). ``run``: a
    run folder (or a cnnlab checkpoint); ``data``: a data spec (default: the run's)."""
    started = time.perf_counter()
    config = build_config(InterpretConfig, config, overrides)
    config.check()
    run_path = Path(run)
    out = check_output_dir(config.out or (run_path if run_path.is_dir() else run_path.parent) / OUT_FOLDER,
                           "--out")
    trained = load_trained(None, run)
    fingerprint = weights_fingerprint(run)
    splits = _open_data(trained, data, config)
    member = Member(trained.model, trained.transform(), trained.classes, trained.name, trained.run,
                    trained.in_chans)
    out.mkdir(parents=True, exist_ok=True)
    ev = evaluate(member, splits, keep_probs=True, misclassified=str(out / "misclassified.csv"),
                  batch_size=config.batch_size, device=config.device, workers=config.workers)
    score = ev.members[0]
    probs, targets, items = score.probs.double().numpy(), score.targets.numpy(), score.indices.numpy()
    counts = E.confusion_counts(targets, probs.argmax(1), len(splits.classes))
    rows = E.per_class(counts, splits.classes)
    files = {"per_class": _write_per_class(rows, out / "per_class.csv"),
             "misclassified": out / "misclassified.csv"}
    cal = _calibration(probs, targets, config.bins, out / "reliability.png", f"{trained.name} on {ev.data}")
    files["reliability"] = out / "reliability.png"
    losses = _top_losses(trained, splits, (probs, targets, items), ev.files, config)
    files["top_losses"] = _plot_losses(trained, losses, out / "top_losses.png", config, ev.count)
    class_counts = {part: _class_counts(getattr(splits, part), splits.classes) for part in ("train", "val")}
    result = InterpretResult(str(run), ev.data, list(splits.classes), ev.count, score.top1, rows,
                             E.averages(rows), E.most_confused(counts, splits.classes, config.confused), cal,
                             [{k: v for k, v in x.items() if k != "x"} for x in losses], class_counts,
                             fingerprint, 0.0)
    if config.save_temperature:
        files["calibration"] = _save_temperature(run_path, cal, ev.data)
    result.files = files | {"interpret": out / "interpret.json"}
    result.seconds = time.perf_counter() - started
    write_json(out / "interpret.json", result.to_dict() | {"split": _split_record(trained, data, config)})
    return result


def _open_data(trained: Trained, data, config: InterpretConfig):
    """The run's data and split (or ``data`` with the split options given)."""
    from ..data import open_dataset

    options = _split_record(trained, data, config)
    spec = options.pop("data")
    return open_dataset(spec, in_chans=trained.in_chans, **options)


def _split_record(trained: Trained, data, config: InterpretConfig) -> dict:
    run = trained.run or {}
    spec = resolve_spec(str(data) if data is not None else run.get("data"))
    if not spec:
        raise CnnlabError("the weights name no data to interpret them on; pass --data (digits, an image "
                          "folder, ...)")
    own = spec == resolve_spec(run.get("data"))
    options = {"val_split": None, "seed": 0, "split_file": None}
    options |= {k: run[k] for k in SPLIT_KEYS if own and run.get(k) is not None}
    options |= {k: getattr(config, k) for k in SPLIT_KEYS if getattr(config, k) is not None}
    return {"data": spec, **options}


def _class_counts(dataset, classes: list[str]) -> dict[str, int]:
    counts = np.bincount(np.asarray(dataset.targets, dtype=np.int64), minlength=len(classes))
    return {name: int(n) for name, n in zip(classes, counts)}


def _write_per_class(rows: list[E.ClassRow], path: Path) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["class", "precision", "recall", "f1", "support"])
    for r in rows:
        writer.writerow([r.name, f"{r.precision:.6f}", f"{r.recall:.6f}", f"{r.f1:.6f}", r.support])
    with atomic_write(path, "w") as fh:
        fh.write(buf.getvalue())
    return path


def _calibration(probs: np.ndarray, targets: np.ndarray, bins: int, path: Path, title: str) -> dict:
    from ..viz.reliability import plot_reliability

    logits, y = C.logits_from_probs(probs), torch.as_tensor(targets)
    temperature = C.fit_temperature(logits, y)
    before = C.reliability(probs, targets, bins)
    after = C.reliability(C.scaled_probs(logits, temperature), targets, bins)
    panels = [("before: softmax as trained", before), (f"after: temperature {temperature:.3f}", after)]
    plot_reliability(panels, path, title=f"{title}: calibration on the validation split "
                                         f"({len(targets)} images)")
    return {"temperature": temperature, "ece_before": before.ece, "ece_after": after.ece,
            "nll_before": C.nll(logits, y), "nll_after": C.nll(logits, y, temperature), "bins": bins,
            "before": asdict(before), "after": asdict(after)}


def _top_losses(trained: Trained, splits, scored, files: list[str], config: InterpretConfig) -> list[dict]:
    """The ``top_k`` rows with the largest loss, each with its image tensor as the model saw it."""
    probs, targets, items = scored
    rows = np.arange(len(targets))
    loss = -np.log(np.maximum(probs[rows, targets], 1e-45))
    order = sorted(rows.tolist(), key=lambda i: (-loss[i], int(items[i])))[:config.top_k]
    dataset = copy.copy(splits.val)
    dataset.transform = trained.transform()
    out = []
    for i in order:
        item, pred = int(items[i]), int(probs[i].argmax())
        out.append({"item": item, "file": files[item] if item < len(files) else None,
                    "true": splits.classes[int(targets[i])], "predicted": splits.classes[pred],
                    "p_predicted": float(probs[i, pred]), "p_true": float(probs[i, targets[i]]),
                    "loss": float(loss[i]), "x": dataset[item][0]})
    return out


def _plot_losses(trained: Trained, losses: list[dict], path: Path, config: InterpretConfig,
                 count: int) -> Path:
    from ..viz.common import to_display
    from ..viz.top_losses import Loss, cam_heat, cam_stage, plot_top_losses

    pre, model = trained.preprocessing, trained.model
    device = next(model.parameters()).device
    stage = cam_stage(model, losses[0]["x"][None].to(device)) if losses and config.cam else None
    items = []
    for x in losses:
        heat = None
        if config.cam and x["predicted"] in trained.classes:
            heat = cam_heat(model, x["x"][None].to(device), trained.classes.index(x["predicted"]), stage)
        items.append(Loss(to_display(x["x"], pre.mean, pre.std), x["true"], x["predicted"], x["p_predicted"],
                          x["p_true"], x["loss"], heat))
    wrong = sum(1 for x in losses if x["true"] != x["predicted"])
    plot_top_losses(items, path, title=f"{trained.name}: the {len(items)} largest losses of {count} "
                                       f"validation images ({wrong} of them misclassified)")
    return path


def _save_temperature(run: Path, cal: dict, data: str) -> Path:
    folder = run if run.is_dir() else run.parent
    record = {"temperature": cal["temperature"], "fitted_on": f"validation split of {data}",
              "method": "temperature scaling (Guo et al. 2017, arXiv:1706.04599): softmax(logits / T)"}
    record |= {k: cal[k] for k in ("nll_before", "nll_after", "ece_before", "ece_after", "bins")}
    write_json(folder / "calibration.json", record)
    return folder / "calibration.json"


document(interpret, InterpretConfig)
