"""The synthetic people of the users a day brings in (no Dagster here).

A day's new users (who rated and have no row in the served `demographics`) get a person drawn exactly as the full
build draws one: every field from the user's own keyed stream (MD5(seed, user_id)), the archetype from the user's
behaviour with the quotas applied over the day's new users. Everyone else keeps the row they have: a person does
not change archetype because of a day's ratings (the weekly refit rebuilds the whole table).
"""

from __future__ import annotations

import polars as pl

from tv5_assets.ingestion.days import ratings_table
from tv5_assets.synthetic.demographics import Demographics, build_demographics


def new_users(current: pl.DataFrame, served_users: pl.DataFrame) -> pl.DataFrame:
    """The users of `current` (a day's `day_user_ratings`) with no served person, sorted."""
    return current.select("user_id").unique().join(served_users, on="user_id", how="anti").sort("user_id")


def new_people(current: pl.DataFrame, served_users: pl.DataFrame, movies: pl.DataFrame, seed: int,
               shares: dict[str, float]) -> Demographics:
    """A person per new user, from the new users' whole current ratings."""
    rows = current.join(new_users(current, served_users), on="user_id", how="semi")
    return build_demographics(ratings_table(rows), movies, seed, shares)
