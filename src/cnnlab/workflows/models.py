"""``cnnlab models``: a row per registered model (built on the meta device: no memory, no compute),
as a rich table, JSON or the README's markdown table (``scripts/update_readme.py`` writes it there)."""

from __future__ import annotations

import torch

from ..registry import get_entry, list_models, native_model


def model_row(name: str) -> dict:
    entry = get_entry(name)
    with torch.device("meta"):
        model = native_model(name)
    cfg = model.default_cfg
    return {
        "name": name,
        "family": entry.family,
        "paper": entry.paper,
        "params": model.inference_params(),
        "input": "x".join(str(s) for s in cfg.input_size),
        "classes": getattr(model, "num_classes", None),
        "loads": ", ".join(entry.loads) or "cnnlab",
        "weights": weights_tags(name),
    }


def weights_tags(name: str) -> list[str]:
    """The model's pretrained tags (``cnnlab weights ls``), the default (``imagenet``) first."""
    from ..weights.catalogue import catalogue

    return catalogue().tags(name)


def _weights_cell(tags: list[str]) -> str:
    return f"imagenet +{len(tags) - 1}" if len(tags) > 1 else ("imagenet" if tags else "none")


def model_rows(pattern: str | None = None) -> list[dict]:
    return [model_row(n) for n in list_models(pattern)]


def to_text(rows: list[dict]) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rows)} models")
    for col, just in (("name", "left"), ("family", "left"), ("params", "right"), ("input", "right"),
                      ("loads", "left"), ("weights", "left")):
        table.add_column(col, justify=just)
    for r in rows:
        table.add_row(r["name"], r["family"], f"{r['params']:,}", r["input"], r["loads"],
                      _weights_cell(r["weights"]))
    console = Console(width=120, record=True)
    with console.capture() as cap:
        console.print(table)
    return cap.get().rstrip()


def to_markdown(rows: list[dict]) -> str:
    lines = [
        "| model | paper | params | default input | loads checkpoints of | pretrained (`cnnlab weights ls`) "
        "|",
        "|---|---|---:|---|---|---|",
    ]
    for r in rows:
        tags = r["weights"]
        tags = (
            "none"
            if not tags
            else f"imagenet = {tags[0]}" + (f" (+{len(tags) - 1} tags)" if len(tags) > 1 else "")
        )
        lines.append(
            f"| `{r['name']}` | {r['paper']} | {r['params']:,} | {r['input']} | {r['loads']} | {tags} |"
        )
    return "\n".join(lines)
