"""``cnnlab lr-find`` and ``--lr auto``: the learning-rate range test (:mod:`cnnlab.engine.lr_finder`,
Smith 2015, arXiv:1506.01186) on the model and data a run would train.

``lr_find(model="resnet18", data=DIR)`` sets the model and data up as ``cnnlab train`` does (with
``weights``: as ``cnnlab finetune`` does: the weights loaded, a new head, the regime's frozen stages,
the backbone's lr ratio), sweeps the learning rate, writes ``lr_find.png`` with the suggestions marked
and returns them. Nothing else is written and the model is left as it was.

``train(lr="auto")`` and ``finetune(lr="auto")`` run the same test first (:func:`auto_lr`), on their
own model, optimizer settings and training images, and train at the suggestion of ``lr_rule``
(default :data:`DEFAULT_RULE`). The run's ``config.json`` records that number as ``lr`` and the rule
as ``lr_rule``; ``lr_find.png`` goes into the run folder. Because the test restores the weights and
the random generators bitwise, the run is the same as one started with that ``lr`` given explicitly.
With a feature cache (finetune's small regime) the test still runs on images through the frozen
backbone: the same head, the same numbers, slower. Under torchrun, rank 0 runs the test and every
rank trains at its suggestion.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from torch import nn

from ..config import build_config, check_choice, check_number, document
from ..engine import distributed as D
from ..engine.loop import split_output
from ..engine.lr_finder import RULES, RangeTestConfig, RangeTestResult, range_test
from ..engine.optim import build_optimizer, param_groups
from ..errors import CnnlabError
from ..utils.io import check_output_file

DEFAULT_RULE = "steepest"
__all__ = ["DEFAULT_RULE", "LRFindConfig", "LRFindResult", "auto_lr", "lr_find"]


@dataclass
class LRFindConfig(RangeTestConfig):
    """The model and data (as ``cnnlab train`` / ``finetune`` take them), the optimizer, the sweep."""

    model: str = "lenet5"
    data: str = "digits"  # as cnnlab train --data
    weights: str | None = None  # None: a new network, as train builds it; else finetune's set-up from them
    regime: str = "small"  # with weights: finetune's regime (its freeze and backbone lr ratio)
    freeze: str | None = None  # with weights: all | none | N (default: the regime's)
    frozen_bn: str = "eval"  # with weights: eval | train
    backbone_lr_mult: float | None = None  # with weights: backbone lr = lr * this (default: the regime's)
    val_split: float | None = None
    split_file: str | None = None
    in_chans: int | None = None
    input_size: int | None = None
    augment: str | None = None
    aug: list[str] = field(default_factory=list)  # augmentation preset overrides, NAME=VALUE
    dropout: float | None = None
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    wd_exclude_norm_bias: bool = False
    label_smoothing: float = 0.0
    aux_weight: float = 0.3
    device: str = "auto"  # auto | cpu | cuda
    out: str = "lr_find.png"  # the picture (loss against lr, suggestions marked)

    def check(self) -> None:
        super().check()
        check_output_file(self.out, "--out")
        self.run_config().check()

    def run_config(self):
        """The TrainConfig (no weights) or FinetuneConfig (weights) of the same settings."""
        from .finetune import FinetuneConfig
        from .train import TrainConfig

        cls = FinetuneConfig if self.weights else TrainConfig
        names = {f.name for f in fields(cls)} - {"out", "lr"}
        shared = {f.name: getattr(self, f.name) for f in fields(self) if f.name in names}
        return cls(**shared, cache=False) if self.weights else cls(**shared)


@dataclass
class LRFindResult(RangeTestResult):
    plot: Path | None = None  # lr_find.png

    def summary(self) -> str:
        lr, loss = self.minimum
        lines = [f"LR range test: {len(self.lrs)} steps from {self.lrs[0]:.3g} to {self.lrs[-1]:.3g} "
                 f"({self.stopped}); the smoothed loss is lowest, {loss:.4f}, at lr {lr:.3g}"]
        for rule, value in self.suggestions.items():
            lines.append(f"  {rule:<9} {'-' if value is None else f'{value:.3g}'}")
        if self.plot:
            lines.append(f"picture: {self.plot}")
        return "\n".join(lines)


def check_lr(lr, rule, recorded: bool) -> None:
    """``lr``: a number > 0 or "auto"; ``rule`` one of :data:`~cnnlab.engine.lr_finder.RULES`, given
    only with "auto" unless ``recorded`` (a run's config.json, where it says how lr was chosen)."""
    if rule is not None:
        check_choice("lr_rule", rule, RULES)
    if lr == "auto":
        return
    if isinstance(lr, str):
        raise CnnlabError(f"--lr must be a number > 0 or 'auto' (the LR range test), got {lr!r}")
    check_number("lr", lr, low=0, low_open=True)
    if rule is not None and not recorded:
        raise CnnlabError(f"--lr-rule {rule} applies only to --lr auto; drop --lr-rule or pass --lr auto")


def lr_find(config: LRFindConfig | dict | None = None, **overrides) -> LRFindResult:
    """The range test of the model and data ``config`` describes (see the module docstring);
    ``overrides`` are :class:`LRFindConfig` fields."""
    from .run import resolve_device

    config = build_config(LRFindConfig, config, overrides)
    config.check()
    device = resolve_device(config.device)
    run, model, data, transform = _setup(config.run_config())
    result = sweep(run, model, _with_transform(data, transform), device, range_config(run, config))
    title = f"{run.model} on {run.data}" + (f" (weights {run.weights})" if config.weights else "")
    return _finish(result, config.out, title, None)


def _setup(run):
    """(run config, resolved as the run would resolve it; model; training data; training transform)."""
    from .run import seed_everything
    from .train_setup import build_model, data_setup, open_data

    if getattr(run, "weights", None):
        from .finetune import prepare

        prep = prepare(run)
        return prep.config, prep.model, prep.splits.train, prep.transforms[1]
    splits, in_chans = open_data(run)
    seed_everything(run.seed)
    model = build_model(run, splits, in_chans)
    return run, model, splits.train, data_setup(run, splits, model).train_transform


def range_config(run, given: RangeTestConfig | None = None) -> RangeTestConfig:
    """The sweep's settings: ``given``'s, with the run's batch size, seed, workers and clipping."""
    base = given or RangeTestConfig()
    return replace(RangeTestConfig(**{f.name: getattr(base, f.name) for f in fields(RangeTestConfig)}),
                   batch_size=run.batch_size, seed=run.seed, workers=run.workers, grad_clip=run.grad_clip)


def sweep(run, model: nn.Module, data, device, settings: RangeTestConfig) -> RangeTestResult:
    """The range test with the run's optimizer, loss and (for finetune) groups and frozen BatchNorm."""
    from .. import transfer as T

    if getattr(run, "weights", None):
        groups = T.transfer_param_groups(model, 1.0, run.backbone_lr_mult, run.weight_decay,
                                         run.wd_exclude_norm_bias)
        train_mode = T.train_mode_hook(model, run.frozen_bn)
    else:
        groups, train_mode = param_groups(model, run.weight_decay, run.wd_exclude_norm_bias), None
    optimizer = build_optimizer(groups, run.optimizer, 1.0, run.weight_decay, run.momentum)
    criterion = nn.CrossEntropyLoss(label_smoothing=run.label_smoothing)

    def loss_fn(output, target):
        return split_output(output, target, criterion, run.aux_weight)[2]

    return range_test(model, optimizer, data, settings, loss_fn=loss_fn, device=device,
                      set_train_mode=train_mode)


def auto_lr(ctx, model: nn.Module, data, transform=None):
    """``ctx.config`` with ``lr`` and ``lr_rule`` set from the range test when ``lr`` is "auto" (else
    unchanged); rank 0 runs the test and writes ``lr_find.png`` into the run folder."""
    config = ctx.config
    if config.lr != "auto":
        return config
    rule = config.lr_rule or DEFAULT_RULE
    chosen = None
    if ctx.info.is_main:
        try:
            result = sweep(config, model, _with_transform(data, transform), ctx.device, range_config(config))
            chosen = result.suggest(rule)
            result = _finish(result, ctx.run_dir / "lr_find.png", f"{config.model} on {config.data}", rule)
            print(f"--lr auto: {result.summary().splitlines()[0]}\n  training at the {rule} suggestion, "
                  f"lr {chosen:.3g} ({result.plot})")
        except CnnlabError as exc:
            chosen = exc
    chosen = D.broadcast_object(chosen, ctx.info)
    if isinstance(chosen, Exception):
        raise CnnlabError(str(chosen))
    return replace(config, lr=chosen, lr_rule=rule)


def _with_transform(data, transform):
    if transform is None:
        return data
    data = copy.copy(data)
    data.transform = transform
    return data


def _finish(result: RangeTestResult, out, title: str, chosen: str | None) -> LRFindResult:
    from ..viz.lr_plot import plot_lr_find

    done = LRFindResult(**{f.name: getattr(result, f.name) for f in fields(RangeTestResult)}, plot=Path(out))
    plot_lr_find(done, out, title=title, chosen=chosen)
    return done


document(lr_find, LRFindConfig)
