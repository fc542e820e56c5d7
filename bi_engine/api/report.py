"""The report endpoint's formats: Markdown as stored, or a small self-contained HTML page."""

from __future__ import annotations

import html
from typing import Any

from markdown_it import MarkdownIt

_RENDERER = MarkdownIt("commonmark", {"html": False}).enable("table")


def markdown_of(row: dict[str, Any]) -> str:
    """The stored report, else the one inside the result document."""
    stored = row.get("report_markdown")
    if isinstance(stored, str) and stored:
        return stored
    result = row.get("result") or {}
    text = result.get("report_markdown") if isinstance(result, dict) else None
    return text if isinstance(text, str) else ""


def wants_html(accept: str | None) -> bool:
    """True when ``text/html`` is preferred over Markdown (q-values honoured)."""
    if not accept:
        return False
    weights: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        weights[media.lower()] = _quality(params)
    html_q = weights.get("text/html", 0.0)
    markdown_q = max(weights.get("text/markdown", 0.0), weights.get("text/plain", 0.0))
    return html_q > 0 and html_q >= markdown_q


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value)))
            except ValueError:
                return 0.0
    return 1.0


def to_html(markdown: str, row: dict[str, Any]) -> str:
    """Raw HTML inside the Markdown is escaped, never passed through."""
    title = html.escape(f"Analysis report {row['id']}")
    body = _RENDERER.render(markdown)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title></head>\n<body>\n{body}</body></html>\n"
    )
