"""The NumPy engine's workflows: ``scratch_train`` fits the scratch LeNet-5 to the built-in digits,
``scratch_gradcheck`` checks every scratch layer's gradients numerically.

``scratch_train`` uses scikit-learn's built-in 8x8 digits (1,797 images, bundled with scikit-learn, no
download), upsampled bilinearly to 32x32, with a seeded 80/20 train/validation split normalised by the
training split's mean and standard deviation. The data is prepared here (numpy arrays), so
:mod:`cnnlab.scratch` itself never sees anything but numpy. NumPy's BLAS runs on one thread (the
engine's matrices are small; more threads only add waiting on a busy machine: see docs/train.md).
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import CnnlabError

# Default learning rate per optimizer (units: step size per unit gradient).
DEFAULT_LR = {"gd": 0.5, "sgd": 0.05, "momentum": 0.02, "nesterov": 0.02, "adagrad": 0.02,
              "rmsprop": 1e-3, "adam": 2e-3, "adamw": 2e-3}


# The per-epoch table, in the main trainer's layout: (header, header format, value format).
TABLE = (
    ("epoch", "{:>5}", "{:>5d}"),
    ("train_loss", "{:>10}", "{:>10.4f}"),
    ("train_top1", "{:>10}", "{:>10.2f}"),
    ("val_loss", "{:>8}", "{:>8.4f}"),
    ("val_top1", "{:>8}", "{:>8.2f}"),
    ("sec", "{:>7}", "{:>7.1f}"),
    ("img/s", "{:>8}", "{:>8.0f}"),
)
ROW_FIELDS = ("epoch", "train_loss", "train_top1", "val_loss", "val_top1", "seconds", "images_per_s")


@dataclass(frozen=True)
class ScratchTrainConfig:
    epochs: int = 12
    batch_size: int = 32  # images per step
    optimizer: str = "adam"
    lr: float | None = None  # None: DEFAULT_LR[optimizer]
    weight_decay: float = 0.0  # the optimizer's (L2 folded into g; decoupled for adamw)
    l1: float = 0.0  # L1 penalty strength on weights
    l2: float = 0.0  # L2 penalty strength on weights, R = l2 / 2 sum w^2
    val_fraction: float = 0.2
    seed: int = 0
    progress: bool = True

    def validate(self) -> None:
        from ..scratch.optim import OPTIMIZERS

        checks = (
            (self.epochs >= 1, f"--epochs {self.epochs} must be at least 1"),
            (self.batch_size >= 1, f"--batch-size {self.batch_size} must be at least 1"),
            (
                self.optimizer in OPTIMIZERS,
                f"--optimizer {self.optimizer!r} is unknown; pick one of {sorted(OPTIMIZERS)}",
            ),
            (self.lr is None or self.lr > 0, f"--lr {self.lr} must be positive"),
            (0 < self.val_fraction < 1, f"--val-fraction {self.val_fraction} must be between 0 and 1"),
            (min(self.weight_decay, self.l1, self.l2) >= 0, "--weight-decay, --l1 and --l2 must be >= 0"),
        )
        for ok, message in checks:
            if not ok:
                raise CnnlabError(message)


def bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of 1-D bilinear resampling with half-pixel centres (align_corners=False)."""
    src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(src).astype(int)
    hi, frac = np.minimum(lo + 1, n_in - 1), src - lo
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), lo), 1 - frac)
    np.add.at(m, (np.arange(n_out), hi), frac)
    return m


def load_digits_32(val_fraction: float = 0.2, seed: int = 0, size: int = 32):
    """scikit-learn's digits as :class:`cnnlab.scratch.Arrays` of float32 (N, 1, size, size) images."""
    from sklearn.datasets import load_digits

    from ..scratch.train import Arrays

    digits = load_digits()
    images = digits.images / 16.0  # pixel values 0..16 -> 0..1
    a = bilinear_matrix(images.shape[1], size)
    big = (a @ images @ a.T)[:, None]  # separable: rows, then columns
    order = np.random.default_rng(seed).permutation(len(big))
    n_val = int(round(len(big) * val_fraction))
    val, train = order[:n_val], order[n_val:]
    mean, std = big[train].mean(), big[train].std()
    norm = ((big - mean) / std).astype(np.float32)
    return Arrays(norm[train], digits.target[train], norm[val], digits.target[val])


def scratch_train(cfg: ScratchTrainConfig | None = None, out=sys.stdout, metrics: str | None = None):
    """Train the scratch LeNet-5 on the digits, printing a per-epoch table; returns the history.
    ``metrics``: also write the config and per-epoch figures to this JSON file."""
    from ..utils.threads import blas_threads

    cfg = cfg or ScratchTrainConfig()
    cfg.validate()
    if metrics:
        from ..utils.io import check_output_file

        check_output_file(metrics, "--metrics")
    with blas_threads(1):
        history = _train_digits(cfg, out)
    if metrics:
        from ..utils.io import write_json

        write_json(metrics, {"config": asdict(cfg), "epochs": [asdict(s) for s in history]})
    return history


def _train_digits(cfg: ScratchTrainConfig, out):
    from ..scratch import OPTIMIZERS, L1Penalty, L2Penalty, fit, lenet5

    data = load_digits_32(cfg.val_fraction, cfg.seed)
    model = lenet5(num_classes=10, in_chans=1, seed=cfg.seed)
    opt = OPTIMIZERS[cfg.optimizer](model.params(), lr=cfg.lr or DEFAULT_LR[cfg.optimizer],
                                    weight_decay=cfg.weight_decay)
    penalties = [
        p for p in (L1Penalty(cfg.l1) if cfg.l1 else None, L2Penalty(cfg.l2) if cfg.l2 else None) if p
    ]
    print(f"scratch LeNet-5: {model.num_params():,} params, {model.mac_count((1, 32, 32)):,} MACs per "
          f"1x32x32 image; digits {len(data.x_train)} train / {len(data.x_val)} val; "
          f"{cfg.optimizer} lr {opt.lr:g}", file=out)
    print(" ".join(fmt.format(name) for name, fmt, _ in TABLE), file=out)

    def row(s) -> None:
        print(" ".join(fmt.format(getattr(s, key)) for key, (_, _, fmt) in zip(ROW_FIELDS, TABLE)),
              file=out, flush=True)

    history = fit(model, opt, data, cfg.epochs, cfg.batch_size, cfg.seed,
                  penalty=(lambda ws: sum(p(ws) for p in penalties)) if penalties else None,
                  progress=_progress_bar() if cfg.progress else None, on_epoch=row)
    best = max(history, key=lambda s: s.val_top1)
    print(
        f"best val top-1 {best.val_top1:.2f}% (epoch {best.epoch}), {sum(s.seconds for s in history):.1f} s "
        f"training; last {history[-1].val_top1:.2f}%",
        file=out,
    )
    return history


def _progress_bar():
    """A tqdm bar per epoch (stderr, cleared when the epoch's table row is printed)."""
    from tqdm import tqdm

    epochs = iter(range(1, 1 << 30))
    return lambda batches, total: tqdm(batches, total=total, leave=False, unit="batch", file=sys.stderr,
                                       desc=f"epoch {next(epochs)}")




def scratch_gradcheck(seed: int = 0, out=sys.stdout) -> bool:
    """Print the relative error of every scratch layer's gradient; True when all are within tolerance."""
    from ..scratch.gradcheck import TOLERANCE, run_all

    results = run_all(seed)
    print(f"{'layer':<42} {'tensor':<10} {'rel. error':>10}  ok", file=out)
    for r in results:
        print(f"{r.case:<42} {r.tensor:<10} {r.rel_error:>10.2e}  {'ok' if r.ok else 'FAIL'}", file=out)
    failed = [r for r in results if not r.ok]
    print(
        f"{len(results) - len(failed)}/{len(results)} gradients within relative error {TOLERANCE:g} "
        "(float64)",
        file=out,
    )
    return not failed
