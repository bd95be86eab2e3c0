"""The synthetic people of the users a day brings in, and which person each user of a day is served (no Dagster).

A day's new users (who rated and have no served person) get a person drawn exactly as the full build draws one:
every field from the user's own keyed stream (MD5(seed, user_id)), the archetype from the user's behaviour with the
quotas applied over the day's new users. Everyone else keeps the row they have: a person does not change archetype
because of a day's ratings (the weekly refit rebuilds the whole table).

A user's served person is the base `demographics` row, else the person another published day drew for them (each
published day keeps its people: `<lake>/days/published/<day>/people.parquet`), else, for a new user, the day's own
draw. The partition's own published version is left out: a corrected re-delivery of a day draws again the users
it touches that the day brought in (with the quotas over its new users), as its first delivery did; the users it
does not touch keep the person the day's published version drew (`kept_with_day`). So a user brought in by one day
keeps that day's person when a later day touches them, whichever of the two days is applied first.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from tv5_assets.ingestion import served_days
from tv5_assets.ingestion.days import ratings_table
from tv5_assets.synthetic.demographics import Demographics, build_demographics

KEY = "user_id"


def published_elsewhere(lake_dir: str | Path, day: date, demographics: pl.LazyFrame) -> pl.DataFrame:
    """The people the published days other than `day` drew (`demographics`' columns, and `arrival`, the day that
    drew them; earliest day first). A day's people are its few new users: the files are read whole."""
    folder = served_days.published_folder(lake_dir)
    return served_days.read_published_people(folder, [d for d in served_days.published_days(folder) if d != day],
                                             demographics.collect_schema())


def served_people(demographics: pl.LazyFrame, elsewhere: pl.DataFrame, users: pl.DataFrame) -> pl.DataFrame:
    """The served person of each of `users` (a frame with user_id) who has one: the base `demographics` row, else
    the person another published day drew (`elsewhere`, from `published_elsewhere`; the earliest day's first, should
    two days have drawn one user). `demographics`' columns, sorted by user_id; only `users`' base rows are read."""
    schema = demographics.collect_schema()
    keys = users.select(pl.col(KEY).cast(schema[KEY])).unique()
    base = demographics.join(keys.lazy(), on=KEY, how="semi").collect()
    drawn = (elsewhere.select(list(schema)).cast(dict(schema)).join(keys, on=KEY, how="semi")
             .join(base.select(KEY), on=KEY, how="anti").unique(KEY, keep="first", maintain_order=True))
    return pl.concat([base, drawn]).sort(KEY)


def people_of(demographics: pl.LazyFrame, elsewhere: pl.DataFrame, new: pl.DataFrame,
              users: pl.DataFrame) -> pl.DataFrame:
    """The person of each of `users`: served (`served_people`), else the day's own draw (`new`, its
    `day_demographics`). `demographics`' columns, sorted by user_id; a user with neither has no row."""
    served = served_people(demographics, elsewhere, users)
    keys = users.select(pl.col(KEY).cast(served.schema[KEY])).unique()
    drawn = (new.select(served.columns).cast(served.schema).join(keys, on=KEY, how="semi")
             .join(served.select(KEY), on=KEY, how="anti"))
    return pl.concat([served, drawn]).sort(KEY)


def kept_with_day(previous: pl.DataFrame, drawn: pl.DataFrame, touched: pl.DataFrame) -> pl.DataFrame:
    """The people a publication of a day keeps (its `people.parquet`): its draws (`drawn`, the day's
    `day_demographics`) of the users it touched (`touched`: user_id of its changes; the stores take their persons),
    and the people its published version (`previous`) drew of every user it does not touch: a re-delivery changes
    only the users whose rows it changes, and an untouched user keeps the person the stores serve. `drawn`'s
    columns, sorted by user_id."""
    keys = touched.select(pl.col(KEY).cast(drawn.schema[KEY])).unique()
    kept = previous.select(drawn.columns).cast(drawn.schema).join(keys, on=KEY, how="anti")
    return pl.concat([kept, drawn.join(keys, on=KEY, how="semi")]).sort(KEY)


def new_users(current: pl.DataFrame, served_users: pl.DataFrame) -> pl.DataFrame:
    """The users of `current` (a day's `day_user_ratings`) with no served person (`served_users`: user_id of those
    who have one, e.g. `served_people`'s), sorted."""
    return current.select(KEY).unique().join(served_users.select(KEY), on=KEY, how="anti").sort(KEY)


def new_people(current: pl.DataFrame, served_users: pl.DataFrame, movies: pl.DataFrame, seed: int,
               shares: dict[str, float]) -> Demographics:
    """A person per new user, from the new users' whole current ratings."""
    rows = current.join(new_users(current, served_users), on=KEY, how="semi")
    return build_demographics(ratings_table(rows), movies, seed, shares)
