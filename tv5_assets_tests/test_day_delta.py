"""A day's delta against the served state (tv5_assets.ingestion.day_delta): only the scope's users are read
and rewritten, and overlaying each day's delta on the served ratings meets the full rebuild, in any order."""

from __future__ import annotations

from datetime import date

import polars as pl
from polars.testing import assert_frame_equal

from tv5_assets.ingestion.day_delta import CHANGES_SCHEMA, DayDelta, apply_to_served, day_delta
from tv5_assets.ingestion.days import CURRENT_ORDER, apply_delivery, empty_ledger, empty_log
from tv5_assets_tests.test_days_logic import (  # noqa: F401  (module fixtures, shared)
    BASE,
    D1,
    D2,
    NOON,
    day_rows,
    deliveries,
    ledger_of,
    rebuild,
    release,
)


class Served:
    """What the stores serve: the base release and the published version of each day, and the current ratings."""

    def __init__(self, base: pl.DataFrame) -> None:
        self.base, self.log, self.ledger = base, empty_log(), empty_ledger()
        self.current = rebuild(base, empty_ledger())

    def deliver(self, day: date, ratings: pl.DataFrame | None, erasures: pl.DataFrame | None) -> DayDelta:
        """Compute the day's delta, overlay it on the current ratings, and publish the day (None: keep that kind)."""
        ratings = self.log.filter(arrival=day) if ratings is None else ratings
        erasures = self.ledger.filter(arrival=day) if erasures is None else erasures
        delta = day_delta(self.base.lazy(), self.log, self.ledger, day, ratings, erasures)
        assert delta.before.height == self.current.join(delta.users, on="user_id", how="semi").height
        self.current = pl.concat([self.current.join(delta.users, on="user_id", how="anti"), delta.after]
                                 ).sort(CURRENT_ORDER)
        self.log, self.ledger = apply_to_served(self.log, self.ledger, day, ratings, erasures)
        return delta


def test_only_the_scope_is_read_and_the_overlay_meets_the_full_rebuild():
    served = Served(BASE)
    delta = served.deliver(D1, day_rows(D1, (1, 1, 1.5, NOON), (9, 3, 4.0, NOON), (3, 3, 4.0, NOON - 900)), None)
    assert delta.users["user_id"].to_list() == [1, 3, 9]
    assert delta.counts == {"inserted": 1, "replaced": 1, "superseded": 1, "erased_on_arrival": 0,
                            "erased": 0, "withdrawn": 0, "scope_users": 3, "touched_users": 2,
                            "rows_before": 3, "rows_after": 4}
    assert delta.touched_users.to_list() == [1, 9] and delta.touched_movies.to_list() == [1, 3]
    assert delta.changes.schema == pl.Schema(CHANGES_SCHEMA)
    assert delta.changes.select("user_id", "change", "old_rating", "rating").rows() == [
        (1, "replaced", 3.0, 1.5), (9, "inserted", None, 4.0)]
    assert_frame_equal(served.current, rebuild(pl.concat([BASE, served.log]), served.ledger))
    erased = served.deliver(D2, None, ledger_of((1, D2)))
    assert erased.counts["erased"] == 2 and erased.users["user_id"].to_list() == [1]
    assert_frame_equal(served.current, rebuild(pl.concat([BASE, served.log]), served.ledger))


def test_seven_deliveries_in_any_order_meet_the_full_rebuild_and_agree_with_apply_delivery(deliveries):
    named = deliveries.by_name
    for order in (["d1", "d3", "d2", "d4", "d2_corrected", "d5", "d1_erasure"],
                  ["d5", "d1_erasure", "d2_corrected", "d4", "d3", "d1"]):
        served = Served(deliveries.log)
        log, ledger, current = deliveries.log, empty_ledger(), rebuild(deliveries.log, empty_ledger())
        for name in order:
            delta = served.deliver(*named[name])
            full = apply_delivery(current, log, ledger, *named[name])
            log, ledger, current = full.log, full.erasures, full.current
            assert delta.touched_users.to_list() == full.touched_users.to_list(), name
            assert {k: v for k, v in delta.counts.items() if k in full.counts} \
                == {k: v for k, v in full.counts.items() if k != "untouched"}, name
            assert_frame_equal(served.current, current)
        assert_frame_equal(served.current, rebuild(pl.concat([deliveries.log, served.log]), served.ledger))


def test_a_published_day_applied_again_changes_nothing(deliveries):
    named = deliveries.by_name
    served = Served(deliveries.log)
    for name in ("d1", "d2", "d4", "d2_corrected"):
        served.deliver(*named[name])
    for name in ("d1", "d4", "d2_corrected"):
        again = served.deliver(*named[name])
        assert again.users.is_empty() and again.changes.is_empty(), name
        assert set(again.counts.values()) == {0}, name
