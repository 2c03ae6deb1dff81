"""The sections of ``cnnlab report`` (:mod:`cnnlab.workflows.report`): each a function of the run's files
returning an HTML fragment (:mod:`cnnlab.viz.html`); a file the run lacks leaves its part out, with a note."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from ..viz import html as H

SKIPPED_SHOWN = 20  # rows of skipped_files.tsv listed
MISCLASSIFIED_SHOWN = 25  # rows of misclassified.csv listed
LOW_F1 = 0.8  # per-class rows below this F1 are highlighted
CLASSES_SHOWN = 60  # more classes than this: the per-class table lists the lowest-F1 ones


@dataclass
class RunPage:
    path: Path  # the run folder
    config: dict  # config.json
    summary: dict  # summary.json ({} when the run has none)
    analysis: dict  # interpret/interpret.json

    def file(self, *names: str) -> Path:
        return self.path.joinpath(*names)

    def figure(self, name: str, alt: str, caption: str = "") -> str:
        p = self.file(*name.split("/"))
        return H.figure(p, alt, caption) if p.is_file() else f'<p class="note">{H.esc(name)} is missing.</p>'


def _pct(x) -> str:
    return f"{x:.2f}%"


def lead(run: RunPage) -> str:
    s, best = run.summary, run.summary.get("best") or {}
    epochs = len(s.get("history") or [])
    parts = [f"{s.get('stopped', 'no summary: the run has not finished')} after {epochs} epoch(s)"]
    if best:
        parts.append(f"best validation top-1 {_pct(best['val_top1'])} at epoch {best['epoch']}")
    if "seconds" in s:
        parts.append(f"{s['seconds']:.1f} s of training")
    return "; ".join(parts)


def _lr_text(config: dict) -> str:
    lr = config.get("lr")
    text = f"{lr:.3g}" if isinstance(lr, int | float) else str(lr)
    return f"{text} (--lr auto, {config['lr_rule']})" if config.get("lr_rule") else text


def summary(run: RunPage) -> str:
    s, c, a = run.summary, run.config, run.analysis
    best, last = s.get("best") or {}, s.get("last") or {}
    cards = [(_pct(best["val_top1"]) if best else "-", "best val top-1"),
             (str(best.get("epoch", "-")), "best epoch"),
             (_pct(last["val_top1"]) if last else "-", "last val top-1"),
             (f"{len(s.get('history') or [])} / {c.get('epochs')}", "epochs run / planned"),
             (str(s.get("stopped", "-")), "stopped"), (f"{s.get('seconds', 0):.1f} s", "wall time"),
             (_lr_text(c), f"lr ({c.get('optimizer')}, {c.get('schedule')})")]
    if a.get("calibration"):
        cal = a["calibration"]
        cards.append((f"{100 * cal['ece_before']:.2f}%", f"ECE ({cal['bins']} bins)"))
    rows = [(name, r["epoch"], f"{r['train_loss']:.4f}", _pct(r["train_top1"]), f"{r['val_loss']:.4f}",
             _pct(r["val_top1"]), _pct(r["val_top5"])) for name, r in (("best", best), ("last", last)) if r]
    head = ("weights", "epoch", "train loss", "train top-1", "val loss", "val top-1", "val top-5")
    return H.cards(cards) + H.table(head, rows, numeric=range(1, 7))


def model_card(run: RunPage) -> str:
    import torch

    from ..analysis import profile
    from ..registry import create_model
    from ..weights.loading import resolve_checkpoint_path
    from ..weights.meta import read_classes, read_preprocessing

    weights = resolve_checkpoint_path(run.path)
    meta = _metadata(weights)
    pre = read_preprocessing(meta)
    classes = read_classes(meta) or ()
    name = run.config.get("model") or meta.get("model")
    with torch.device("meta"):
        model = create_model(name, num_classes=len(classes) or None,
                             in_chans=pre.input_size[0] if pre else None)
    size = tuple(pre.input_size) if pre else tuple(model.default_cfg.input_size)
    prof = profile(model, size)
    source = run.config.get("weights") or "none: trained from a random initialisation (seed "
    source = source if run.config.get("weights") else f"{source}{run.config.get('seed', 0)})"
    rows = [("model", name), ("parameters", f"{prof.params:,}"),
            ("trainable parameters", _trainable(run, prof)),
            ("MACs per image", f"{prof.macs:,} ({prof.macs / 1e6:.2f} M)"),
            ("input (C x H x W)", " x ".join(map(str, size))),
            ("classes", f"{len(classes)}"), ("initial weights", source), ("weights file", f"{weights.name} "
                                                                         f"(epoch {meta.get('epoch', '?')})")]
    if pre:
        rows += [("mean / std", f"{list(pre.mean)} / {list(pre.std)}"),
                 ("resize", f"{pre.interpolation}, crop fraction {pre.crop_pct}")]
    transfer = _read(run.file("transfer.json"))
    if transfer:
        rows += [("fine-tuning", f"regime {transfer.get('regime')}, frozen stages: {transfer.get('freeze')}, "
                                 f"backbone lr x {transfer.get('backbone_lr_mult')}")]
    return H.pairs(rows)


def _trainable(run: RunPage, prof) -> str:
    transfer = _read(run.file("transfer.json"))
    if not transfer:
        return f"{prof.trainable_params:,}"
    n = sum(int(r.get("trainable", 0)) for r in transfer.get("parameters", []) if isinstance(r, dict))
    return f"{n:,} (the rest frozen)" if n else "see transfer.json"


def _metadata(path: Path) -> dict:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except Exception:  # another format (a .pt file): no metadata
        return {}


def _read(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def data(run: RunPage) -> str:
    a, c = run.analysis, run.config
    counts = a.get("class_counts") or {}
    train, val = counts.get("train") or {}, counts.get("val") or {}
    classes = a.get("classes") or list(train)
    rows = [(name, train.get(name, 0), val.get(name, 0)) for name in classes]
    rows.append(("total", sum(train.values()), sum(val.values())))
    split = _split_text(a.get("split") or {})
    text = f"<p>{H.esc(c.get('data'))}: {len(classes)} classes; {H.esc(split)}.</p>"
    counts_table = H.table(("class", "train images", "validation images"), rows, numeric=(1, 2))
    return text + counts_table + _skipped(run)


def _split_text(split: dict) -> str:
    if split.get("split_file"):
        return f"validation images from the split file {split['split_file']}"
    if split.get("val_split") is not None:
        return f"validation: {100 * split['val_split']:g}% of the training images (seed {split.get('seed')})"
    return f"validation: the data's own split (seed {split.get('seed')} where it is drawn)"


def _skipped(run: RunPage) -> str:
    skipped = (run.summary.get("skipped_files") or {})
    total = int(skipped.get("total", 0))
    if not total:
        return "<p>Skipped files: none (every image could be read).</p>"
    counts = ", ".join(f"{k}: {v}" for k, v in (skipped.get("counts") or {}).items())
    rows = [(x.get("path"), x.get("reason")) for x in (skipped.get("skipped") or [])[:SKIPPED_SHOWN]]
    more = f" (the first {SKIPPED_SHOWN} listed; all in skipped_files.tsv)" if total > SKIPPED_SHOWN else ""
    return f"<p>Skipped files: {total} ({H.esc(counts)}){more}.</p>" + H.table(("file", "reason"), rows)


def training(run: RunPage) -> str:
    parts = [run.figure("curves.png", "training curves", "Loss, top-1 accuracy and learning rate per epoch.")]
    if run.file("lr_find.png").is_file():
        parts.append(run.figure("lr_find.png", "learning-rate range test",
                                f"--lr auto ran the LR range test before training; the run trained at its "
                                f"{run.config.get('lr_rule')} suggestion, lr {run.config.get('lr'):.3g}."))
    history = run.summary.get("history") or []
    rows = [(r["epoch"], f"{r['train_loss']:.4f}", _pct(r["train_top1"]), f"{r['val_loss']:.4f}",
             _pct(r["val_top1"]), _pct(r["val_top5"]), f"{r['lr']:.3g}") for r in history]
    head = ("epoch", "train loss", "train top-1", "val loss", "val top-1", "val top-5", "lr (end)")
    return "".join(parts) + (H.table(head, rows, numeric=range(7)) if rows else "")


def errors(run: RunPage) -> str:
    a = run.analysis
    rows = a.get("per_class") or []
    shown = rows if len(rows) <= CLASSES_SHOWN else sorted(rows, key=lambda r: r["f1"])[:CLASSES_SHOWN]
    note = "" if shown is rows else (f" The {CLASSES_SHOWN} classes of {len(rows)} with the lowest F1 are "
                                     "listed; all are in interpret/per_class.csv.")
    low = [i for i, r in enumerate(shown) if r["f1"] < LOW_F1]
    table = [(r["name"], *_prf(r), r["support"]) for r in shown]
    for name, avg in (a.get("averages") or {}).items():
        table.append((f"{name} average", *_prf(avg), sum(r["support"] for r in rows)))
    parts = [f"<p>The best weights on {a.get('count', 0)} validation images: top-1 {_pct(a.get('top1', 0))}. "
             f"Rows with F1 below {LOW_F1} are shaded.{H.esc(note)}</p>",
             '<div class="grid"><div>', H.table(("class", "precision", "recall", "F1", "support"), table,
                                                numeric=range(1, 5), low_rows=low), "</div><div>",
             "<h3>Most confused pairs</h3>", _confused(a), "</div></div>",
             run.figure("confusion.png", "confusion matrix", "Confusion matrix of the best epoch."),
             "<h3>Top losses</h3>",
             run.figure("interpret/top_losses.png", "top losses", "The validation images with the largest "
                        "loss -log p(true class); Grad-CAM shows where the evidence for the predicted class "
                        "lies."),
             "<h3>Misclassified images</h3>", _misclassified(run)]
    return "".join(parts)


def _prf(r: dict) -> tuple[str, str, str]:
    return f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}"


def _confused(a: dict) -> str:
    pairs = a.get("confused") or []
    if not pairs:
        return "<p>None: every validation image is classified correctly.</p>"
    rows = [(p["true"], p["predicted"], p["count"], _pct(100 * p["fraction"])) for p in pairs]
    return H.table(("true", "predicted as", "images", "of the class"), rows, numeric=(2, 3))


def _misclassified(run: RunPage) -> str:
    path = run.file("interpret", "misclassified.csv")
    if not path.is_file():
        return '<p class="note">interpret/misclassified.csv is missing.</p>'
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    if len(rows) <= 1:
        return "<p>None.</p>"
    more = len(rows) - 1 - MISCLASSIFIED_SHOWN
    note = f'<p class="note">{more} more in interpret/misclassified.csv.</p>' if more > 0 else ""
    return H.table(rows[0], rows[1:MISCLASSIFIED_SHOWN + 1], numeric=(3, 4, 5)) + note


def calibration(run: RunPage) -> str:
    cal = run.analysis.get("calibration")
    if not cal:
        return '<p class="note">No calibration analysis.</p>'
    rows = [("softmax as trained (T = 1)", f"{100 * cal['ece_before']:.2f}%", f"{cal['nll_before']:.4f}"),
            (f"temperature T = {cal['temperature']:.3f}", f"{100 * cal['ece_after']:.2f}%",
             f"{cal['nll_after']:.4f}")]
    text = (f"<p>Expected calibration error over {cal['bins']} equal-width confidence bins, and the mean "
            "negative log-likelihood, before and after temperature scaling (T fitted on this validation "
            "split by minimising the NLL, so the 'after' figures are in-sample). T &gt; 1: the model was "
            "overconfident; T &lt; 1: underconfident.</p>")
    return text + H.table(("probabilities", "ECE", "NLL"), rows, numeric=(1, 2)) + run.figure(
        "interpret/reliability.png", "reliability diagrams")


def timings(run: RunPage, report_seconds: float) -> str:
    s, history = run.summary, run.summary.get("history") or []
    epoch_seconds = sum(r.get("seconds", 0.0) for r in history)
    rate = sum(r.get("images_per_s", 0.0) for r in history) / max(1, len(history))
    rows = [("training run (wall, every session)", f"{s.get('seconds', 0):.1f} s"),
            ("training steps (sum over epochs)", f"{epoch_seconds:.1f} s"),
            ("optimizer steps", s.get("steps", "-")),
            ("training throughput (mean over epochs)", f"{rate:,.0f} images/s"),
            ("error analysis (interpret)", f"{run.analysis.get('seconds', 0):.1f} s"),
            ("this report (with the error analysis when it was made)", f"{report_seconds:.1f} s")]
    return H.pairs(rows)


def configuration(run: RunPage) -> str:
    rows = [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in sorted(run.config.items())]
    note = "<p>config.json, as saved when the run started (with --lr auto: the lr it chose).</p>"
    return note + H.pairs(rows, 3)
