"""The published version of each delivered day: what the stores serve on top of the base release (no Dagster).

A day's delta is computed against these files, never against the lake's latest day partitions, so a day that
was staged but not published is applied again whole by its next run. Each day is one folder,
`<lake>/days/published/<YYYY-MM-DD>/` holding `ratings.parquet`, `erasures.parquet`, `movies.parquet` (the movies
the day brought in; absent from days published before days could bring movies), `people.parquet` (the synthetic
people the day drew for its new users, in `demographics`' columns; absent from days published before days kept
their people, and from publications given none) and `net.json` (how many current rows the day's publications
added, less those they took away), swapped in whole. With the base's row count, the nets give the served row
count, so a day reports the rows it left untouched without reading them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from datetime import date
from pathlib import Path

import polars as pl

from tv5_assets.ingestion.days import (
    ARRIVAL,
    LEDGER_SCHEMA,
    LOG_SCHEMA,
    MOVIE,
    MOVIES_SCHEMA,
    empty_ledger,
    empty_log,
    empty_movies,
)

PUBLISHED = ("days", "published")
RATINGS_FILE, ERASURES_FILE, NET_FILE, MOVIES_FILE = "ratings.parquet", "erasures.parquet", "net.json", "movies.parquet"
PEOPLE_FILE = "people.parquet"


def published_folder(lake_dir: str | Path) -> Path:
    return Path(lake_dir, *PUBLISHED)


def published_days(folder: Path) -> list[date]:
    """The days published so far, in order (folders mid-swap, named with a dot first, are not days)."""
    if not folder.is_dir():
        return []
    return sorted(date.fromisoformat(entry.name) for entry in folder.iterdir()
                  if entry.is_dir() and not entry.name.startswith("."))


def fingerprint(folder: Path, days: list[date] | None = None) -> str:
    """A hash of the published days' contents (of `days`, default all): what the full `ratings` folds in, and the
    data version of the `published_days` source."""
    digest = hashlib.sha256()
    for day in published_days(folder) if days is None else days:
        digest.update(day.isoformat().encode())
        for name in (RATINGS_FILE, ERASURES_FILE, NET_FILE, MOVIES_FILE):
            path = folder / day.isoformat() / name
            if name != MOVIES_FILE or path.exists():
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:24]


def movies_fingerprint(folder: Path) -> str:
    """A hash of the movies the published days brought in: the data version of the `published_movies` source, which
    moves only when a day brings, changes or withdraws a movie."""
    movies = read_published_movies(folder)
    digest = hashlib.sha256()
    for row in movies.sort(MOVIE).iter_rows():
        digest.update(repr(row).encode())
    return digest.hexdigest()[:24]


def read_published_movies(folder: Path, days: list[date] | None = None) -> pl.DataFrame:
    """The movies the published days (of `days`, default all) brought in: MOVIES_SCHEMA and `arrival`."""
    frames = []
    for day in published_days(folder) if days is None else days:
        path = folder / day.isoformat() / MOVIES_FILE
        if path.exists():
            frames.append(pl.read_parquet(path).select(list(MOVIES_SCHEMA)).with_columns(
                pl.lit(day, dtype=pl.Date).alias(ARRIVAL)))
    return pl.concat(frames) if frames else empty_movies().with_columns(pl.lit(None, dtype=pl.Date).alias(ARRIVAL))


def read_published_people(folder: Path, days: list[date] | None = None,
                          schema: pl.Schema | dict[str, pl.DataType] | None = None) -> pl.DataFrame:
    """The people the published days (of `days`, default all) drew for the users they brought in, with `arrival`
    (the day that drew them), earliest day first. `schema`: `demographics`' (the synthetic stage owns it): the rows
    are selected and cast to it, and an empty result has it; without one, the files' own columns (an empty result:
    `user_id` only). A day published without people (before days kept them) has none."""
    frames = []
    for day in published_days(folder) if days is None else sorted(days):
        path = folder / day.isoformat() / PEOPLE_FILE
        if path.exists():
            frame = pl.read_parquet(path)
            if schema is not None:
                frame = frame.select(list(schema)).cast(dict(schema))
            frames.append(frame.with_columns(pl.lit(day, dtype=pl.Date).alias(ARRIVAL)))
    if frames:
        return pl.concat(frames, how="vertical_relaxed")
    return pl.DataFrame(schema={**(schema or {"user_id": pl.Int32}), ARRIVAL: pl.Date})


def read_published(folder: Path, days: list[date] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The published days' rating-log rows and erasures (LOG_SCHEMA, LEDGER_SCHEMA), by arrival: of `days`, or
    of every published day."""
    days = published_days(folder) if days is None else days
    if not days:
        return empty_log(), empty_ledger()
    log = pl.concat([pl.read_parquet(folder / d.isoformat() / RATINGS_FILE) for d in days])
    ledger = pl.concat([pl.read_parquet(folder / d.isoformat() / ERASURES_FILE) for d in days])
    return log.select(list(LOG_SCHEMA)), ledger.select(list(LEDGER_SCHEMA))


def net_rows(folder: Path, day: date | None = None, days: list[date] | None = None) -> int:
    """Current rows the published days (or only `day`, or only `days`) added to the base release, less those they
    removed."""
    chosen = published_days(folder) if day is None else [d for d in published_days(folder) if d == day]
    if days is not None:
        chosen = [d for d in chosen if d in days]
    return sum(json.loads((folder / d.isoformat() / NET_FILE).read_text())["net_rows"] for d in chosen)


def publish_day(folder: Path, day: date, ratings: pl.DataFrame, erasures: pl.DataFrame, rows_added: int,
                movies: pl.DataFrame | None = None, people: pl.DataFrame | None = None) -> Path:
    """Make `ratings`, `erasures`, `movies` and `people` (the day's `day_demographics`; None: the version has no
    people file) the served version of `day`, replacing any earlier one whole; `rows_added`: the current rows this
    publication adds (its delta's rows after less rows before, negative when it removes)."""
    for frame in (ratings, erasures):
        if frame.filter(pl.col(ARRIVAL) != day).height:
            raise ValueError(f"rows published for {day} carry another arrival day")
    folder.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{day}.", dir=folder))
    ratings.select(list(LOG_SCHEMA)).write_parquet(staged / RATINGS_FILE)
    erasures.select(list(LEDGER_SCHEMA)).write_parquet(staged / ERASURES_FILE)
    (empty_movies() if movies is None else movies.select(list(MOVIES_SCHEMA))).write_parquet(staged / MOVIES_FILE)
    if people is not None:
        people.write_parquet(staged / PEOPLE_FILE)
    (staged / NET_FILE).write_text(json.dumps({"net_rows": net_rows(folder, day) + rows_added}))
    target = folder / day.isoformat()
    if target.exists():  # rename, never delete, the served version before the new one is in place
        retired = Path(tempfile.mkdtemp(prefix=f".{day}.retired.", dir=folder))
        os.replace(target, retired / "version")
        os.replace(staged, target)
        shutil.rmtree(retired)
    else:
        os.replace(staged, target)
    return target
