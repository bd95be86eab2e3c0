"""Reading MovieLens CSVs defensively: header checks, then every field as text with its line number.

Typed casting happens later, per column, so that a bad value rejects one row (with the rule it
broke) instead of failing the whole file. Assumes one record per physical line, which holds for
every MovieLens release (quoted fields never contain newlines).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from tv5_assets.ingestion.errors import MovieLensInputError

LINE = "line"
EXTRA = "__extra_field"
_BOM = b"\xef\xbb\xbf"
_OTHER_DELIMITERS = (";", "\t", "|")


@dataclass(frozen=True)
class CsvFile:
    """A MovieLens file and the columns it must have, in release order."""

    name: str
    columns: tuple[str, ...]


def read_header(path: Path, expected: CsvFile) -> list[str]:
    """Validate the header line and return the column names (BOM, CR and trailing empty names removed)."""
    if not path.exists():
        raise MovieLensInputError(path, "file_present", f"{expected.name} is missing from the release")
    with open(path, "rb") as handle:
        first = handle.readline()
    if not first.strip():
        raise MovieLensInputError(path, "non_empty", "the file is empty: a header line is required", line=1)
    text = first.removeprefix(_BOM).decode("utf-8", errors="replace").rstrip("\r\n")
    names = [name.strip() for name in next(csv.reader([text]))]
    while len(names) > 1 and names[-1] == "":
        names.pop()  # extra trailing empty columns, e.g. "userId,movieId,rating,timestamp,,"
    if len(names) == 1 and len(expected.columns) > 1:
        found = [d for d in _OTHER_DELIMITERS if d in text]
        if found:
            raise MovieLensInputError(
                path, "comma_delimiter",
                f"the header {text!r} is separated by {found[0]!r}; MovieLens files are comma-separated",
                line=1,
            )
    missing = [c for c in expected.columns if c not in names]
    if missing:
        raise MovieLensInputError(
            path, "required_columns",
            f"missing column(s) {missing}; found {names}; expected {list(expected.columns)}",
            line=1,
        )
    return names


def read_fields(path: Path, expected: CsvFile, dtypes: dict[str, pl.DataType] | None = None) -> pl.DataFrame:
    """The file's fields plus `line` (1-based file line) and `__extra_field` (set when a row is too long).

    Columns named in `dtypes` are parsed natively (fast on 25M rows); a value that does not parse
    becomes null, so only columns where null is always a rejection belong there. Other columns
    stay text. Rows with too few fields get nulls in the missing columns; rows with too many keep
    the surplus in `__extra_field`, so the caller can reject them by rule rather than truncate.
    """
    names = read_header(path, expected)
    dtypes = dtypes or {}
    # Room for the trailing empty header columns plus one more field: anything landing there is
    # a surplus field, and the row is rejected for it instead of being silently truncated.
    with open(path, "rb") as handle:
        header_fields = len(next(csv.reader([handle.readline().decode("utf-8", "replace")])))
    extras = [f"{EXTRA}_{i}" for i in range(header_fields - len(names) + 1)]
    schema = {name: dtypes.get(name, pl.String) for name in names} | {name: pl.String for name in extras}
    try:
        frame = pl.read_csv(
            path,
            has_header=False,
            skip_lines=1,
            schema=schema,
            truncate_ragged_lines=True,
            missing_columns="insert",
            ignore_errors=True,
            quote_char='"',
        )
    except pl.exceptions.PolarsError as exc:
        raise MovieLensInputError(path, "csv_syntax", f"cannot be parsed as CSV: {exc}") from exc
    frame = frame.with_row_index(LINE, offset=2).with_columns(pl.col(LINE).cast(pl.Int64))
    return frame.select(LINE, *expected.columns, pl.coalesce(extras).alias(EXTRA))


def raw_lines(path: Path, lines: pl.Series) -> pl.DataFrame:
    """The raw text of the given 1-based lines (for quarantine records), without line endings."""
    if lines.is_empty():
        return pl.DataFrame(schema={LINE: pl.Int64, "record": pl.String})
    wanted = lines.cast(pl.Int64).unique().implode()
    return (
        pl.scan_csv(path, has_header=False, separator="\x1f", quote_char=None,
                    schema={"record": pl.String}, truncate_ragged_lines=True)
        .with_row_index(LINE, offset=1)
        .with_columns(pl.col(LINE).cast(pl.Int64))
        .filter(pl.col(LINE).is_in(wanted))
        .with_columns(pl.col("record").fill_null("").str.strip_chars_end("\r"))
        .collect()
    )


def first_failed_rule(rules: list[tuple[str, pl.Expr]]) -> pl.Expr:
    """An expression giving, per row, the name of the first rule whose `broken` expression is true (else null)."""
    expr = pl.lit(None, dtype=pl.String)
    for name, broken in reversed(rules):
        expr = pl.when(broken).then(pl.lit(name)).otherwise(expr)
    return expr
