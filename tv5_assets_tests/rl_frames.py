"""Hand-made ratings and demographics for the RL stage's unit tests."""

from __future__ import annotations

import datetime as dt

import polars as pl

T0 = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)


def at(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


def ratings(rows: list[tuple[int, int, float, float]]) -> pl.DataFrame:
    """(user_id, movie_id, rating, day offset) rows as a frame of the `ratings` contract."""
    return pl.DataFrame(
        [(u, m, r, at(d)) for u, m, r, d in rows],
        schema={"user_id": pl.Int32, "movie_id": pl.Int32, "rating": pl.Float32,
                "timestamp": pl.Datetime("us", "UTC")},
        orient="row",
    )


# user 1: seven ratings in three sessions (a 39-day and a 59-day pause), a same-second tie at day 1;
# user 2: two ratings in the same second, listed with the larger movie id first.
SESSIONS = ratings([
    (1, 10, 0.5, 0), (1, 12, 3.0, 1), (1, 11, 5.0, 1), (1, 13, 4.0, 40), (1, 14, 2.0, 41), (1, 15, 1.0, 41.5),
    (1, 16, 4.5, 100), (2, 21, 3.0, 0), (2, 20, 3.0, 0),
])


def demographics(archetypes: dict[int, str]) -> pl.DataFrame:
    return pl.DataFrame({"user_id": list(archetypes), "archetype": list(archetypes.values())},
                        schema={"user_id": pl.Int32, "archetype": pl.String})
