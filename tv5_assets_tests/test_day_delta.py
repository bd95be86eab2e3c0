"""A day's delta against the served state (tv5_assets.ingestion.day_delta): only the scope's users are read
and rewritten, and overlaying each day's delta on the served ratings meets the full rebuild, in any order."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
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


def test_publishing_a_day_swaps_its_version_whole_and_keeps_its_net_row_count(tmp_path):
    from tv5_assets.ingestion import served_days

    folder = served_days.published_folder(tmp_path)
    assert served_days.read_published(folder)[0].is_empty() and served_days.net_rows(folder) == 0
    first = day_rows(D1, (1, 1, 1.5, NOON), (9, 3, 4.0, NOON))
    served_days.publish_day(folder, D1, first, ledger_of(), 1)
    served_days.publish_day(folder, D2, day_rows(D2, (4, 2, 3.0, NOON)), ledger_of((1, D2)), -1)
    corrected = day_rows(D1, (9, 3, 4.0, NOON))  # the correction withdraws user 1's row: one row fewer
    served_days.publish_day(folder, D1, corrected, ledger_of(), 0)
    log, ledger = served_days.read_published(folder)
    assert served_days.published_days(folder) == [D1, D2]
    assert log.select("user_id", "arrival").rows() == [(9, D1), (4, D2)] and ledger.rows() == [(1, D2)]
    assert served_days.net_rows(folder, D1) == 1 and served_days.net_rows(folder) == 0
    assert sorted(p.name for p in folder.iterdir()) == [D1.isoformat(), D2.isoformat()]  # nothing left mid-swap
    with pytest.raises(ValueError, match="another arrival day"):
        served_days.publish_day(folder, D2, first, ledger_of(), 0)


def test_the_day_rules_pass_on_good_frames_and_fail_on_bad_ones():
    from tv5_assets.ingestion import day_rules

    rows = day_rows(D1, (1, 1, 1.5, NOON), (1, 2, 4.0, NOON + 5), (2, 1, 3.0, NOON - 9))
    assert day_rules.arrival_is(rows, D1.isoformat()).passed
    assert not day_rules.arrival_is(rows, D2).passed
    assert day_rules.in_current_order(rows).passed and day_rules.in_current_order(rows.head(0)).passed
    swapped = day_rules.in_current_order(rows.reverse())
    assert not swapped.passed and swapped.metadata["rows_out_of_place"] == 2
    changes = pl.DataFrame({"user_id": [1, 2, 3], "movie_id": [2, 1, 1], "change": ["replaced", "inserted", "erased"],
                            "rating": [4.0, 3.0, None], "epoch": [NOON + 5, NOON - 9, None]},
                           schema_overrides={"user_id": pl.Int32, "movie_id": pl.Int32, "rating": pl.Float32})
    assert day_rules.changes_applied(rows, changes).passed
    lost = day_rules.changes_applied(rows.filter(pl.col("user_id") != 2), changes)
    assert not lost.passed and lost.metadata["changes_missing"] == 1
    kept_erased = day_rules.changes_applied(pl.concat([rows, day_rows(D1, (3, 1, 2.0, NOON))]), changes)
    assert not kept_erased.passed


def test_the_day_watch_hashes_only_changed_files_and_requests_new_or_corrected_days(tmp_path):
    import os

    from tv5_assets.ingestion.day_watch import DayCursor, plan_days

    assert plan_days(tmp_path / "missing", DayCursor()).requests == []
    (tmp_path / "ratings-2024-03-01.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,1709294400\n")
    (tmp_path / "erasures-2024-03-02.csv").write_text("userId\n3\n")
    (tmp_path / "notes.txt").write_text("not a day")
    first = plan_days(tmp_path, DayCursor())
    assert [d.isoformat() for d, _ in first.requests] == ["2024-03-01", "2024-03-02"] and first.hashed == 2
    assert [p.name for p in first.other] == ["notes.txt"]
    cursor = DayCursor.from_json(first.cursor.to_json())  # through the daemon's JSON
    again = plan_days(tmp_path, cursor)
    assert again.requests == [] and again.hashed == 0
    path = tmp_path / "ratings-2024-03-01.csv"
    path.write_text("userId,movieId,rating,timestamp\n1,1,3.5,1709294400\n")  # corrected, same size
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    corrected = plan_days(tmp_path, again.cursor)
    assert [d.isoformat() for d, _ in corrected.requests] == ["2024-03-01"] and corrected.hashed == 1
    assert corrected.requests[0][1] != first.requests[0][1]
