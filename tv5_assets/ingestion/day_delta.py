"""What one day's delivery changes, against what the stores serve (no Dagster here).

The stores serve the base release plus the *published* version of each delivered day. A day's run computes
its delta against that served state, not against the lake's latest day files: a day whose run failed before
publishing is recomputed whole by its re-run, and a day already published changes nothing when applied again.

Current ratings are defined per user (erasures, latest wins, the order: `days.current_ratings`), so the
current rows of a set of users follow from those users' log rows alone. A day therefore reads only the rows
of the users it can change (its scope) from the 25M-row base, and writes only theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from tv5_assets.ingestion.days import (
    ARRIVAL,
    COUNTS,
    EPOCH,
    LEDGER_SCHEMA,
    LOG_SCHEMA,
    PAIR,
    RATING,
    USER,
    compare_winners,
    day_rows,
    erased_through,
    fate_of_delivered,
    replace_day,
    delivery_scope,
    current_ratings,
    CURRENT_ORDER,
    _in_scope,
    _out_of_scope,
)

CHANGE = "change"
OLD_RATING, OLD_EPOCH = "old_rating", "old_epoch"
CHANGES_SCHEMA: dict[str, pl.DataType] = {
    USER: pl.Int32(), "movie_id": pl.Int32(), CHANGE: pl.String(), OLD_RATING: pl.Float32(), OLD_EPOCH: pl.Int64(),
    RATING: pl.Float32(), EPOCH: pl.Int64(),
}
DELTA_COUNTS = (*(c for c in COUNTS if c != "untouched"), "scope_users", "touched_users", "rows_before", "rows_after")


@dataclass
class DayDelta:
    """One day's delivery against the served state: the users it can change and their rows before and after."""

    users: pl.DataFrame  # USER, sorted: every user whose current rows the delivery can change
    before: pl.DataFrame  # their current rows as served (LOG_SCHEMA, sorted by user_id, epoch, movie_id)
    after: pl.DataFrame  # their current rows with the day applied
    changes: pl.DataFrame  # CHANGES_SCHEMA: per pair whose current row changed, how, and its old and new values
    counts: dict[str, int]  # DELTA_COUNTS

    @property
    def touched_users(self) -> pl.Series:
        """Users whose current rows changed (a subset of the scope: a superseded late rating changes nothing)."""
        return self.changes[USER].unique().sort()

    @property
    def touched_movies(self) -> pl.Series:
        return self.changes["movie_id"].unique().sort()


def _of_users(frame: pl.LazyFrame | pl.DataFrame, users: pl.DataFrame) -> pl.DataFrame:
    joined = frame.lazy().join(users.lazy(), on=USER, how="semi")
    return joined.collect()


def _changes(before: pl.DataFrame, after: pl.DataFrame, through: pl.DataFrame) -> pl.DataFrame:
    """Per changed pair of the scope, how and its old and new values (`before`, `after`: the scope's rows only)."""
    old = before.select(*PAIR, pl.col(RATING).alias(OLD_RATING), pl.col(EPOCH).alias(OLD_EPOCH))
    return (compare_winners(before, after, through)
            .join(old, on=PAIR, how="left")
            .join(after.select(*PAIR, RATING, EPOCH), on=PAIR, how="left")
            .select([pl.col(c).cast(t) for c, t in CHANGES_SCHEMA.items()])
            .sort(PAIR))


def day_delta(base: pl.LazyFrame, published_log: pl.DataFrame, published_ledger: pl.DataFrame, day: date,
              day_ratings: pl.DataFrame, day_erasures: pl.DataFrame) -> DayDelta:
    """Day `day`'s delivery (`day_ratings`, `day_erasures`: its whole new version) against the served state.

    `base` is the base release as rating-log rows (`days.base_log`, lazily: only the scope's rows are read);
    `published_log` and `published_ledger` hold the published version of every delivered day (the served
    version of `day` among them, which the delivery replaces).
    """
    log, ledger = published_log.select(list(LOG_SCHEMA)), published_ledger.select(list(LEDGER_SCHEMA))
    old_rows, old_erased = log.filter(pl.col(ARRIVAL) == day), ledger.filter(pl.col(ARRIVAL) == day)
    new_rows = day_rows(day_ratings, day, LOG_SCHEMA, PAIR)
    new_erased = day_rows(day_erasures, day, LEDGER_SCHEMA, [USER])
    scope_users, scope_pairs = delivery_scope(old_rows, new_rows, old_erased, new_erased)
    users = pl.concat([scope_users, scope_pairs.select(USER)]).unique().sort(USER)

    # the scope's users' whole histories (their vectors and episodes need them); the scope itself, whose winners can
    # change, is their day's pairs and erased users (~100K rows of ~3M for a 100,000-rating day): any other pair keeps
    # its log rows and its user's erasures, so its winner is the same row before and after
    served = pl.concat([_of_users(base.select(list(LOG_SCHEMA)), users), _of_users(log, users)])
    served_ledger = _of_users(ledger, users)
    before = current_ratings(served.lazy(), served_ledger.lazy()).collect()
    applied = replace_day(served.sort(ARRIVAL, maintain_order=True), _of_users(new_rows, users), day)
    applied_ledger = replace_day(served_ledger.sort(ARRIVAL, maintain_order=True), new_erased, day)
    # winners recomputed for the scope only, as `apply_delivery` does: any other pair's winner is unchanged
    scoped = current_ratings(_in_scope(applied, scope_users, scope_pairs).lazy(), applied_ledger.lazy()).collect()
    after = pl.concat([_out_of_scope(before, scope_users, scope_pairs), scoped]).sort(CURRENT_ORDER)

    through = erased_through(applied_ledger.lazy()).collect()
    changes = _changes(_in_scope(before, scope_users, scope_pairs), scoped, through)
    counts = ({name: 0 for name in DELTA_COUNTS} | dict(changes.group_by(CHANGE).len().iter_rows())
              | fate_of_delivered(new_rows.join(old_rows, on=[*PAIR, RATING, EPOCH], how="anti"), scoped, through,
                                   day))
    counts |= {"scope_users": users.height, "touched_users": changes[USER].n_unique(),
               "rows_before": before.height, "rows_after": after.height}
    return DayDelta(users=users, before=before, after=after, changes=changes,
                    counts={name: int(counts[name]) for name in DELTA_COUNTS})


def apply_to_served(published_log: pl.DataFrame, published_ledger: pl.DataFrame, day: date,
                    day_ratings: pl.DataFrame, day_erasures: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The published days once `day`'s delivery is published: its rows and erasures replace the day's."""
    return (replace_day(published_log.select(list(LOG_SCHEMA)).sort(ARRIVAL, maintain_order=True),
                         day_rows(day_ratings, day, LOG_SCHEMA, PAIR), day),
            replace_day(published_ledger.select(list(LEDGER_SCHEMA)).sort(ARRIVAL, maintain_order=True),
                         day_rows(day_erasures, day, LEDGER_SCHEMA, [USER]), day))
