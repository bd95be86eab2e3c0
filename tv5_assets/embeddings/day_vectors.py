"""The vectors of the users a day touched (no Dagster here).

A touched user's vector is recomputed from the user's whole current ratings (the day's `day_user_ratings`) with the
same function the full build uses, so it equals what a full rebuild would give that user, and no other user's
vector is read or rewritten. A touched user left with no vector (every rating erased or withdrawn, or none of a
movie with a vector) keeps a row with a null vector: the stores delete that user.
"""

from __future__ import annotations

import polars as pl

USER = "user_id"


def touched_users(changes: pl.DataFrame) -> pl.DataFrame:
    """The users whose current ratings a day changed (`day_rating_changes`), sorted."""
    return changes.select(USER).unique().sort(USER)


def ratings_of(current: pl.DataFrame, users: pl.DataFrame) -> pl.DataFrame:
    """The users' current ratings (`day_user_ratings` rows) in the columns the vector builds read: user_id,
    movie_id, rating, and the rating's epoch as `timestamp` (the recency weights only order by it)."""
    return (current.join(users, on=USER, how="semi")
            .select(USER, "movie_id", "rating", pl.col("epoch").alias("timestamp")))


def with_removed(vectors: pl.DataFrame, users: pl.DataFrame) -> pl.DataFrame:
    """One row per touched user: its new vector, or null when it has none any more (to delete)."""
    return users.join(vectors.select(USER, "vector"), on=USER, how="left").sort(USER)


def removed(frame: pl.DataFrame) -> int:
    return frame["vector"].null_count()
