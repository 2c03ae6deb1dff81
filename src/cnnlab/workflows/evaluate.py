"""``cnnlab evaluate``: accuracy of a model or an ensemble on a validation split, with test-time views.

``evaluate(["lenet5:runs/a", "lenet5:runs/b"], "digits", tta="flip")`` (or the CLI) reports, for each
model and for the ensemble, top-1 / top-5 (%), the mean negative log-likelihood of the true class and
the per-class top-1, on the validation split of the data (the split ``cnnlab train`` made: the run's
``val_split``/``seed``/``split_file`` are reused when the data is the run's). The settings are an
:class:`EvaluateConfig`; keyword arguments override its fields.

Members are ``MODEL[:WEIGHTS]`` strings (a run folder, a checkpoint file or a pretrained tag; no
weights: an untrained network, with a notice), ONNX files written by ``cnnlab export`` (run by
onnxruntime with the preprocessing and class names embedded in them, so an int8 file's accuracy is
measured beside its PyTorch source), :class:`Member` objects or modules. Each member is
loaded by :func:`cnnlab.workflows.trained.load_trained` and sees the data through the preprocessing
saved with its weights (the one its run validated with), and the views of :mod:`cnnlab.data.tta` are
built on it. How views and members are combined (``mean_prob``, ``mean_logit``) and tallied is
:mod:`cnnlab.engine.ensemble`'s. ``misclassified=FILE.csv`` lists the images the last line (the
ensemble, or the only model) gets wrong, with the probabilities of its answer and of the truth.
"""

from __future__ import annotations

import copy
import csv
import io
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import build_config, check_choice, check_number, document
from ..data.splits import resolve_spec
from ..data.tta import TestTimeViews, check_mode
from ..engine.ensemble import COMBINES, Pass, Score, score_views
from ..errors import CnnlabError
from ..utils.io import atomic_write, check_output_file
from ..utils.log import notice
from ..utils.threads import model_macs, set_threads
from .members import (
    Member,
    as_member,
    check_same_outputs,
    class_index,
    load_member,
    parse_member,
    untrained_member,
)
from .run import resolve_device

SPLIT_KEYS = ("val_split", "seed", "split_file")
__all__ = ["EvaluateConfig", "EvaluationResult", "Member", "Score", "evaluate", "load_member", "parse_member"]


@dataclass
class EvaluateConfig:
    """What ``evaluate`` does besides which models and data (see the module docstring)."""

    tta: str = "none"  # none | flip | 5crop | 10crop | multiscale (cnnlab.data.tta)
    scales: list[int] | None = None  # shorter sides in pixels to take the views at (default: the model's)
    member_weights: list[float] | None = None  # one non-negative weight per member (default equal)
    combine: str = "mean_prob"  # mean_prob | mean_logit (cnnlab.engine.ensemble)
    batch_size: int = 32  # images per forward pass, each with all its views
    device: str = "auto"  # auto | cpu | cuda
    workers: int = 0  # DataLoader worker processes
    val_split: float | None = None  # the split: default the first run's
    seed: int | None = None
    split_file: str | None = None
    keep_probs: bool = False  # keep each line's probabilities (Score.probs / indices / targets)
    misclassified: str | None = None  # CSV of the images the last line gets wrong

    def check(self) -> None:
        check_mode(self.tta)
        check_choice("combine", self.combine, COMBINES)
        check_number("batch_size", self.batch_size, low=1, integer=True)
        check_number("workers", self.workers, low=0, integer=True)
        check_number("val_split", self.val_split, low=0, high=1, low_open=True, high_open=True, none=True)
        check_number("seed", self.seed, low=0, high=2**63 - 1, integer=True, none=True)
        for s in self.scales or []:
            check_number("scales", s, low=8, high=4096, integer=True)
        if self.misclassified:
            check_output_file(self.misclassified, "--misclassified")


@dataclass
class EvaluationResult:
    data: str
    count: int
    classes: list[str]
    tta: str
    combine: str
    weights: list[float]  # the members' weights, normalised
    members: list[Score]
    ensemble: Score | None
    seconds: float
    files: list[str] = field(default_factory=list)  # dataset item -> file (empty for in-memory data)

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k not in ("members", "ensemble", "files")}
        return out | {"members": [m.to_dict() for m in self.members],
                      "ensemble": self.ensemble.to_dict() if self.ensemble else None}

    def table(self) -> str:
        """A line per member and one for the ensemble; then the per-class top-1 of the last line."""
        rows = self.members + ([self.ensemble] if self.ensemble else [])
        width = max(12, *(len(r.label) for r in rows))
        lines = [f"{self.data}: validation split, {self.count} images, {len(self.classes)} classes; "
                 f"combine {self.combine}",
                 f"{'model':<{width}}  {'top-1':>6}  {'top-5':>6}  {'loss':>7}  test-time views"]
        lines += [f"{r.label:<{width}}  {r.top1:6.2f}  {r.top5:6.2f}  {r.loss:7.4f}  {r.tta}" for r in rows]
        last = rows[-1]
        if len(last.per_class) <= 30:
            cells = [f"{name} {c['top1']:.1f} ({c['count']})" for name, c in last.per_class.items()]
            lines.append(f"per-class top-1 % of {last.label} (images): " + ", ".join(cells))
        return "\n".join(lines)


# -- the workflow -----------------------------------------------------------------------------------

def evaluate(models, data=None, config: EvaluateConfig | dict | None = None, **overrides) -> EvaluationResult:
    """Evaluate one model or an ensemble on the validation split of ``data`` (see the module docstring).

    ``models``: ``"MODEL[:WEIGHTS]"``, a :class:`Member`, a module, or a list of them. ``data``: a
    spec as ``cnnlab train --data`` takes it (default: the first run's data) or an opened
    :class:`~cnnlab.data.Splits`. ``config``/``overrides``: :class:`EvaluateConfig` fields.
    """
    started = time.perf_counter()
    config = build_config(EvaluateConfig, config, _renamed(overrides))
    config.check()
    device = resolve_device(config.device)
    items = list(models) if isinstance(models, list | tuple) else [models]
    if not items:
        raise CnnlabError("no model to evaluate; give MODEL[:WEIGHTS] (one or more)")
    loaded = [as_member(m) for m in items]
    member_weights = _normalise_weights(config.member_weights, len(loaded))
    splits, spec = _data_for(data, loaded, config)
    members = [m if isinstance(m, Member) else untrained_member(m, splits, len(splits.mean)) for m in loaded]
    lines, ensemble = _score(members, splits, member_weights, config, device)
    files = [s[0] for s in getattr(splits.val, "samples", [])]
    result = EvaluationResult(spec, lines[0].count, list(splits.classes), config.tta, config.combine,
                              member_weights, lines, ensemble, time.perf_counter() - started, files)
    if config.misclassified:
        write_misclassified(result, config.misclassified)
    return result


def _score(members: list[Member], splits, member_weights: list[float], config: EvaluateConfig, device):
    """(a Score per member, the ensemble's Score or None): one pass over the validation views."""
    index = class_index(members[0], splits.classes)
    check_same_outputs(members, [class_index(m, splits.classes) for m in members])
    pipelines, which = _pipelines(members, config.tta, config.scales)
    dataset = copy.copy(splits.val)
    dataset.transform = _Views(pipelines)
    if hasattr(dataset, "on_bad"):
        dataset.on_bad = "drop"  # an unreadable file is left out, not replaced by (and counted as) the next
    macs = sum(model_macs(m.model, (len(splits.mean), pipelines[w].size, pipelines[w].size)) or 0
               for m, w in zip(members, which))
    set_threads(config.batch_size * max(p.num_views for p in pipelines) * macs or None)
    keep = config.keep_probs or bool(config.misclassified)
    tallies = score_views([m.model for m in members], which, index, dataset, member_weights, config.combine,
                          Pass(config.batch_size, device, config.workers, keep))
    described = [pipelines[w].describe() for w in which]
    lines = [t.score(m.label, d, pipelines[w].num_views, splits.classes)
             for t, m, d, w in zip(tallies, members, described, which)]
    if len(members) == 1:
        return lines, None
    tta_text = described[0] if len(set(described)) == 1 else f"{config.tta} (each member's views as above)"
    return lines, tallies[-1].score(f"ensemble of {len(members)}", tta_text,
                                    sum(pipelines[w].num_views for w in which), splits.classes)


def _renamed(overrides: dict) -> dict:
    """Keyword names of earlier versions: ``weights`` (now ``member_weights``: ``weights`` means a
    checkpoint everywhere else) and ``split`` (a dict of the split fields)."""
    out = dict(overrides)
    if "weights" in out:
        notice("evaluate(weights=...) is renamed member_weights=...; 'weights' means a checkpoint elsewhere")
        out["member_weights"] = out.pop("weights")
    split = out.pop("split", None) or {}
    unknown = sorted(set(split) - set(SPLIT_KEYS))
    if unknown:
        raise CnnlabError(f"unknown split option(s) {', '.join(unknown)}; use {', '.join(SPLIT_KEYS)}")
    return out | {k: v for k, v in split.items() if v is not None}


def _normalise_weights(weights, n: int) -> list[float]:
    if weights is None:
        return [1.0 / n] * n
    weights = [float(w) for w in weights]
    if len(weights) != n or any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise CnnlabError(f"ensemble weights {weights} must be {n} non-negative numbers, one per model, "
                          "not all zero")
    total = sum(weights)
    return [w / total for w in weights]


def _data_for(data, loaded: list, config: EvaluateConfig):
    """(splits, data spec) for the members: the channel count of the trained members, else the data's."""
    chans = {m.in_chans for m in loaded if isinstance(m, Member) and m.in_chans}
    if len(chans) > 1:
        raise CnnlabError(
            f"the models take different input channels ({sorted(chans)}); evaluate them separately"
        )
    if data is not None and not isinstance(data, str | os.PathLike):
        return data, getattr(data, "source", "data")
    runs = [m.run for m in loaded if isinstance(m, Member) and m.run]
    given = {k: getattr(config, k) for k in SPLIT_KEYS}
    spec, options = _split_options(str(data) if data is not None else None, runs, given)
    return _open(spec, options, next(iter(chans), None)), spec


def _split_options(data, runs: list[dict], given: dict) -> tuple[str, dict]:
    """(data spec, split options): the first run's split when the data is that run's data."""
    first = runs[0] if runs else {}
    spec = resolve_spec(data or first.get("data"))  # a relative path names the same data as the run's
    if not spec:
        raise CnnlabError(
            "no data to evaluate on: pass --data (digits, an image folder, a .csv list, cifar10:DIR, ...)"
        )
    base = {k: first.get(k) for k in SPLIT_KEYS} if resolve_spec(first.get("data")) == spec else {}
    options = {"val_split": None, "seed": 0, "split_file": None} | {
        k: v for k, v in base.items() if v is not None
    }
    options |= {k: v for k, v in given.items() if v is not None}
    for run in runs:
        if (
            resolve_spec(run.get("data")) == spec
            and _carved(spec, options)
            and any(
                run.get(k) != options[k]
                for k in SPLIT_KEYS
                if run.get(k) is not None or options[k] is not None
            )
        ):
            notice(
                f"run {run.get('name')} was trained on another split of {spec} (seed {run.get('seed')}, "
                f"val_split {run.get('val_split')}); some evaluation images may be among its training images"
            )
    return spec, options


def _carved(spec: str, options: dict) -> bool:
    """Whether the validation set depends on the split options (digits, or a fraction carved out)."""
    return spec == "digits" or options.get("val_split") is not None or options.get("split_file") is not None


def _open(spec: str, options: dict, in_chans: int | None):
    from ..data import open_dataset

    splits = open_dataset(spec, in_chans=in_chans or 3, **options)
    native = splits.input_size
    if in_chans is None and native and native[0] != 3:
        splits = open_dataset(spec, in_chans=native[0], **options)
    return splits


class _Views:
    """Dataset transform: the views of each distinct member preprocessing, as a tuple."""

    def __init__(self, pipelines: list[TestTimeViews]) -> None:
        self.pipelines = pipelines
        drafts = [getattr(p, "draft_size", None) for p in pipelines]
        if None not in drafts:  # a JPEG may be decoded small only when every pipeline says how small
            self.draft_size = max(drafts)
        for attr in ("accepts_tensor", "fast_decode"):
            setattr(self, attr, all(getattr(p, attr, False) for p in pipelines))

    def __call__(self, image) -> tuple[torch.Tensor, ...]:
        return tuple(p(image) for p in self.pipelines)


def _pipelines(members: list[Member], tta: str, scales) -> tuple[list[TestTimeViews], list[int]]:
    """The distinct view pipelines and, for each member, the index of its own."""
    from ..data.transforms import eval_transform

    pipelines, keys, which = [], [], []
    for m in members:
        base = m.transform if m.transform is not None else eval_transform(m.model.default_cfg)
        key = repr(base)
        if key not in keys:
            keys.append(key)
            pipelines.append(TestTimeViews(base, tta, scales))
        which.append(keys.index(key))
    return pipelines, which


def write_misclassified(result: EvaluationResult, path) -> Path:
    """CSV of the images the last line gets wrong: file (or dataset index), true and predicted class,
    the probability of each, and the loss ``-log p(true)``; most confident mistakes first."""
    line = result.ensemble or result.members[-1]
    probs, indices, targets = line.probs, line.indices, line.targets
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["file", "true", "predicted", "p_predicted", "p_true", "loss"])
    if probs is not None:
        pred = probs.argmax(1)
        p_true = probs.gather(1, targets.view(-1, 1)).squeeze(1)
        wrong = torch.nonzero(pred != targets).flatten().tolist()
        wrong.sort(key=lambda i: -float(probs[i, pred[i]]))
        for i in wrong:
            item = int(indices[i])
            name = result.files[item] if item < len(result.files) else f"item {item}"
            writer.writerow([name, result.classes[int(targets[i])], result.classes[int(pred[i])],
                             f"{float(probs[i, pred[i]]):.6f}", f"{float(p_true[i]):.6f}",
                             f"{-math.log(max(float(p_true[i]), 1e-45)):.6f}"])
    out = Path(path)
    with atomic_write(out, "w") as fh:
        fh.write(buf.getvalue())
    return out



document(evaluate, EvaluateConfig)
