"""The training engine: the loop (:func:`fit` / :class:`Trainer`), evaluation, optimizers and schedules,
the training state file, DDP helpers and the weight EMA. Used by ``cnnlab train`` and reusable as is
(transfer learning: ``param_groups`` and ``set_train_mode`` of :func:`fit`)."""

from .evaluate import EvalResult, evaluate
from .fitconfig import FitConfig
from .loop import FitResult, Hooks, NonFiniteLoss, Trainer, fit, split_output
from .optim import OPTIMIZERS, SCHEDULES, build_optimizer, build_schedule, l1_penalty, param_groups
from .state import load_state, save_state

__all__ = [
    "EvalResult",
    "FitConfig",
    "FitResult",
    "Hooks",
    "NonFiniteLoss",
    "OPTIMIZERS",
    "SCHEDULES",
    "Trainer",
    "split_output",
    "build_optimizer",
    "build_schedule",
    "evaluate",
    "fit",
    "l1_penalty",
    "load_state",
    "param_groups",
    "save_state",
]
