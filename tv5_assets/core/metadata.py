"""Helpers that turn frames into readable Dagster metadata (Markdown tables, charts)."""

from __future__ import annotations

import base64
import io

import polars as pl


def _cell(value: object, width: int = 60) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def markdown_table(frame: pl.DataFrame, rows: int = 5) -> str:
    """The first `rows` rows as a Markdown table (the UI renders it as a table)."""
    head = frame.head(rows)
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    for row in head.iter_rows():
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def png_markdown(figure, alt: str) -> str:
    """A matplotlib figure embedded in Markdown as a data-URI PNG (no file server needed)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f"![{alt}](data:image/png;base64,{encoded})"
