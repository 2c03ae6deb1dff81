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
        "pretrained": ", ".join(sorted(entry.pretrained)),
    }


def model_rows(pattern: str | None = None) -> list[dict]:
    return [model_row(n) for n in list_models(pattern)]


def to_text(rows: list[dict]) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rows)} models")
    for col, just in (("name", "left"), ("family", "left"), ("params", "right"), ("input", "right"),
                      ("loads", "left")):
        table.add_column(col, justify=just)
    for r in rows:
        table.add_row(r["name"], r["family"], f"{r['params']:,}", r["input"], r["loads"])
    console = Console(width=120, record=True)
    with console.capture() as cap:
        console.print(table)
    return cap.get().rstrip()


def to_markdown(rows: list[dict]) -> str:
    lines = ["| model | paper | params | default input | loads checkpoints of |", "|---|---|---:|---|---|"]
    for r in rows:
        loads = r["loads"] + (f"; pretrained: {r['pretrained']}" if r["pretrained"] else "")
        lines.append(f"| `{r['name']}` | {r['paper']} | {r['params']:,} | {r['input']} | {loads} |")
    return "\n".join(lines)
