"""The HTML vocabulary every renderer shares: theme colours, escaping, tables, code
blocks.

Text and surfaces use JupyterLab's CSS variables, so the output follows the light or
dark theme. Everything interpolated into HTML goes through :func:`escape` — model
names, tags, URIs and example values come from users and from services, and a tag
such as ``<script>`` must show as text, never run.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "BORDER",
    "BUSY_COLOUR",
    "CELL_STYLE",
    "ERROR_COLOUR",
    "OK_COLOUR",
    "PRE",
    "STATE_COLOURS",
    "SURFACE",
    "TABLE_STYLE",
    "TEXT",
    "TEXT_MUTED",
    "chip",
    "compact_json",
    "escape",
    "html_table",
    "link",
    "muted",
    "plain_table",
    "pre_style",
    "round_floats",
    "tags_text",
]

#: Badge colour per service state (``ServiceState`` values). A badge is white text on
#: its own colour, so it reads the same in every theme (contrast at least 4.5:1).
STATE_COLOURS: dict[str, str] = {
    "Healthy": "#2e7d32",
    "Transitioning": "#9a6700",
    "Unhealthy": "#c2410c",
    "Unschedulable": "#6a1b9a",
    "Failed": "#c62828",
}

# Text and surfaces use JupyterLab's CSS variables, as pandas and altair outputs do, so
# they follow the light or dark theme (JupyterLab, Notebook 7 and VS Code define them);
# the fallbacks are the light values GitHub and nbviewer use. Never a fixed light
# background under inherited text. Status colours mark borders and symbols, not text.

#: Main text colour.
TEXT = "var(--jp-content-font-color1, #1f2328)"
#: Secondary text (captions, "none").
TEXT_MUTED = "var(--jp-content-font-color2, #57606a)"
#: Background of code blocks and chips.
SURFACE = "var(--jp-layout-color2, #f6f8fa)"
#: Table and block borders.
BORDER = "var(--jp-border-color2, #d0d7de)"
#: Status marks (borders, symbols).
OK_COLOUR = "var(--jp-success-color1, #2e7d32)"
ERROR_COLOUR = "var(--jp-error-color1, #c62828)"
BUSY_COLOUR = "var(--jp-warn-color1, #9a6700)"

TABLE_STYLE = 'style="border-collapse:collapse;margin:4px 0;text-align:left"'
CELL_STYLE = f'style="border:1px solid {BORDER};padding:2px 8px;text-align:left;vertical-align:top"'


def pre_style(*, wrap: bool = False, max_height: str | None = None) -> str:
    """The ``style`` attribute of a code block (snippets, examples, logs) in any theme.

    Examples
    --------
    >>> "var(--jp-layout-color2" in pre_style()
    True
    """
    parts = [
        f"background:{SURFACE}",
        f"color:{TEXT}",
        f"border:1px solid {BORDER}",
        "border-radius:4px",
        "padding:6px",
        "margin:4px 0",
        "white-space:pre-wrap" if wrap else "white-space:pre",
        "overflow:auto",
        "font-size:12px",
    ]
    if max_height:
        parts.append(f"max-height:{max_height}")
    return f'style="{";".join(parts)}"'


PRE = pre_style()


def chip(text: str) -> str:
    """A tag chip (``key=value``) that reads in light and dark themes."""
    return (
        f'<code class="nbdeploy-tag" style="background:{SURFACE};color:{TEXT};'
        f'border:1px solid {BORDER};border-radius:4px;padding:0 4px;margin-right:2px">'
        f"{escape(text)}</code>"
    )


def muted(text: str) -> str:
    """Secondary text such as "none"."""
    return f'<i style="color:{TEXT_MUTED}">{escape(text)}</i>'


def escape(value: object) -> str:
    """``str(value)`` made safe to put inside HTML text or a quoted attribute.

    Examples
    --------
    >>> escape("<script>alert('x')</script>")
    '&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;'
    """
    return html.escape(str(value), quote=True)


def round_floats(value: Any, digits: int = 6) -> Any:
    """``value`` with every float rounded to ``digits`` significant digits, so examples
    and snippets read ``0.0380759``, not ``0.038075906433423026``.

    Examples
    --------
    >>> round_floats({"data": [{"age": 0.038075906433423026, "n": 3}]})
    {'data': [{'age': 0.0380759, 'n': 3}]}
    """
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: round_floats(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [round_floats(v, digits) for v in value]
    return value


def compact_json(value: Any) -> str:
    """JSON for people: a ``{"data": [rows]}`` body with one row per line, anything
    else indented.

    Examples
    --------
    >>> print(compact_json({"data": [{"a": 1}, {"a": 2}]}))
    {"data": [
      {"a": 1},
      {"a": 2}
    ]}
    """
    if isinstance(value, dict) and len(value) == 1:
        ((key, rows),) = value.items()
        if isinstance(rows, list) and rows:
            body = ",\n  ".join(json.dumps(row) for row in rows)
            return f"{{{json.dumps(key)}: [\n  {body}\n]}}"
    return json.dumps(value, indent=1)


def html_table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], css_class: str = ""
) -> str:
    cls = f' class="{escape(css_class)}"' if css_class else ""
    head = "".join(f"<th {CELL_STYLE}>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td {CELL_STYLE}>{cell}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table{cls} {TABLE_STYLE}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)


def link(uri: str | None) -> str:
    if not uri:
        return muted("none")
    return f'<a href="{escape(uri)}" target="_blank" rel="noopener">{escape(uri)}</a>'


def tags_text(tags: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))
