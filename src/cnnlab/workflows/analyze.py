"""The ``info`` and ``compare`` workflows: analyse registered models by name, as data and as text.

Models are built on the meta device (no memory, no initialisation cost) in their paper's setting
(``native_model``), so ``model_info("vgg16")`` takes about a second even for the largest models.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ..analysis.fake_run import parse_input_size
from ..analysis.memory import activation_bytes
from ..analysis.profiler import profile
from ..analysis.receptive_fields import receptive_field
from ..registry import native_model


def build_meta(name: str, num_classes: int | None = None):
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    with torch.device("meta"):
        return native_model(name, **kwargs)


def _input_for(model, input_size) -> tuple[int, ...]:
    return parse_input_size(input_size) if input_size else tuple(model.default_cfg.input_size)


def model_info(name: str, input_size: str | Sequence[int] | None = None, depth: int = 2,
               num_classes: int | None = None) -> dict:
    """Totals and the rows down to ``depth`` (module nesting level), each with its receptive field."""
    model = build_meta(name, num_classes)
    size = _input_for(model, input_size)
    prof = profile(model, size)
    rfs = receptive_field(model, size, "all") if len(size) == 3 else {}
    local = receptive_field(model, size, "all", ignore_gates=True) if None in rfs.values() else rfs
    layers = []
    for row in prof.rows:
        if row.depth > depth:
            continue
        rf, rf_local = rfs.get(row.name), local.get(row.name)
        layers.append({"name": row.name, "type": row.type, "depth": row.depth,
                       "output_shape": list(row.output_shape or ()), "params": row.params, "macs": row.macs,
                       "activation_bytes": row.activation_bytes,
                       "receptive_field": rf.to_dict() if rf is not None else None,
                       "local_receptive_field": rf_local.to_dict() if rf_local is not None else None})
    stages = {s.name: _size(rfs.get(s.name), local.get(s.name)) for s in getattr(model, "stages", ())}
    return {
        "model": name,
        "input": list(size),
        "params": prof.params,
        "trainable_params": prof.trainable_params,
        "inference_params": _inference_params(model, prof.params),
        "macs": prof.macs,
        "flops": prof.flops,
        "output_shape": list(prof.output_shape or ()),
        "stage_receptive_fields": stages,
        "uncounted_ops": prof.uncounted,
        "layers": layers,
    }


def _inference_params(model, total: int) -> int:
    """Parameters used at inference: training-only heads (GoogLeNet's aux classifiers) excluded."""
    count = getattr(model, "inference_params", None)
    return count() if callable(count) else total


def _size(rf, rf_local) -> int | str | None:
    """A field's size; ``"267*"`` = global through a gate, 267 locally; None = no spatial field."""
    if rf is not None:
        return rf.size
    return f"{rf_local.size}*" if rf_local is not None else None


def _fmt_shape(shape) -> str:
    return "x".join(map(str, shape)) if shape else "-"


def info_text(info: dict) -> str:
    """The table ``cnnlab info`` prints."""
    head = f"{'layer':<44} {'type':<22} {'output':>16} {'params':>13} {'MACs':>15} {'RF':>5}"
    lines = [f"{info['model']} at {_fmt_shape(info['input'])}", head, "-" * len(head)]
    for layer in info["layers"]:
        rf, rf_local = layer["receptive_field"], layer["local_receptive_field"]
        size = rf["size"] if rf else (f"{rf_local['size']}*" if rf_local else "-")
        name = "  " * (layer["depth"] - 1) + layer["name"]
        lines.append(f"{name[:44]:<44} {layer['type'][:22]:<22} {_fmt_shape(layer['output_shape'][1:]):>16} "
                     f"{layer['params']:>13,} {layer['macs']:>15,} {size:>5}")
    lines.append("-" * len(head))
    if info["inference_params"] != info["params"]:
        lines.append(f"params at inference {info['inference_params']:,} (training-only heads excluded)")
    lines.append(f"params {info['params']:,}   MACs {info['macs']:,} ({info['macs'] / 1e9:.4g} G)   "
                 f"FLOPs {info['flops']:,} ({info['flops'] / 1e9:.4g} G)")
    if info["stage_receptive_fields"]:
        rfs = ", ".join(
            f"{k} {v if v is not None else 'global'}" for k, v in info["stage_receptive_fields"].items()
        )
        lines.append(f"stage receptive fields: {rfs}")
    if any(la["receptive_field"] is None and la["local_receptive_field"] for la in info["layers"]):
        lines.append("* local field (convolutions only); through global gates (squeeze-excitation) the "
                     "output depends on the whole input")
    if info["uncounted_ops"]:
        lines.append(
            "not counted (op: calls): "
            + ", ".join(f"{k} {v}" for k, v in sorted(info["uncounted_ops"].items()))
        )
    return "\n".join(lines)


def compare_rows(names: Sequence[str], input_size: str | Sequence[int] | None = None) -> list[dict]:
    """One row per model: input, params, MACs, FLOPs and training activations per image."""
    rows = []
    for name in names:
        model = build_meta(name)
        size = _input_for(model, input_size)
        prof = profile(model, size)
        rows.append({"model": name, "input": list(size), "params": _inference_params(model, prof.params),
                     "macs": prof.macs,
                     "flops": prof.flops, "activation_bytes": activation_bytes(model, size, 1)})
    return rows


def compare_text(rows: list[dict]) -> str:
    head = f"{'model':<26} {'input':>11} {'params':>14} {'GMACs':>9} {'GFLOPs':>9} {'act. MB/img':>12}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['model']:<26} {_fmt_shape(r['input']):>11} {r['params']:>14,} {r['macs'] / 1e9:>9.4g} "
            f"{r['flops'] / 1e9:>9.4g} {r['activation_bytes'] / 2**20:>12.1f}"
        )
    return "\n".join(lines)


def plot_compare(rows: list[dict], path: str | Path) -> Path:
    """MACs against parameters, bubble area proportional to training activations per image."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..utils.figures import save_figure

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    biggest = max(r["activation_bytes"] for r in rows) or 1
    for r in rows:
        x, y = r["macs"] / 1e9, r["params"] / 1e6
        ax.scatter(x, y, s=60 + 1400 * r["activation_bytes"] / biggest, alpha=0.45, edgecolors="black")
        ax.annotate(r["model"], (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _p: f"{v:g}"))
    ax.set_xlabel("GMACs per image (log)")
    ax.set_ylabel("parameters, millions (log)")
    top = max(rows, key=lambda r: r["activation_bytes"])
    ax.set_title("Cost of the models (bubble area: training activations per image; "
                 f"largest {top['model']} {top['activation_bytes'] / 2**20:.0f} MB)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100, tight=False)
