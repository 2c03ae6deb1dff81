"""The training loop: :func:`fit` (and the :class:`Trainer` behind it).

``fit(model, train_data, val_data, config, hooks=..., param_groups=..., set_train_mode=...)`` trains
``model`` on a Dataset of ``(input, label)`` pairs and evaluates it on another after every epoch. It is
what ``cnnlab train`` runs and is meant for reuse (transfer learning, heads on cached features):

* ``param_groups``: optimizer groups (dicts with ``params`` and optionally ``lr``, ``weight_decay``,
  ``l1``), e.g. a lower ``lr`` for a pretrained backbone. Default: every parameter with
  ``requires_grad`` (frozen parameters are never given to the optimizer), split for
  ``wd_exclude_norm_bias``. A group's ``lr`` is its base rate; the schedule multiplies every group.
* ``set_train_mode(model)``: called at the start of every epoch instead of ``model.train()``; e.g. put
  the model in train mode and the BatchNorm layers of the frozen part back in eval mode.
* ``hooks``: a :class:`Hooks` receiving checkpoints (rank 0 only), epoch rows and the best model.
* inputs can be anything a model takes (image batches, precomputed feature tensors).

One optimizer step is ``accum_steps`` batches. Exact resume: ``trainer.state_dict()`` after a step is
everything needed (weights, optimizer, schedule, scaler, RNG states, position); ``load_state_dict`` of
it in a fresh process gives bitwise the same continuation on CPU (see :mod:`cnnlab.engine.loading`).
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm import tqdm

from ..errors import CnnlabError
from . import distributed as D
from .ema import ModelEma
from .evaluate import EvalResult, evaluate
from .fitconfig import AMP_DTYPES, FitConfig
from .loading import EpochIndices, SeededSamples, iterate, make_loader
from .metrics import RunningStats, topk_correct
from .optim import build_optimizer, build_schedule, l1_penalty, param_groups
from .state import rng_state, set_rng_state


class NonFiniteLoss(CnnlabError):
    """The loss became NaN or infinite; no update was made from it."""


class Hooks:
    """Callbacks of :class:`Trainer`; the defaults do nothing. ``checkpoint`` runs on rank 0 only."""

    def checkpoint(self, trainer: Trainer, state: dict, reason: str) -> None: ...

    def epoch_end(self, trainer: Trainer, row: dict, result: EvalResult) -> None: ...

    def new_best(self, trainer: Trainer, row: dict) -> None: ...


@dataclass
class FitResult:
    history: list[dict]
    best: dict = field(default_factory=dict)  # the row of the best validation top-1
    stopped: str = "completed"  # completed | early-stop | interrupted
    step: int = 0


def fit(model: nn.Module, train_data, val_data, config: FitConfig, **kwargs) -> FitResult:
    """Train ``model``; see the module docstring for the keyword arguments of :class:`Trainer`."""
    return Trainer(model, train_data, val_data, config, **kwargs).fit()


def split_output(out, target, criterion, aux_weight: float):
    """(main logits, main loss, objective): the objective adds ``aux_weight`` times each aux loss."""
    if isinstance(out, tuple | list):
        main, *aux = out
        loss = criterion(main, target)
        return main, loss, loss + aux_weight * sum(criterion(a, target) for a in aux)
    loss = criterion(out, target)
    return out, loss, loss


class Trainer:
    """State and steps of a run; :meth:`fit` is the loop (see the module docstring)."""

    def __init__(self, model: nn.Module, train_data, val_data, config: FitConfig, *, num_classes: int,
                 hooks: Hooks | None = None, param_groups: list[dict] | None = None,
                 set_train_mode=None, info: D.DistInfo | None = None, device: torch.device | None = None):
        self.config, self.hooks, self.info = config, hooks or Hooks(), info or D.DistInfo()
        self.device = device or torch.device("cpu")
        self.num_classes = num_classes
        self.model = model.to(self.device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.set_train_mode = set_train_mode or (lambda m: m.train())
        self.train_data, self.val_data = SeededSamples(train_data, config.seed), val_data
        self.sampler = D.ResumableSampler(train_data, self.info, shuffle=True, seed=config.seed,
                                          drop_last=False)
        self.batches_per_epoch = self._batches_per_epoch()
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / config.accum_steps)
        self._build_optimization(param_groups)
        self.ema = ModelEma(self.model, config.ema_decay) if config.ema else None
        self.forward_model = self._wrap(self.model)
        self.epoch = self.batch_in_epoch = self.step = 0
        self.epoch_sums, self.epoch_seconds, self.history = RunningStats(), 0.0, []
        self.best: dict = {}
        self.bad_epochs = 0
        self._stop_requested = False
        self._loader = None

    # -- set-up -------------------------------------------------------------------------------------
    def _batches_per_epoch(self) -> int:
        share, bs = self.sampler.num_samples, self.config.batch_size
        self.drop_last = share > bs  # a last batch of 1 would break BatchNorm; drop the remainder
        return share // bs if self.drop_last else 1

    def _build_optimization(self, groups) -> None:
        c = self.config
        groups = (
            groups if groups is not None else param_groups(self.model, c.weight_decay, c.wd_exclude_norm_bias)
        )
        self.optimizer = build_optimizer(groups, c.optimizer, c.lr, c.weight_decay, c.momentum)
        total = c.epochs * self.steps_per_epoch
        warmup = round(c.warmup * self.steps_per_epoch)
        step_size = max(1, round(c.step_size * self.steps_per_epoch)) if c.step_size is not None else 0
        self.scheduler = build_schedule(self.optimizer, c.schedule, total, warmup, step_size, c.gamma)
        self.amp_dtype = AMP_DTYPES[c.amp]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=c.amp == "fp16")
        self.criterion = nn.CrossEntropyLoss(label_smoothing=c.label_smoothing)

    def _wrap(self, model: nn.Module) -> nn.Module:
        if self.info.enabled:
            if self.config.sync_bn:
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
                self.model = model
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        if self.config.compile:
            model = torch.compile(model)
        return model

    # -- state --------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything to continue exactly (a collective in DDP: the RNG states of every rank)."""
        return {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema else {},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": D.gather_objects(rng_state(), self.info),
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "step": self.step,
            "world_size": self.info.world_size,
            "epoch_sums": D.gather_objects(self.epoch_sums.state(), self.info),
            "epoch_seconds": self.epoch_seconds,
            "history": self.history,
            "best": self.best,
            "bad_epochs": self.bad_epochs,
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        if self.ema and state["ema"]:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self._apply_schedule()
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        for key in ("epoch", "batch_in_epoch", "step", "epoch_seconds", "history", "best", "bad_epochs"):
            setattr(self, key, state[key])
        self.epoch_sums = _rank_sums(state["epoch_sums"], self.info)
        rngs = state["rng"]
        if len(rngs) == self.info.world_size:  # another world size: keep the fresh seeds
            set_rng_state(rngs[self.info.rank])

    def _apply_schedule(self) -> None:
        """Set each group's lr from this run's schedule at the restored step. The optimizer state holds
        the lr of the run that saved it; after ``--epochs`` changed on resume (a longer schedule), the
        first step would otherwise use the old schedule's value (0 at the end of a cosine run). With
        an unchanged schedule this is the same value, computed the same way (a bitwise no-op)."""
        sched = self.scheduler
        for group, base, factor in zip(self.optimizer.param_groups, sched.base_lrs, sched.lr_lambdas):
            group["lr"] = base * factor(sched.last_epoch)
        sched._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _checkpoint(self, reason: str) -> None:
        state = self.state_dict()
        if self.info.is_main:
            self.hooks.checkpoint(self, state, reason)
        D.barrier(self.info)

    # -- the loop -----------------------------------------------------------------------------------
    def fit(self) -> FitResult:
        with _sigint_requests_stop(self):
            stopped = self._run_epochs()
        return FitResult(self.history, self.best, stopped, self.step)

    def _run_epochs(self) -> str:
        while self.epoch < self.config.epochs:
            if not self._train_epoch():
                self._checkpoint("interrupt")
                return "interrupted"
            self._end_epoch()
            if self.config.early_stop and self.bad_epochs >= self.config.early_stop:
                return "early-stop"
            if self._stop_now():
                return "interrupted"
        return "completed"

    def _stop_now(self) -> bool:
        return D.any_rank(self._stop_requested, self.info, self.device)

    def _train_epoch(self) -> bool:
        """Train the rest of the current epoch; False when a stop was requested (after a step)."""
        c = self.config
        self.set_train_mode(self.model)
        self.sampler.set_epoch(self.epoch, skip=self.batch_in_epoch * c.batch_size)
        it = iterate(self._train_loader())
        bar = tqdm(total=self.batches_per_epoch, initial=self.batch_in_epoch, desc=f"epoch {self.epoch + 1}",
                   leave=False, disable=not (c.progress and self.info.is_main and sys.stderr.isatty()),
                   unit="batch", dynamic_ncols=True)
        start = time.perf_counter()
        with bar:
            for b in range(self.batch_in_epoch, self.batches_per_epoch):
                x, y = next(it)
                last = (b + 1) % c.accum_steps == 0 or b + 1 == self.batches_per_epoch
                loss = self._micro_step(x, y, sync=last)
                self.batch_in_epoch = b + 1
                if not bar.disable:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                if last:
                    self._optimizer_step()
                    self.epoch_seconds += time.perf_counter() - start
                    start = time.perf_counter()
                    if self._stop_now():
                        return False
                    if c.checkpoint_every and self.step % c.checkpoint_every == 0:
                        self._checkpoint("step")
        self.epoch_seconds += time.perf_counter() - start
        return True

    def _train_loader(self):
        """One loader for the whole run (worker processes persist); the sampler sets each epoch."""
        if self._loader is None:
            c = self.config
            keys = EpochIndices(self.sampler, len(self.train_data))
            self._loader = make_loader(
                self.train_data,
                batch_size=c.batch_size,
                sampler=keys,
                workers=c.workers,
                seed=c.seed,
                drop_last=self.drop_last,
                device=self.device.type,
            )
        return self._loader

    def _micro_step(self, x, y, sync: bool) -> float:
        c = self.config
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        if c.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            out = self.forward_model(x)
            logits, loss, objective = split_output(out, y, self.criterion, c.aux_weight)
        value = loss.item()
        if not math.isfinite(value):
            raise NonFiniteLoss(f"the loss became {value} at step {self.step + 1} (epoch {self.epoch + 1}, "
                                f"batch {self.batch_in_epoch + 1}); no update was made from it")
        if c.l1:
            objective = objective + c.l1 * l1_penalty(self.optimizer)
        no_sync = getattr(self.forward_model, "no_sync", None)
        ctx = no_sync() if (no_sync is not None and not sync) else _null()
        with ctx:
            self.scaler.scale(objective / c.accum_steps).backward()
        c1, c5 = topk_correct(logits.detach().float(), y)
        self.epoch_sums.add(value * len(y), c1, c5, len(y))
        return value

    def _optimizer_step(self) -> None:
        c = self.config
        if c.grad_clip:
            self.scaler.unscale_(self.optimizer)
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, c.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1
        if self.ema:
            self.ema.update(self.model)

    def _end_epoch(self) -> EvalResult:
        c = self.config
        eval_model = self.ema.module if self.ema else self.model
        D.broadcast_buffers(eval_model, self.info)  # evaluate with the statistics that are saved (rank 0's)
        result = evaluate(eval_model, self.val_data, batch_size=c.batch_size, num_classes=self.num_classes,
                          device=self.device, info=self.info, amp_dtype=self.amp_dtype,
                          channels_last=c.channels_last, workers=c.workers)
        row = self._epoch_row(result)
        self.history.append(row)
        improved = not self.best or row["val_top1"] > self.best["val_top1"]
        self.bad_epochs = 0 if improved else self.bad_epochs + 1
        if improved:
            self.best = {**row, "confusion": result.confusion.tolist()}
        self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        self.epoch_sums, self.epoch_seconds = RunningStats(), 0.0
        if self.info.is_main:
            if improved:
                self.hooks.new_best(self, row)
            self.hooks.epoch_end(self, row, result)
        self._checkpoint("epoch")
        return result

    def _epoch_row(self, result: EvalResult) -> dict:
        sums = torch.tensor(self.epoch_sums.state(), dtype=torch.float64, device=self.device)
        train = RunningStats(*D.all_reduce_sum(sums, self.info).tolist()).summary()
        seconds = self.epoch_seconds
        images = self.epoch_sums.count * self.info.world_size
        return {"epoch": self.epoch + 1, "step": self.step, "train_loss": train["loss"],
                "train_top1": train["top1"], "train_top5": train["top5"], "val_loss": result.loss,
                "val_top1": result.top1, "val_top5": result.top5, "lr": self.optimizer.param_groups[0]["lr"],
                "seconds": seconds, "images_per_s": images / seconds if seconds > 0 else 0.0}


def _rank_sums(saved: list, info: D.DistInfo) -> RunningStats:
    """This rank's running sums from a state: one list per rank (each rank sums its own share of the
    epoch), or one flat list (older state files). Under another world size rank 0 takes the totals."""
    if not saved or not isinstance(saved[0], list | tuple):
        return RunningStats(*saved)
    if len(saved) == info.world_size:
        return RunningStats(*saved[info.rank])
    if info.rank != 0:
        return RunningStats()
    return RunningStats(*(sum(column) for column in zip(*saved)))


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


class _sigint_requests_stop:
    """While fitting, the first Ctrl-C asks for a checkpoint and a clean stop; a second one aborts."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer, self.previous = trainer, None

    def _handler(self, signum, frame) -> None:
        if self.trainer._stop_requested:
            raise KeyboardInterrupt
        self.trainer._stop_requested = True
        print("\ncnnlab: stopping after this step (Ctrl-C again to abort without a checkpoint)",
              file=sys.stderr, flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False
