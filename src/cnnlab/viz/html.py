"""A small HTML writer for self-contained pages: every value escaped, pictures embedded as ``data:``
URIs, the style sheet inline, no script, font or address outside the page (it opens from a USB stick
and fetches nothing)."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable
from pathlib import Path

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0;
       color: #1f2328; background: #f6f8fa; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 1.2rem 1.6rem 3rem; background: #fff; }
h1 { font-size: 1.55rem; margin: 0.4rem 0 0.2rem; }
h2 { font-size: 1.2rem; margin-top: 2.1rem; padding-bottom: 0.25rem; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 1rem; margin: 1.2rem 0 0.4rem; }
p.lead { color: #57606a; margin-top: 0; }
nav { font-size: 0.9rem; margin: 0.6rem 0 0.4rem; }
nav a { margin-right: 0.9rem; color: #0969da; text-decoration: none; }
table { border-collapse: collapse; font-size: 0.86rem; margin: 0.4rem 0 0.8rem; }
th, td { border: 1px solid #d0d7de; padding: 0.22rem 0.55rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.low td { background: #fff1f0; }
.cards { display: flex; flex-wrap: wrap; gap: 0.7rem; margin: 0.8rem 0; }
.card { border: 1px solid #d0d7de; border-radius: 6px; padding: 0.45rem 0.8rem; min-width: 8.5rem; }
.card b { display: block; font-size: 1.15rem; }
.card span { color: #57606a; font-size: 0.8rem; }
.grid { display: flex; flex-wrap: wrap; gap: 1.6rem; align-items: flex-start; }
figure { margin: 0.6rem 0 1rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { color: #57606a; font-size: 0.82rem; }
.note { color: #57606a; font-size: 0.85rem; }
footer { color: #57606a; font-size: 0.8rem; margin-top: 2.5rem; }
"""


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def data_uri(path: Path, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(Path(path).read_bytes()).decode('ascii')}"


def figure(path: Path, alt: str, caption: str = "") -> str:
    """An embedded picture (``path`` must exist)."""
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{data_uri(path)}" alt="{esc(alt)}">{cap}</figure>'


def table(header: Iterable, rows: Iterable[Iterable], numeric: Iterable[int] = (),
          low_rows: Iterable[int] = ()) -> str:
    """A table; ``numeric``: column indices right-aligned; ``low_rows``: row indices highlighted."""
    numeric, low = set(numeric), set(low_rows)
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cells = "".join(f'<td class="num">{esc(c)}</td>' if j in numeric else f"<td>{esc(c)}</td>"
                        for j, c in enumerate(row))
        body.append(f'<tr class="low">{cells}</tr>' if i in low else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def pairs(items: Iterable[tuple], per_row: int = 1) -> str:
    """A headerless table of (name, value) pairs, ``per_row`` pairs to a row (names in bold)."""
    items = list(items)
    rows = []
    for i in range(0, len(items), per_row):
        cells = "".join(f"<th>{esc(k)}</th><td>{esc(v)}</td>" for k, v in items[i:i + per_row])
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><tbody>{''.join(rows)}</tbody></table>"


def cards(items: Iterable[tuple[str, str]]) -> str:
    """Headline figures: (value, label) pairs."""
    return '<div class="cards">' + "".join(f'<div class="card"><b>{esc(v)}</b><span>{esc(k)}</span></div>'
                                           for v, k in items) + "</div>"


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


def page(title: str, lead: str, sections: list[tuple[str, str, str]], footer: str) -> str:
    """The whole document; ``sections``: (anchor, title, body HTML)."""
    nav = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t, _ in sections)
    body = "".join(section(a, t, b) for a, t, b in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<link rel=\"icon\" href=\"data:,\">"  # no favicon request
            f"<title>{esc(title)}</title><style>{STYLE}</style></head><body><main>"
            f"<h1>{esc(title)}</h1><p class=\"lead\">{esc(lead)}</p><nav>{nav}</nav>{body}"
            f"<footer>{esc(footer)}</footer></main></body></html>\n")
