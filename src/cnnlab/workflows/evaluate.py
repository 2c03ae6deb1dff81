"""``cnnlab evaluate``: accuracy of a model or an ensemble on a validation split, with test-time views.

``evaluate(["lenet5:runs/a", "lenet5:runs/b"], "digits", tta="flip")`` (or the CLI) reports, for each
model and for the ensemble, top-1 / top-5 (%), the mean negative log-likelihood of the true class and
the per-class top-1, on the validation split of the data (the split ``cnnlab train`` made: the run's
``val_split``/``seed``/``split_file`` are reused when the data is the run's).

Members are ``MODEL[:WEIGHTS]`` strings (a run folder, a checkpoint file or a pretrained tag; no
weights: an untrained network, with a notice), :class:`Member` objects or modules. Each member sees
the data through its own single-view evaluation preprocessing (the one its run used: the whole
image for runs trained on whole images, ``size / crop_pct`` then a centre crop otherwise), and the
views of :mod:`cnnlab.data.tta` are built on it.

How predictions are combined (``combine``):

* ``mean_prob`` (default): the softmax probabilities are averaged over the views, then over the
  members (weighted by ``weights``). This is what AlexNet (10 crops, 5-7 nets) and VGG (views and
  models) did; probabilities keep one overconfident member from outvoting the others by its scale.
* ``mean_logit``: the logits are averaged instead, then one softmax (a geometric mean of the
  probabilities); meaningful only for members whose logits share a scale.

The loss is ``-log`` of the combined probability of the true class. With one view and one member
both reduce to the model's own softmax, so ``tta="none"`` reproduces the training loop's validation.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from ..data.tta import TestTimeViews, check_mode
from ..errors import CnnlabError
from ..registry import create_model, get_entry
from ..utils.log import notice

COMBINES = ("mean_prob", "mean_logit")
SPLIT_KEYS = ("val_split", "seed", "split_file")


@dataclass
class Member:
    """One model to evaluate. ``transform``: its single-view evaluation transform (resize the shorter
    side, centre crop, normalise; default ``eval_transform(model.default_cfg)``); ``classes``: the
    names of its outputs (default: the dataset's); ``run``: its run folder's config.json."""

    model: nn.Module
    transform: object = None
    classes: list[str] | None = None
    label: str = "model"
    run: dict | None = None
    in_chans: int | None = None


@dataclass
class Score:
    label: str
    tta: str  # e.g. "flip: 2 view(s) of 32 px at shorter side 32"
    views: int
    top1: float  # percent
    top5: float  # percent
    loss: float  # mean -log p(true class)
    count: int
    per_class: dict[str, dict] = field(default_factory=dict)  # name -> {"top1": %, "count": n}
    probs: torch.Tensor | None = None  # (count, classes) when asked for (keep_probs=True)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "probs"}


@dataclass
class EvaluationResult:
    data: str
    count: int
    classes: list[str]
    tta: str
    combine: str
    weights: list[float]
    members: list[Score]
    ensemble: Score | None
    seconds: float

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k not in ("members", "ensemble")}
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


# ---------------------------------------------------------------------------------------------------
# Members


def parse_member(spec: str) -> tuple[str, str | None]:
    """``"MODEL[:WEIGHTS]"`` -> (model name, weights or None); the model name is checked."""
    name, sep, weights = str(spec).partition(":")
    get_entry(name)
    if sep and not weights:
        raise CnnlabError(f"{spec!r} names no weights after ':'; write MODEL:RUN_FOLDER, MODEL:FILE or MODEL")
    return name, weights or None


def run_config(model_name: str, weights) -> dict | None:
    """The config.json of the run folder that ``weights`` is (or lies in), if it is that model's run."""
    if not isinstance(weights, str | os.PathLike) or not Path(weights).exists():
        return None
    p = Path(weights)
    cfg = (p if p.is_dir() else p.parent) / "config.json"
    try:
        data = json.loads(cfg.read_text()) if cfg.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("model") == model_name else None


def _train_eval_transform(model: nn.Module, run: dict):
    """The validation transform ``cnnlab train`` built for this run (as train_setup.data_setup does;
    of the ``--aug`` overrides only ``base`` changes the evaluation)."""
    from ..data.transforms import build_transform
    from .train_setup import AUTO_AUGMENT

    preset, aug = run.get("augment"), run.get("aug") or []
    if preset is None and not aug:
        preset = AUTO_AUGMENT.get(run.get("data"), ("none",))[0]
    base = [v.strip() for k, _, v in (a.partition("=") for a in aug) if k.strip() == "base"]
    cfg = model.default_cfg
    return build_transform(preset or "none", train=False, input_size=cfg.input_size[-1], mean=cfg.mean, std=cfg.std,
                           interpolation=cfg.interpolation, crop_pct=cfg.crop_pct, **({"base": base[-1]} if base else {}))


def load_member(spec: str) -> Member | str:
    """A trained :class:`Member` from ``MODEL:WEIGHTS``; an untrained one is built once the data is
    known, so this returns the bare model name for ``MODEL``."""
    from ..data.transforms import eval_transform
    from .predict import CheckpointInfo, checkpoint_info, imagenet_classes

    name, weights = parse_member(spec)
    if weights is None:
        return name
    entry = get_entry(name)
    info = CheckpointInfo() if weights in entry.pretrained else checkpoint_info(name, weights)
    model = create_model(name, num_classes=info.num_classes, in_chans=info.in_chans, weights=weights)
    if info.data:
        model.default_cfg = replace(model.default_cfg, **info.data)
    names = info.names
    if weights in entry.pretrained and info.num_classes == 1000:
        names = list(imagenet_classes())
    run = run_config(name, weights)
    is_train_run = run is not None and "regime" not in run and "augment" in run
    transform = _train_eval_transform(model, run) if is_train_run else eval_transform(model.default_cfg)
    return Member(model, transform, list(names) if names else None, spec, run, info.in_chans)


def _untrained(name: str, splits, in_chans: int) -> Member:
    from ..data.transforms import build_transform

    notice(f"{name}: no weights given, so an untrained network is evaluated")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = create_model(name, num_classes=len(splits.classes), in_chans=in_chans)
    cfg = model.default_cfg
    size = splits.input_size[-1] if splits.input_size else cfg.input_size[-1]
    transform = build_transform("none", train=False, input_size=size, mean=splits.mean, std=splits.std,
                                interpolation=cfg.interpolation, crop_pct=cfg.crop_pct)
    return Member(model, transform, list(splits.classes), name, None, in_chans)


def _as_member(item) -> Member | str:
    if isinstance(item, Member):
        return item
    if isinstance(item, nn.Module):
        return Member(item, label=getattr(item, "model_name", "") or type(item).__name__)
    return load_member(item)


# ---------------------------------------------------------------------------------------------------
# Data


def _split_options(data, runs: list[dict], given: dict) -> tuple[str, dict]:
    """(data spec, split options): the first run's split when the data is that run's data."""
    first = runs[0] if runs else {}
    spec = data or first.get("data")
    if not spec:
        raise CnnlabError("no data to evaluate on: pass --data (digits, an image folder, a .csv list, cifar10:DIR, ...)")
    base = {k: first.get(k) for k in SPLIT_KEYS} if first.get("data") == spec else {}
    options = {"val_split": None, "seed": 0, "split_file": None} | {k: v for k, v in base.items() if v is not None}
    options |= {k: v for k, v in given.items() if v is not None}
    for run in runs:
        if run.get("data") == spec and _carved(spec, options) and any(
                run.get(k) != options[k] for k in SPLIT_KEYS if run.get(k) is not None or options[k] is not None):
            notice(f"run {run.get('name')} was trained on another split of {spec} (seed {run.get('seed')}, "
                   f"val_split {run.get('val_split')}); some evaluation images may be among its training images")
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


def _class_index(member: Member, classes: list[str]) -> torch.Tensor:
    """For each dataset class, the member's output index of that class."""
    own = member.classes
    if own is None:
        return torch.arange(len(classes))
    if list(own) == list(classes):
        return torch.arange(len(classes))
    missing = [c for c in classes if c not in own]
    if missing:
        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise CnnlabError(f"{member.label} was trained on other classes than the data's ({len(own)} classes; the "
                          f"data's {shown} not among them); evaluate it on data with its classes")
    return torch.tensor([own.index(c) for c in classes])


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


# ---------------------------------------------------------------------------------------------------
# Combining views and members


def combine_views(logits: torch.Tensor, combine: str = "mean_prob") -> torch.Tensor:
    """``(B, V, K)`` logits of V views -> ``(B, K)``: the log of the mean softmax over the views
    (``mean_prob``) or the mean logits (``mean_logit``)."""
    if combine == "mean_logit":
        return logits.mean(1)
    return torch.logsumexp(torch.log_softmax(logits, dim=-1), dim=1) - math.log(logits.shape[1])


def log_probs(score: torch.Tensor, combine: str) -> torch.Tensor:
    """The log-probabilities of a :func:`combine_views` score."""
    return torch.log_softmax(score, dim=-1) if combine == "mean_logit" else score


def combine_members(scores: list[torch.Tensor], weights: list[float], combine: str = "mean_prob") -> torch.Tensor:
    """Log-probabilities ``(B, K)`` of the ensemble: ``log sum_m w_m p_m`` (``mean_prob``, the members'
    probabilities averaged) or ``log_softmax(sum_m w_m z_m)`` (``mean_logit``); weights sum to 1."""
    if combine == "mean_logit":
        return torch.log_softmax(sum(w * s for w, s in zip(weights, scores)), dim=-1)
    logw = torch.tensor(weights, dtype=scores[0].dtype, device=scores[0].device).log().view(-1, 1, 1)
    return torch.logsumexp(torch.stack(scores) + logw, dim=0)


class _Tally:
    """Sums for one line of the table: -log p(true), top-1/top-5 hits, per-class hits."""

    def __init__(self, num_classes: int, keep_probs: bool) -> None:
        self.loss, self.c1, self.c5, self.n = 0.0, 0, 0, 0
        self.hits = torch.zeros(num_classes, dtype=torch.int64)
        self.seen = torch.zeros(num_classes, dtype=torch.int64)
        self.probs: list[torch.Tensor] | None = [] if keep_probs else None

    def add(self, logp: torch.Tensor, target: torch.Tensor, label: torch.Tensor) -> None:
        from ..engine.metrics import topk_correct

        self.loss -= float(logp.gather(1, target.view(-1, 1)).sum())
        c1, c5 = topk_correct(logp, target)
        self.c1, self.c5, self.n = self.c1 + c1, self.c5 + c5, self.n + len(target)
        correct = (logp.argmax(1) == target).cpu()
        self.hits += torch.bincount(label[correct], minlength=len(self.hits))
        self.seen += torch.bincount(label, minlength=len(self.seen))
        if self.probs is not None:
            self.probs.append(logp.exp().cpu())

    def score(self, label: str, tta: str, views: int, classes: list[str]) -> Score:
        n = max(1, self.n)
        per_class = {c: {"top1": 100.0 * int(h) / max(1, int(s)), "count": int(s)}
                     for c, h, s in zip(classes, self.hits, self.seen)}
        probs = torch.cat(self.probs) if self.probs else None
        return Score(label, tta, views, 100.0 * self.c1 / n, 100.0 * self.c5 / n, self.loss / n, self.n, per_class,
                     probs)


# ---------------------------------------------------------------------------------------------------
# The workflow


def evaluate(models, data=None, *, tta: str = "none", scales=None, weights=None, combine: str = "mean_prob",
             batch_size: int = 32, device: str = "auto", workers: int = 0, split: dict | None = None,
             keep_probs: bool = False) -> EvaluationResult:
    """Evaluate one model or an ensemble on the validation split of ``data`` (see the module docstring).

    ``models``: ``"MODEL[:WEIGHTS]"``, a :class:`Member`, a module, or a list of them. ``data``: a
    spec as ``cnnlab train --data`` takes it (default: the first run's data) or an opened
    :class:`~cnnlab.data.Splits`. ``tta``: none | flip | 5crop | 10crop | multiscale; ``scales``: shorter sides
    in pixels (see :mod:`cnnlab.data.tta`). ``weights``: one non-negative weight per member (default
    equal). ``split``: ``val_split`` / ``seed`` / ``split_file`` overriding the run's. ``batch_size``:
    images per forward pass (each with all its views). ``keep_probs``: keep each line's probabilities.
    """
    started = time.perf_counter()
    _check_options(tta, combine, batch_size, workers)
    items = list(models) if isinstance(models, list | tuple) else [models]
    if not items:
        raise CnnlabError("no model to evaluate; give MODEL[:WEIGHTS] (one or more)")
    loaded = [_as_member(m) for m in items]
    member_weights = _normalise_weights(weights, len(loaded))
    splits, spec = _data_for(data, loaded, split or {})
    chans = len(splits.mean)
    members = [m if isinstance(m, Member) else _untrained(m, splits, chans) for m in loaded]
    index = [_class_index(m, splits.classes) for m in members]
    _check_same_outputs(members, index)
    pipelines, which = _pipelines(members, tta, scales)
    dataset = copy.copy(splits.val)
    dataset.transform = _Views(pipelines)
    from .train_setup import resolve_device

    tallies = _run(members, which, index, dataset, member_weights, combine,
                   (batch_size, resolve_device(device), workers, keep_probs))
    described = [pipelines[w].describe() for w in which]
    lines = [t.score(m.label, d, pipelines[w].num_views, splits.classes)
             for t, m, d, w in zip(tallies, members, described, which)]
    ensemble = None
    if len(members) > 1:
        tta_text = described[0] if len(set(described)) == 1 else f"{tta} (each member's views as above)"
        ensemble = tallies[-1].score(f"ensemble of {len(members)}", tta_text,
                                     sum(pipelines[w].num_views for w in which), splits.classes)
    return EvaluationResult(spec, lines[0].count, list(splits.classes), tta, combine, member_weights,
                            lines, ensemble, time.perf_counter() - started)


def _check_options(tta: str, combine: str, batch_size: int, workers: int) -> None:
    check_mode(tta)
    if combine not in COMBINES:
        raise CnnlabError(f"unknown combine {combine!r}; use one of {', '.join(COMBINES)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise CnnlabError(f"batch size must be an integer >= 1, got {batch_size!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise CnnlabError(f"workers must be an integer >= 0, got {workers!r}")


def _normalise_weights(weights, n: int) -> list[float]:
    if weights is None:
        return [1.0 / n] * n
    weights = [float(w) for w in weights]
    if len(weights) != n or any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise CnnlabError(f"ensemble weights {weights} must be {n} non-negative numbers, one per model, "
                          "not all zero")
    total = sum(weights)
    return [w / total for w in weights]


def _data_for(data, loaded: list, given: dict):
    """(splits, data spec) for the members: the channel count of the trained members, else the data's."""
    chans = {m.in_chans for m in loaded if isinstance(m, Member) and m.in_chans}
    if len(chans) > 1:
        raise CnnlabError(f"the models take different input channels ({sorted(chans)}); evaluate them separately")
    if data is not None and not isinstance(data, str | os.PathLike):
        return data, getattr(data, "source", "data")
    unknown = sorted(set(given) - set(SPLIT_KEYS))
    if unknown:
        raise CnnlabError(f"unknown split option(s) {', '.join(unknown)}; use {', '.join(SPLIT_KEYS)}")
    runs = [m.run for m in loaded if isinstance(m, Member) and m.run]
    spec, options = _split_options(str(data) if data is not None else None, runs, given)
    return _open(spec, options, next(iter(chans), None)), spec


def _check_same_outputs(members: list[Member], index: list[torch.Tensor]) -> None:
    outputs = {(tuple(m.classes) if m.classes else None, tuple(i.tolist())) for m, i in zip(members, index)}
    if len(outputs) > 1:
        raise CnnlabError("the ensemble's models have different classes (names or order); "
                          "evaluate them separately or retrain them on the same data")


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


@torch.no_grad()
def _run(members, which, index, dataset, weights, combine, how) -> list[_Tally]:
    """One pass over the data: a tally per member, and one for the ensemble when there are several."""
    from ..data import make_loader
    from ..engine.evaluate import main_output

    batch_size, device, workers, keep = how
    tallies = [_Tally(len(index[0]), keep) for _ in range(len(members) + (len(members) > 1))]
    loader = make_loader(dataset, batch_size=batch_size, shuffle=False, workers=workers, device=device.type)
    modes = [m.model.training for m in members]
    for m in members:
        m.model.to(device).eval()
    try:
        for views, label in loader:
            target = index[0].to(device)[label.to(device)]
            scores = []
            for m, w in zip(members, which):
                x = views[w].to(device, non_blocking=True)
                logits = main_output(m.model(x.flatten(0, 1))).float().view(x.shape[0], x.shape[1], -1)
                scores.append(combine_views(logits, combine))
            for tally, score in zip(tallies, scores):
                tally.add(log_probs(score, combine), target, label)
            if len(members) > 1:
                tallies[-1].add(combine_members(scores, weights, combine), target, label)
    finally:
        for m, mode in zip(members, modes):
            m.model.train(mode)
    return tallies
