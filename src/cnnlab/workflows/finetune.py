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
head trains on the stored features (:mod:`cnnlab.feature_cache`); the run folder still gets the whole
model's weights. Everything else (optimizer, schedule, run folder, resume) is ``cnnlab train``'s.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from .. import transfer as T
from ..config import apply_overrides
from ..engine import distributed as D
from ..engine.loop import Trainer
from ..engine.runfolder import RunFolder
from ..engine.state import STATE_FILE, load_state
from ..errors import CnnlabError
from ..utils.io import write_json
from ..weights import load_weights, save_weights
from .train import TrainConfig, _finish, _load_resume_state, _new_run_dir, _prepare_folder, _seed_everything
from .train_setup import build_model, open_data, resolve_device


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
    lr: float | None = None


def resolve(config: FinetuneConfig, num_stages: int) -> FinetuneConfig:
    """``config`` with the regime's values in the fields left ``None``, checked."""
    if config.regime not in REGIMES:
        raise CnnlabError(f"--regime {config.regime!r} is not one of {', '.join(REGIMES)}")
    r = REGIMES[config.regime]
    freeze = config.freeze if config.freeze is not None else r.freeze
    if str(freeze) == "half":
        freeze = str(num_stages // 2)
    freeze = str(T.parse_freeze(freeze, num_stages))
    cache = config.cache if config.cache is not None else (r.cache and freeze == "all")
    if cache and freeze != "all":
        raise CnnlabError(f"--cache needs --freeze all (the cached features are the frozen backbone's), got "
                          f"--freeze {freeze}; drop --cache or freeze all")
    out = replace(config, freeze=freeze, cache=cache, epochs=config.epochs or r.epochs, lr=config.lr or r.lr,
                  backbone_lr_mult=r.backbone_lr_mult if config.backbone_lr_mult is None else config.backbone_lr_mult)
    if out.frozen_bn not in T.FROZEN_BN_MODES:
        raise CnnlabError(f"--frozen-bn {out.frozen_bn!r} is not one of {', '.join(T.FROZEN_BN_MODES)}")
    if cache and config.ema:
        raise CnnlabError("--ema is not supported with the feature cache; drop --ema or pass --no-cache")
    if out.cache_augment < 0 or out.cache_shard_rows < 1:
        raise CnnlabError(f"--cache-augment must be >= 0 and --cache-shard-rows >= 1, got {out.cache_augment} and "
                          f"{out.cache_shard_rows}")
    out.check()
    return out


def finetune(config: FinetuneConfig | dict | None = None, **overrides):
    """Fine-tune as configured (see the module docstring); returns a :class:`TrainResult`."""
    if config is None:
        config = FinetuneConfig()
    elif isinstance(config, dict):
        config = apply_overrides(FinetuneConfig(), config)
    config = apply_overrides(config, overrides) if overrides else config
    started = time.perf_counter()
    state = None
    if config.resume:
        config, state = _resume_config(config)
    if not config.data:
        raise CnnlabError("--data is required: an image folder (class subfolders), a .csv list or cifar10:DIR ...")
    device = resolve_device(config.device)
    info = D.setup(device.type)
    try:
        result = _finetune(config, state, device, info, started)
        D.barrier(info)  # leave together (see workflows.train)
        return result
    finally:
        D.teardown()


def _resume_config(config: FinetuneConfig) -> tuple[FinetuneConfig, dict]:
    run_dir = Path(config.resume)
    cfg_file = run_dir / "config.json"
    if not cfg_file.is_file():
        raise CnnlabError(f"--resume {run_dir}: not a run folder (no config.json); give runs/<name>")
    saved = apply_overrides(FinetuneConfig(), json.loads(cfg_file.read_text()), origin="config.json")
    keep = {k: getattr(config, k) for k in ("epochs", "workers", "device", "progress") if getattr(config, k)}
    return replace(saved, **keep, resume=str(run_dir)), load_state(run_dir / STATE_FILE)


def _finetune(config: FinetuneConfig, state, device, info, started: float):
    splits, in_chans = open_data(config)
    if len(splits.classes) < 2:
        raise CnnlabError(f"{config.data} has {len(splits.classes)} class ({', '.join(splits.classes)}); "
                          "fine-tuning a classifier needs at least 2 class folders")
    _seed_everything(config.seed)  # the new head's initialisation
    model = build_model(config, splits, in_chans)
    config = resolve(config, len(model.stages))
    load_weights(model, config.weights, entry=_entry(config.model))
    T.replace_head(model, len(splits.classes))
    T.freeze_stages(model, config.freeze)
    run_dir = Path(config.resume) if config.resume else _new_run_dir(config)
    D.barrier(info)
    eval_tf, train_tf, pre = _transforms(config, model, in_chans)
    rank_device = torch.device("cuda", info.local_rank) if device.type == "cuda" else device
    if info.is_main:
        _print_header(config, model, run_dir, splits)
    folder = WholeModelFolder(run_dir, _metadata(config, splits, pre), model, quiet=not info.is_main)
    if config.cache:
        trainer, cache = _cached_trainer(config, model, splits, eval_tf, train_tf, pre, folder, info, rank_device)
    else:
        splits.train.transform, splits.val.transform = train_tf, eval_tf
        groups = T.transfer_param_groups(model, config.lr, config.backbone_lr_mult, config.weight_decay,
                                         config.wd_exclude_norm_bias)
        trainer = Trainer(model, splits.train, splits.val, config, num_classes=len(splits.classes), hooks=folder,
                          param_groups=groups, set_train_mode=T.train_mode_hook(model, config.frozen_bn),
                          info=info, device=rank_device)
        cache = None
    if state is not None:
        _load_resume_state(trainer, state, run_dir)
    else:
        _seed_everything(config.seed + info.rank)
    if info.is_main:
        _prepare_folder(run_dir, config, state is not None)
        write_json(run_dir / "transfer.json", _transfer_record(config, model, cache))
    fit = trainer.fit()
    return _finish(config, trainer, folder, splits, fit, run_dir, time.perf_counter() - started, info)


def _entry(name: str):
    from ..registry import get_entry

    return get_entry(name)


def _transforms(config: FinetuneConfig, model, in_chans: int):
    """(eval transform, train transform, preprocessing record) from the model's data config: pretrained
    weights expect their own mean/std/resize, whatever the data's statistics."""
    from ..data import build_transform, eval_transform

    cfg = model.default_cfg.with_channels(in_chans)
    size = config.input_size or cfg.input_size[-1]
    cfg = replace(cfg, input_size=(in_chans, size, size))
    from ..data.transforms import parse_aug_options

    augment, options = config.augment or "none", parse_aug_options(list(config.aug))
    eval_tf = eval_transform(cfg)
    train_tf = eval_tf if augment == "none" and not options else build_transform(
        augment, train=True, input_size=size, mean=cfg.mean, std=cfg.std, interpolation=cfg.interpolation,
        crop_pct=cfg.crop_pct, **options)
    pre = {**cfg.to_dict(), "augment": augment, "aug": list(config.aug), "cache_augment": config.cache_augment}
    return eval_tf, train_tf, pre


def _cached_trainer(config, model, splits, eval_tf, train_tf, pre, folder, info, device):
    from ..feature_cache import (
        CacheSpec,
        ExtractPlan,
        cache_features,
        dataset_fingerprint,
        open_entry,
        weights_hash,
    )

    w_hash = weights_hash(model)
    copies = config.cache_augment
    if copies and train_tf is eval_tf:
        raise CnnlabError("--cache-augment needs an augmentation preset: add --augment inception (or another)")
    if config.cache_from:
        cache = open_entry(config.cache_from)
        cache.check_matches(config.model, w_hash)
    else:
        pre = {**pre, "seed": config.seed if copies else 0}
        spec = CacheSpec(config.model, w_hash, pre, list(splits.classes),
                         {"train": dataset_fingerprint(splits.train), "val": dataset_fingerprint(splits.val)})
        plans = {"train": ExtractPlan(splits.train, train_tf if copies else eval_tf, max(1, copies), config.seed),
                 "val": ExtractPlan(splits.val, eval_tf)}
        cache = cache_features(model, plans, spec, cache_dir=config.cache_dir, batch_size=config.batch_size,
                               workers=config.workers, shard_rows=config.cache_shard_rows, device=device)
    if info.is_main:
        _print_cache(cache, copies)
    head = model.get_classifier()
    trainer = Trainer(head, cache.load("train"), cache.load("val"), config, num_classes=len(splits.classes),
                      hooks=folder, info=info, device=device)
    return trainer, cache


def _print_cache(cache, copies: int) -> None:
    m = cache.manifest
    tr, va = m["splits"]["train"], m["splits"]["val"]
    what = (f"{copies} AUGMENTED copies of each training image ({m['preprocessing']['augment']})" if copies else
            "NO augmentation: each image once, with the eval preprocessing; --cache-augment K stores K augmented "
            "copies per training image")
    print(f"features: the frozen backbone's pre-logits features, {what}")
    verb = "reused" if cache.reused else f"extracted in {cache.seconds:.1f} s"
    extra = f" ({cache.shards_reused} shard(s) kept from an interrupted run)" if cache.shards_reused else ""
    print(f"feature cache {verb}{extra}: {cache.path} ({tr['rows']} train + {va['rows']} val rows of {tr['dim']})")


def _print_header(config: FinetuneConfig, model, run_dir: Path, splits) -> None:
    lr = ("head only" if config.freeze == "all" else f"backbone lr {config.lr * config.backbone_lr_mult:.2g}")
    print(f"cnnlab finetune: {config.model} (weights {config.weights}) on {config.data} -> {run_dir}")
    print(f"regime {config.regime}: freeze {config.freeze}, frozen BN {config.frozen_bn}, head lr {config.lr:.2g}, "
          f"{lr}, feature cache {'on' if config.cache else 'off'}, {config.epochs} epochs, "
          f"{len(splits.classes)} classes, {len(splits.train)} train / {len(splits.val)} val images")
    print("parameters per part (in forward order):")
    print(T.format_report(T.parameter_report(model)))


def _metadata(config, splits, pre: dict) -> dict[str, str]:
    return {"data": config.data, "classes": json.dumps(list(splits.classes)),
            "input_size": json.dumps(list(pre["input_size"])), "mean": json.dumps(list(pre["mean"])),
            "std": json.dumps(list(pre["std"])), "weights": str(config.weights)}


def _transfer_record(config, model, cache) -> dict:
    rows = [asdict(r) for r in T.parameter_report(model)]
    out = {"regime": config.regime, "freeze": config.freeze, "frozen_bn": config.frozen_bn,
           "backbone_lr_mult": config.backbone_lr_mult, "weights": config.weights, "parameters": rows}
    if cache is not None:
        out["cache"] = {"path": str(cache.path), "reused": cache.reused, "extract_seconds": cache.seconds}
    return out


class WholeModelFolder(RunFolder):
    """A run folder that always saves the whole model, also when the trainer trains only its head on
    cached features (the head module is the model's own classifier, so it is always up to date)."""

    def __init__(self, path: Path, metadata: dict[str, str], model, quiet: bool = False) -> None:
        super().__init__(path, metadata, quiet)
        self.model = model

    def _weights_model(self, trainer):
        return trainer.ema.module if trainer.ema else self.model

    def checkpoint(self, trainer, state: dict, reason: str) -> None:
        from ..engine.state import save_state

        save_weights(self._weights_model(trainer), self.file("last.safetensors"),
                     {**self.metadata, "epoch": state["epoch"], "step": state["step"]})
        save_state(self.file(STATE_FILE), state)
        self.last_checkpoint = (state["step"], reason)

    def new_best(self, trainer, row: dict) -> None:
        save_weights(self._weights_model(trainer), self.file("best.safetensors"),
                     {**self.metadata, "epoch": row["epoch"], "val_top1": f"{row['val_top1']:.4f}"})
