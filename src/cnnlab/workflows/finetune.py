"""``cnnlab finetune``: start from trained weights, replace the head, freeze what the regime says, train.

``finetune(FinetuneConfig(data=DIR, val_split=0.2))`` (or ``cnnlab.finetune(data=DIR, ...)``) does what
the CLI does. The regimes are presets (:data:`REGIMES`); any flag given explicitly wins over them:

=========  ==============  ===============  =========  ==============================================
regime     freeze          backbone lr      cache      for
=========  ==============  ===============  =========  ==============================================
small      all (head only)  -                on         little data: train a linear head on features
medium     early half       0.1 x lr         off        more data: fine-tune the later stages too
large      none             0.1 x lr         off        a lot of data: fine-tune everything
=========  ==============  ===============  =========  ==============================================

The head (``classifier_path``) is always replaced by a zero-initialised one with the dataset's classes
(:func:`cnnlab.transfer.replace_head`). With the
cache on, the frozen backbone runs once over un-augmented training and validation images (eval
preprocessing; ``cache_augment=K`` stores K augmented copies of each training image instead) and the
head trains on the stored features (:mod:`cnnlab.transfer.feature_cache`); the run folder still gets the
whole model's weights. Everything else (optimizer, schedule, the run folder, the lock, resume with its one
policy) is ``cnnlab train``'s (:mod:`cnnlab.workflows.run`). The weights' class names are replaced by the
data's and the weights' preprocessing (size, mean/std, interpolation, crop) is kept and saved with the
run's weights, so a fine-tuned checkpoint describes itself. A model whose head has no parameters
(LeNet-5's fixed RBF codes) keeps the layers after its last stage trainable instead, without a cache.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .. import transfer as T
from ..config import build_config, check_choice, check_number, document
from ..engine import distributed as D
from ..engine.loop import Trainer
from ..engine.runfolder import SKIPPED_LOG, RunFolder
from ..errors import CnnlabError
from ..registry import get_entry
from ..utils.io import check_output_dir, write_json
from ..utils.threads import model_macs, set_threads
from ..weights import describe_weights, load_weights, read_weights, weights_metadata
from . import run as R
from .lr_find import auto_lr
from .run import RunContext, TrainResult
from .train import TrainConfig
from .train_setup import build_model, check_input_size, open_data


@dataclass(frozen=True)
class Regime:
    freeze: str  # all | none | half (the first len(stages) // 2 stages)
    cache: bool
    backbone_lr_mult: float
    epochs: int
    lr: float  # the head's; the backbone gets lr * backbone_lr_mult


REGIMES = {
    "small": Regime("all", True, 0.0, 30, 1e-3),
    "medium": Regime("half", False, 0.1, 10, 1e-3),
    "large": Regime("none", False, 0.1, 10, 1e-3),
}


@dataclass
class FinetuneConfig(TrainConfig):
    """TrainConfig plus the transfer settings; ``None`` means "from the regime"."""

    model: str = "efficientnet_lite0"
    weights: str = "imagenet"  # a pretrained tag, a torchvision/timm file, a cnnlab checkpoint or run folder
    data: str = ""
    regime: str = "small"  # small | medium | large (see REGIMES)
    freeze: str | None = None  # all | none | N (the first N stages)
    frozen_bn: str = "eval"  # eval: frozen BatchNorm keeps its running statistics | train
    backbone_lr_mult: float | None = None  # backbone lr = lr * this
    cache: bool | None = None  # train the head on cached features (needs freeze = all)
    cache_dir: str | None = None  # default $CNNLAB_CACHE/features (~/.cache/cnnlab/features)
    cache_from: str | None = None  # a cache entry folder to use (checked against the model and weights)
    cache_augment: int = 0  # augmented copies per training image in the cache (0: un-augmented)
    cache_shard_rows: int = 2048  # feature rows per cache shard file
    epochs: int | None = None
    lr: float | str | None = None

    def check(self) -> None:
        """The transfer settings, then train's checks on the regime's values (epochs, lr)."""
        check_choice("regime", self.regime, REGIMES)
        check_choice("frozen_bn", self.frozen_bn, T.FROZEN_BN_MODES)
        check_number("backbone_lr_mult", self.backbone_lr_mult, low=0, none=True)
        check_number("cache_augment", self.cache_augment, low=0, integer=True)
        check_number("cache_shard_rows", self.cache_shard_rows, low=1, integer=True)
        if not isinstance(self.weights, str) or not self.weights:
            raise CnnlabError(
                "--weights is required: a pretrained tag (imagenet), a checkpoint file or a run folder"
            )
        if self.cache_dir is not None:
            check_output_dir(self.cache_dir, "--cache-dir")
        if self.cache and self.ema:
            raise CnnlabError("--ema is not supported with the feature cache; drop --ema or pass --no-cache")
        r = REGIMES[self.regime]
        TrainConfig.check(replace(self, epochs=self.epochs or r.epochs, lr=self.lr or r.lr))


def resolve(config: FinetuneConfig, model) -> FinetuneConfig:
    """``config`` with the regime's values in the fields left ``None``, checked against ``model``."""
    config.check()
    r, stages = REGIMES[config.regime], len(model.stages)
    freeze = config.freeze if config.freeze is not None else r.freeze
    freeze = str(T.parse_freeze(str(stages // 2) if str(freeze) == "half" else freeze, stages))
    head = T.has_trainable_head(model)
    cache = config.cache if config.cache is not None else (r.cache and freeze == "all" and head)
    if cache and freeze != "all":
        raise CnnlabError(f"--cache needs --freeze all (the cached features are the frozen backbone's), got "
                          f"--freeze {freeze}; drop --cache or freeze all")
    if cache and not head:
        raise CnnlabError(f"{config.model}'s classifier has no parameters to train on cached features; "
                          "pass --no-cache")
    out = replace(
        config,
        freeze=freeze,
        cache=cache,
        epochs=config.epochs or r.epochs,
        lr=config.lr or r.lr,
        backbone_lr_mult=r.backbone_lr_mult if config.backbone_lr_mult is None else config.backbone_lr_mult,
    )
    out.check()
    return out


def finetune(config: FinetuneConfig | dict | None = None, *, explicit: set[str] | None = None,
             **overrides) -> TrainResult:
    """Fine-tune as configured (see the module docstring); ``overrides`` are FinetuneConfig fields.
    ``explicit``: the keys the user set (for the resume check, as in ``train``)."""
    return R.run_session(build_config(FinetuneConfig, config, overrides), explicit, "finetune", _finetune)


def _finetune(ctx: RunContext) -> TrainResult:
    prep = prepare(ctx.config)
    ctx.config = config = prep.config
    splits, model, ckpt, pre, (eval_tf, train_tf) = (
        prep.splits,
        prep.model,
        prep.ckpt,
        prep.pre,
        prep.transforms,
    )
    macs = model_macs(model, pre.input_size) or 0
    set_threads((1 if config.cache else 3) * config.batch_size * macs or None)  # extraction is forward only
    R.claim_or_lock(ctx)
    with R.guarded(ctx):
        config = ctx.config = auto_lr(ctx, model, splits.train, train_tf)  # --lr auto (see workflows.lr_find)
        if ctx.info.is_main:
            _print_header(config, model, ctx.run_dir, splits)
        meta = weights_metadata(splits.classes, pre, data=config.data, weights=ckpt.source)
        folder = RunFolder(ctx.run_dir, meta, quiet=not ctx.info.is_main, clock=ctx.elapsed, model=model)
        if config.cache:
            trainer, cache = _cached_trainer(ctx, model, splits, (eval_tf, train_tf, pre), folder)
        else:
            splits.train.transform, splits.val.transform = train_tf, eval_tf
            trainer, cache = _trainer(ctx, model, splits, folder), None
        R.start(ctx, trainer)
        if ctx.info.is_main:
            write_json(ctx.run_dir / "transfer.json", _transfer_record(config, model, cache))
        D.barrier(ctx.info)
        splits.report.attach_log(ctx.run_dir / SKIPPED_LOG, write_existing=ctx.info.is_main)
        fit = R.fit_or_explain(trainer, folder, ctx)
        return R.finish(ctx, trainer, folder, splits, fit, "finetune")


@dataclass
class Prepared:
    """What a fine-tuning run (and ``lr_find`` of one) starts from."""

    config: FinetuneConfig  # with the weights' channels and the regime's values
    splits: object
    model: object  # the weights loaded, a new head, the frozen part frozen
    ckpt: object  # the weights' Checkpoint
    pre: object  # the evaluation preprocessing (the weights' own)
    transforms: tuple  # (eval transform, train transform)


def prepare(config: FinetuneConfig) -> Prepared:
    """Read the weights (once: they say the channels and the preprocessing), open the data, build the
    model, load the weights, replace the head and freeze what the regime says."""
    entry = get_entry(config.model)
    ckpt = read_weights(config.weights, entry)
    info = describe_weights(ckpt, entry)
    if config.in_chans is None and info.in_chans:
        config = replace(config, in_chans=info.in_chans)
    splits, in_chans = open_data(config)
    R.seed_everything(config.seed)  # the new head's initialisation
    model = build_model(config, splits, in_chans)
    config = resolve(config, model)
    load_weights(model, ckpt, entry=entry)  # with the weights' own preprocessing (size, mean/std, crop)
    T.replace_head(model, len(splits.classes))
    T.freeze_stages(model, config.freeze)
    pre = preprocessing(config, model, in_chans)
    return Prepared(config, splits, model, ckpt, pre, _transforms(config, pre))


def _trainer(ctx: RunContext, model, splits, folder) -> Trainer:
    """The trainer of the whole model: discriminative learning rates, frozen BatchNorm kept in eval."""
    c = ctx.config
    groups = T.transfer_param_groups(model, c.lr, c.backbone_lr_mult, c.weight_decay, c.wd_exclude_norm_bias)
    return Trainer(model, splits.train, splits.val, c, num_classes=len(splits.classes), hooks=folder,
                   param_groups=groups, info=ctx.info, device=ctx.device,
                   set_train_mode=T.train_mode_hook(model, c.frozen_bn))


def preprocessing(config: FinetuneConfig, model, in_chans: int):
    """The weights' own evaluation preprocessing (their mean/std/resize, whatever the data's
    statistics) for ``in_chans`` channels at ``--input-size`` (default: the weights' size)."""
    cfg = model.default_cfg.with_channels(in_chans)
    size = config.input_size or cfg.input_size[-1]
    check_input_size(model, config.model, in_chans, size)
    return replace(cfg, input_size=(in_chans, size, size))


def _transforms(config: FinetuneConfig, pre):
    """(eval transform, train transform): training images augmented only when asked to."""
    from ..data import build_transform, eval_transform
    from ..data.transforms import parse_aug_options

    augment, options = config.augment or "none", parse_aug_options(list(config.aug))
    eval_tf = eval_transform(pre)
    train_tf = eval_tf if augment == "none" and not options else build_transform(
        augment, train=True, input_size=pre.input_size[-1], mean=pre.mean, std=pre.std,
        interpolation=pre.interpolation, crop_pct=pre.crop_pct, **options)
    return eval_tf, train_tf


def _cached_trainer(ctx: RunContext, model, splits, transforms, folder):
    from ..transfer.feature_cache import (
        CacheSpec,
        ExtractPlan,
        cache_features,
        dataset_fingerprint,
        open_entry,
        weights_hash,
    )

    config, (eval_tf, train_tf, pre) = ctx.config, transforms
    w_hash, copies = weights_hash(model), config.cache_augment
    if copies and train_tf is eval_tf:
        raise CnnlabError(
            "--cache-augment needs an augmentation preset: add --augment inception (or another)"
        )
    if config.cache_from:
        cache = open_entry(config.cache_from)
        cache.check_matches(config.model, w_hash)
    else:
        record = {**pre.to_dict(), "augment": config.augment or "none", "aug": list(config.aug),
                  "cache_augment": copies, "seed": config.seed if copies else 0}
        spec = CacheSpec(config.model, w_hash, record, list(splits.classes),
                         {"train": dataset_fingerprint(splits.train), "val": dataset_fingerprint(splits.val)})
        plans = {
            "train": ExtractPlan(splits.train, train_tf if copies else eval_tf, max(1, copies), config.seed),
            "val": ExtractPlan(splits.val, eval_tf),
        }
        cache = cache_features(model, plans, spec, cache_dir=config.cache_dir, batch_size=config.batch_size,
                               workers=config.workers, shard_rows=config.cache_shard_rows, device=ctx.device)
    if ctx.info.is_main:
        _print_cache(cache, copies)
    trainer = Trainer(model.get_classifier(), cache.load("train"), cache.load("val"), config,
                      num_classes=len(splits.classes), hooks=folder, info=ctx.info, device=ctx.device)
    return trainer, cache


def _print_cache(cache, copies: int) -> None:
    m = cache.manifest
    tr, va = m["splits"]["train"], m["splits"]["val"]
    what = (
        f"{copies} AUGMENTED copies of each training image ({m['preprocessing']['augment']})"
        if copies
        else "NO augmentation: each image once, with the eval preprocessing; --cache-augment K stores K "
             "augmented "
        "copies per training image"
    )
    print(f"features: the frozen backbone's pre-logits features, {what}")
    verb = "reused" if cache.reused else f"extracted in {cache.seconds:.1f} s"
    extra = f" ({cache.shards_reused} shard(s) kept from an interrupted run)" if cache.shards_reused else ""
    print(
        f"feature cache {verb}{extra}: {cache.path} ({tr['rows']} train + {va['rows']} val rows of "
        f"{tr['dim']})"
    )


def _print_header(config: FinetuneConfig, model, run_dir: Path, splits) -> None:
    lr = ("head only" if config.freeze == "all" else f"backbone lr {config.lr * config.backbone_lr_mult:.2g}")
    print(f"cnnlab finetune: {config.model} (weights {config.weights}) on {config.data} -> {run_dir}")
    print(
        f"regime {config.regime}: freeze {config.freeze}, frozen BN {config.frozen_bn}, head lr "
        f"{config.lr:.2g}, "
        f"{lr}, feature cache {'on' if config.cache else 'off'}, {config.epochs} epochs, "
        f"{len(splits.classes)} classes, {len(splits.train)} train / {len(splits.val)} val images"
    )
    print("parameters per part (in forward order):")
    print(T.format_report(T.parameter_report(model)))


def _transfer_record(config, model, cache) -> dict:
    rows = [asdict(r) for r in T.parameter_report(model)]
    out = {"regime": config.regime, "freeze": config.freeze, "frozen_bn": config.frozen_bn,
           "backbone_lr_mult": config.backbone_lr_mult, "weights": config.weights, "parameters": rows}
    if cache is not None:
        out["cache"] = {"path": str(cache.path), "reused": cache.reused, "extract_seconds": cache.seconds}
    return out


document(finetune, FinetuneConfig)
