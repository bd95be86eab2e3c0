"""Errors for bad MovieLens input: each names the file, the line and the broken rule."""

from __future__ import annotations

from pathlib import Path


class MovieLensInputError(ValueError):
    """A structural problem that makes a file unusable (as opposed to a bad row, which is quarantined)."""

    def __init__(self, path: Path | str, rule: str, detail: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.rule = rule
        self.line = line
        self.detail = detail
        where = f"{self.path}" + (f", line {line}" if line is not None else "")
        super().__init__(f"{where}: rule '{rule}' violated: {detail}")
