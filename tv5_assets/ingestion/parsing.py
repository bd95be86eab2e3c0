"""Row validation shared by every MovieLens file: typed casts, rules, quarantine, duplicates.

A row that breaks a rule is not dropped: it moves to the quarantine frame with the file, line
and rule, so `rows_read == rows_kept + rows_rejected` always holds and can be checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from tv5_assets.ingestion.csv_reader import EXTRA, LINE, CsvFile, first_failed_rule, raw_lines
from tv5_assets.ingestion.errors import MovieLensInputError

QUARANTINE_SCHEMA = {"file": pl.String, "line": pl.Int64, "rule": pl.String, "record": pl.String}
RULE = "__rule"


@dataclass
class Parsed:
    """The output rows of one asset, its quarantined rows, and per source file how many data rows
    were read and how many passed every rule (read = valid + rejected, file by file)."""

    kept: pl.DataFrame
    rejected: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=QUARANTINE_SCHEMA))
    rows_read: dict[str, int] = field(default_factory=dict)
    rows_valid: dict[str, int] = field(default_factory=dict)

    def rejected_by_rule(self) -> dict[str, int]:
        return count_by(self.rejected, "rule")

    def rejected_by_file(self) -> dict[str, int]:
        return count_by(self.rejected, "file")

    @property
    def total_read(self) -> int:
        return sum(self.rows_read.values())


def count_by(frame: pl.DataFrame, column: str) -> dict[str, int]:
    counts = frame.group_by(column).len().sort(column)
    return dict(zip(counts[column].to_list(), counts["len"].to_list()))


def unaccounted_rows(rows_read: dict[str, int], rows_valid: dict[str, int],
                     rejected_by_file: dict[str, int]) -> dict[str, int]:
    """Per file, rows neither kept nor quarantined (should be empty: nothing is lost silently)."""
    gaps = {
        name: read - rows_valid.get(name, 0) - rejected_by_file.get(name, 0)
        for name, read in rows_read.items()
    }
    gaps.update({name: -n for name, n in rejected_by_file.items() if name not in rows_read})
    return {name: gap for name, gap in gaps.items() if gap != 0}


def is_blank(column: str) -> pl.Expr:
    return pl.col(column).str.strip_chars().fill_null("") == ""


def not_digits(column: str) -> pl.Expr:
    """True where a text field is not a plain non-negative integer (kept as text, e.g. imdbId's zeros)."""
    return ~pl.col(column).str.contains(r"^\s*\d+\s*$").fill_null(False)


def structural_rules(file: CsvFile) -> list[tuple[str, pl.Expr]]:
    """Rules every file shares: a blank line, or a line with more fields than the header."""
    return [
        ("blank_line", pl.all_horizontal([pl.col(c).is_null() for c in file.columns]) & pl.col(EXTRA).is_null()),
        ("field_count", pl.col(EXTRA).is_not_null()),
    ]


def split_by_rules(frame: pl.DataFrame, rules: list[tuple[str, pl.Expr]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Tag each row with its first broken rule; return (good rows, flagged lines with their rule)."""
    tagged = frame.with_columns(first_failed_rule(rules).alias(RULE))
    flagged = tagged.filter(pl.col(RULE).is_not_null()).select(LINE, RULE)
    good = tagged.filter(pl.col(RULE).is_null()).drop(RULE, EXTRA, strict=False)
    return good, flagged


def quarantine(path: Path, file: str, flagged: list[pl.DataFrame]) -> pl.DataFrame:
    """Quarantine rows for the flagged lines of one file: file, line, rule and the raw line as written."""
    lines = pl.concat(flagged) if flagged else pl.DataFrame(schema={LINE: pl.Int64, RULE: pl.String})
    if lines.is_empty():
        return pl.DataFrame(schema=QUARANTINE_SCHEMA)
    return (
        lines.join(raw_lines(path, lines[LINE]), on=LINE, how="left")
        .select(pl.lit(file).alias("file"), pl.col(LINE).alias("line"), pl.col(RULE).alias("rule"), "record")
        .sort("line")
    )


def _integer_key(frame: pl.DataFrame, keys: list[str]) -> pl.Expr | None:
    """Two integer key columns packed in one int64, so duplicate search is one sort, not a hash of structs."""
    if len(keys) == 2 and all(frame.schema[k].is_integer() for k in keys):
        return pl.col(keys[0]).cast(pl.Int64) * (1 << 32) + pl.col(keys[1]).cast(pl.Int64)
    if len(keys) == 1 and frame.schema[keys[0]].is_integer():
        return pl.col(keys[0]).cast(pl.Int64)
    return None


def has_duplicates(frame: pl.DataFrame, keys: list[str]) -> bool:
    packed = _integer_key(frame, keys)
    if packed is None:
        return bool(frame.select(pl.struct(keys).is_duplicated().any()).item())
    return bool(frame.select((packed.sort().diff() == 0).any()).item())


def split_duplicates(
    frame: pl.DataFrame, keys: list[str], prefer: list[str], descending: list[bool] | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Keep one row per key (the first after sorting by `prefer`); return (kept, the other rows).

    The duplicate search is one sort of a packed key, and the split is skipped when no key
    repeats (the common case on 25M rows).
    """
    if frame.is_empty() or not has_duplicates(frame, keys):
        return frame, frame.clear()
    order = descending or [False] * len(prefer)
    ordered = frame.sort([*keys, *prefer], descending=[False] * len(keys) + order)
    first = ordered.select(pl.struct(keys).is_first_distinct()).to_series()
    return ordered.filter(first), ordered.filter(~first)


def label_duplicates(dupes: pl.DataFrame, kept: pl.DataFrame, keys: list[str],
                     value_columns: list[str]) -> pl.DataFrame:
    """Flag dropped duplicates: 'duplicate_row' when identical to the kept row, else 'duplicate_key'."""
    if dupes.is_empty():
        return pl.DataFrame(schema={LINE: pl.Int64, RULE: pl.String})
    kept_values = kept.select(*keys, *[pl.col(c).alias(f"__kept_{c}") for c in value_columns])
    same = pl.all_horizontal([pl.col(c).eq_missing(pl.col(f"__kept_{c}")) for c in value_columns])
    return dupes.join(kept_values, on=keys, how="left").select(
        LINE, pl.when(same).then(pl.lit("duplicate_row")).otherwise(pl.lit("duplicate_key")).alias(RULE)
    )


def enforce_reject_budget(parsed: Parsed, path: Path, max_fraction: float) -> None:
    """Fail the whole file when too many rows break rules: that signals a wrong file, not bad rows."""
    if parsed.total_read == 0:
        return
    rejected = parsed.rejected.height
    if rejected / parsed.total_read > max_fraction:
        first = parsed.rejected.sort("line").row(0, named=True)
        raise MovieLensInputError(
            first["file"] if first["file"] else path,
            first["rule"],
            f"{rejected} of {parsed.total_read} rows rejected ({parsed.rejected_by_rule()}), above the "
            f"allowed fraction {max_fraction}; first bad record: {first['record']!r}",
            line=first["line"],
        )


def require_rows(frame: pl.DataFrame, path: Path) -> None:
    if frame.is_empty():
        raise MovieLensInputError(path, "has_rows", "the file has a header but no data rows", line=2)
