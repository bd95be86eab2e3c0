"""Daily rating deliveries: strict day files, the landing folder, the merge rules, and the incremental path
meeting the full rebuild for any order of deliveries (tv5_assets.ingestion.days, tv5_assets.sample.days)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tv5_assets.ingestion.days import (
    BASE_ARRIVAL,
    LEDGER_SCHEMA,
    LOG_SCHEMA,
    DayFile,
    Delivery,
    apply_delivery,
    base_log,
    current_ratings,
    empty_ledger,
    empty_log,
    parse_day_ratings,
    ratings_table,
    read_day_ratings,
    read_erasures,
    scan_days,
)
from tv5_assets.ingestion.errors import MovieLensInputError
from tv5_assets.ingestion.movielens import FIRST_TIMESTAMP, parse_ratings
from tv5_assets.sample.days import epoch_day, hold_back_tail, utc_day, write_days
from tv5_assets.sample.generator import SampleSpec, write_sample_release

MOVIE_IDS = pl.Series("movieId", [1, 2, 3, 10], dtype=pl.Int32)
HEADER = "userId,movieId,rating,timestamp\n"
NOON = 1_709_294_400  # 2024-03-01T12:00:00Z
GOOD = f"1,1,4.0,{NOON}\n"
D1, D2, D3, D4, D5 = (date(2024, 3, d) for d in range(1, 6))
SPEC = SampleSpec(seed=3, movies=300, users=40, ratings=1_600, tags=50, genome_movies=10, genome_tags=20)


def day_file(folder: Path, text: str, name: str = "ratings-2024-03-01.csv") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def log_of(*rows: tuple) -> pl.DataFrame:
    """Rating-log rows (user_id, movie_id, rating, epoch, arrival)."""
    return pl.DataFrame(list(rows), schema=LOG_SCHEMA, orient="row") if rows else empty_log()


def ledger_of(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=LEDGER_SCHEMA, orient="row") if rows else empty_ledger()


def rebuild(log: pl.DataFrame, erasures: pl.DataFrame) -> pl.DataFrame:
    return current_ratings(log.lazy(), erasures.lazy()).collect()


# --------------------------------------------------------------------------- strict reading
def test_reads_a_day_file_with_its_arrival_day_and_file_lines(tmp_path):
    path = day_file(tmp_path, HEADER + GOOD + f"2,10,0.5,{NOON + 60}\n7,3,5.0,{NOON - 86_000}\n")
    rows = read_day_ratings(path, MOVIE_IDS)
    assert rows.schema == pl.Schema(LOG_SCHEMA | {"line": pl.UInt32})
    assert rows.to_dicts() == [
        {"user_id": 1, "movie_id": 1, "rating": 4.0, "epoch": NOON, "arrival": D1, "line": 2},
        {"user_id": 2, "movie_id": 10, "rating": 0.5, "epoch": NOON + 60, "arrival": D1, "line": 3},
        {"user_id": 7, "movie_id": 3, "rating": 5.0, "epoch": NOON - 86_000, "arrival": D1, "line": 4},
    ]


@pytest.mark.parametrize("text", [HEADER, HEADER.rstrip("\n")], ids=["newline", "no_newline"])
def test_a_header_only_day_file_is_an_empty_delivery(tmp_path, text):
    rows = read_day_ratings(day_file(tmp_path, text), MOVIE_IDS)
    assert rows.height == 0
    assert rows.schema == pl.Schema(LOG_SCHEMA | {"line": pl.UInt32})


FUTURE = int(time.time()) + 3 * 86_400
BAD_RATINGS = [
    # (case, file text, first bad line, rule)
    ("header_order", f"userId,movieId,timestamp,rating\n1,1,{NOON},4.0\n", 1, "header"),
    ("header_extra_column", "userId,movieId,rating,timestamp,source\n1,1,4.0,1709294400,web\n", 1, "header"),
    ("header_missing_column", "userId,movieId,rating\n1,1,4.0\n", 1, "required_columns"),
    ("header_semicolons", f"userId;movieId;rating;timestamp\n1;1;4.0;{NOON}\n", 1, "comma_delimiter"),
    ("empty_file", "", 1, "non_empty"),
    ("blank_line", HEADER + GOOD + "\n" + GOOD.replace("1,1,", "2,1,"), 3, "blank_line"),
    ("too_many_fields", HEADER + GOOD + f"2,1,3.0,{NOON},7\n", 3, "field_count"),
    ("too_few_fields", HEADER + GOOD + "2,1,3.0\n", 3, "field_count"),
    ("userId_text", HEADER + GOOD + f"x,1,3.0,{NOON}\n", 3, "userId_not_integer"),
    ("userId_zero", HEADER + GOOD + f"0,1,3.0,{NOON}\n", 3, "userId_not_integer"),
    ("userId_negative", HEADER + GOOD + f"-4,1,3.0,{NOON}\n", 3, "userId_not_integer"),
    ("userId_fraction", HEADER + GOOD + f"1.5,1,3.0,{NOON}\n", 3, "userId_not_integer"),
    ("movieId_text", HEADER + GOOD + f"2,one,3.0,{NOON}\n", 3, "movieId_not_integer"),
    ("movieId_zero", HEADER + GOOD + f"2,0,3.0,{NOON}\n", 3, "movieId_not_integer"),
    ("rating_text", HEADER + GOOD + f"2,1,good,{NOON}\n", 3, "rating_not_numeric"),
    ("rating_missing", HEADER + GOOD + f"2,1,,{NOON}\n", 3, "rating_not_numeric"),
    ("rating_nan", HEADER + GOOD + f"2,1,NaN,{NOON}\n", 3, "rating_not_numeric"),
    ("rating_above_five", HEADER + GOOD + f"2,1,5.5,{NOON}\n", 3, "rating_domain"),
    ("rating_zero", HEADER + GOOD + f"2,1,0.0,{NOON}\n", 3, "rating_domain"),
    ("rating_not_a_half", HEADER + GOOD + f"2,1,3.3,{NOON}\n", 3, "rating_domain"),
    ("timestamp_fraction", HEADER + GOOD + f"2,1,3.0,{NOON}.5\n", 3, "timestamp_not_integer"),
    ("timestamp_text", HEADER + GOOD + "2,1,3.0,yesterday\n", 3, "timestamp_not_integer"),
    ("timestamp_before_movielens", HEADER + GOOD + f"2,1,3.0,{FIRST_TIMESTAMP - 1}\n", 3, "timestamp_range"),
    ("timestamp_in_the_future", HEADER + GOOD + f"2,1,3.0,{FUTURE}\n", 3, "timestamp_range"),
    ("unknown_movie", HEADER + GOOD + f"2,99,3.0,{NOON}\n", 3, "unknown_movie"),
]


@pytest.mark.parametrize(("text", "line", "rule"), [c[1:] for c in BAD_RATINGS], ids=[c[0] for c in BAD_RATINGS])
def test_a_bad_row_refuses_the_whole_day_naming_file_line_and_rule(tmp_path, text, line, rule):
    path = day_file(tmp_path, text)
    loaded = None
    with pytest.raises(MovieLensInputError) as caught:
        loaded = read_day_ratings(path, MOVIE_IDS)
    assert loaded is None
    assert (caught.value.rule, caught.value.line, caught.value.path) == (rule, line, path)
    message = str(caught.value)
    assert "ratings-2024-03-01.csv" in message and f"line {line}" in message and f"'{rule}'" in message


def test_the_refusal_counts_every_bad_row_by_rule_and_names_the_first_bad_line(tmp_path):
    rows = [GOOD, f"2,99,3.0,{NOON}\n", f"3,1,7.0,{NOON}\n", f"4,2,0.2,{NOON}\n", f"5,2,3.0,{NOON}\n"]
    path = day_file(tmp_path, HEADER + "".join(rows))
    with pytest.raises(MovieLensInputError) as caught:
        read_day_ratings(path, MOVIE_IDS)
    assert (caught.value.rule, caught.value.line) == ("unknown_movie", 3)  # the first bad line, not rule order
    assert "3 of 5 rows break a rule {'rating_domain': 2, 'unknown_movie': 1}" in caught.value.detail
    assert f"'2,99,3.0,{NOON}'" in caught.value.detail


def test_a_day_file_must_be_named_by_its_kind_and_a_real_date(tmp_path):
    for name in ("ratings-2024-02-30.csv", "erasures-2024-03-01.csv", "ratings-1970-01-01.csv"):
        with pytest.raises(MovieLensInputError) as caught:
            read_day_ratings(day_file(tmp_path, HEADER + GOOD, name), MOVIE_IDS)
        assert caught.value.rule == "file_name" and name in str(caught.value)


def test_a_pair_repeated_in_a_day_keeps_the_latest_timestamp_then_the_later_line(tmp_path):
    path = day_file(tmp_path, HEADER + "".join([
        f"1,1,2.0,{NOON}\n",        # line 2: older
        f"1,1,3.0,{NOON + 9}\n",    # line 3: latest timestamp, tied with line 5
        f"2,2,4.0,{NOON}\n",        # line 4
        f"1,1,4.5,{NOON + 9}\n",    # line 5: same timestamp as line 3, later line: wins
        f"2,2,4.0,{NOON}\n",        # line 6: identical to line 4, later line: wins
    ]))
    parsed = parse_day_ratings(path, MOVIE_IDS)
    assert parsed.kept.select("user_id", "movie_id", "rating", "line").rows() == [(1, 1, 4.5, 5), (2, 2, 4.0, 6)]
    assert parsed.rejected_by_rule() == {"duplicate_key": 2, "duplicate_row": 1}
    assert parsed.rejected["line"].to_list() == [2, 3, 4]
    assert parsed.rows_read == {path.name: 5} and parsed.rows_valid == {path.name: 2}


def test_erasures_collapse_repeats_and_carry_their_day(tmp_path):
    path = day_file(tmp_path, "userId\n5\n3\n5\n", "erasures-2024-03-02.csv")
    assert read_erasures(path).rows() == [(3, D2), (5, D2)]
    assert read_erasures(path).schema == pl.Schema(LEDGER_SCHEMA)
    assert read_erasures(day_file(tmp_path, "userId\n", "erasures-2024-03-03.csv")).height == 0


@pytest.mark.parametrize(("text", "line", "rule"), [
    ("userId,reason\n5,asked\n", 1, "header"),
    ("user_id\n5\n", 1, "required_columns"),
    ("userId\n5\nabc\n", 3, "userId_not_integer"),
    ("userId\n5\n-2\n", 3, "userId_not_integer"),
    ("userId\n5\n6,7\n", 3, "field_count"),
    ("userId\n5\n\n6\n", 3, "blank_line"),
], ids=["header", "missing_column", "text", "negative", "field_count", "blank_line"])
def test_a_bad_erasures_file_is_refused_whole(tmp_path, text, line, rule):
    path = day_file(tmp_path, text, "erasures-2024-03-02.csv")
    loaded = None
    with pytest.raises(MovieLensInputError) as caught:
        loaded = read_erasures(path)
    assert loaded is None
    assert (caught.value.rule, caught.value.line) == (rule, line)
    assert "erasures-2024-03-02.csv" in str(caught.value) and f"line {line}" in str(caught.value)


# --------------------------------------------------------------------------- the landing folder
def test_scan_days_sorts_day_files_by_day_then_kind_and_reports_the_rest(tmp_path):
    folder = tmp_path / "days"
    assert scan_days(folder) == ([], [])
    folder.mkdir()
    for name in ("ratings-2024-03-02.csv", "ratings-2024-03-01.csv", "erasures-2024-03-01.csv"):
        (folder / name).write_text(HEADER + name + "\n")
    for name in ("notes.txt", "ratings-2024-02-30.csv", "ratings-2024-3-1.csv", "tags-2024-03-01.csv"):
        (folder / name).write_text("x")
    (folder / "ratings-2024-03-04.csv.d").mkdir()
    found, other = scan_days(folder)
    assert [(f.kind, f.day, f.path.name) for f in found] == [
        ("erasures", D1, "erasures-2024-03-01.csv"),
        ("ratings", D1, "ratings-2024-03-01.csv"),
        ("ratings", D2, "ratings-2024-03-02.csv"),
    ]
    assert found[1].checksum == hashlib.sha256((folder / "ratings-2024-03-01.csv").read_bytes()).hexdigest()
    assert [p.name for p in other] == ["notes.txt", "ratings-2024-02-30.csv", "ratings-2024-03-04.csv.d",
                                       "ratings-2024-3-1.csv", "tags-2024-03-01.csv"]


def test_the_run_key_changes_with_a_corrected_redelivery_not_with_a_repeat(tmp_path):
    path = day_file(tmp_path, HEADER + GOOD)
    first = scan_days(tmp_path)[0][0]
    assert first.run_key == f"ratings-2024-03-01.csv:{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}"
    path.write_text(HEADER + GOOD)  # the same bytes delivered again
    assert scan_days(tmp_path)[0][0].run_key == first.run_key
    path.write_text(HEADER + GOOD.replace("4.0", "4.5"))  # corrected
    assert scan_days(tmp_path)[0][0].run_key != first.run_key
    assert DayFile(tmp_path / "ratings-2024-03-02.csv", "ratings", D2, first.checksum).run_key != first.run_key


# --------------------------------------------------------------------------- the merge rules, full rebuild
def test_an_erasure_covers_rows_arriving_on_or_before_it_and_a_returning_user_stays():
    log = log_of(
        (1, 1, 4.0, NOON, BASE_ARRIVAL),
        (1, 2, 4.0, NOON + 1, D1),
        (1, 3, 4.0, NOON + 2, D2),  # arrives the day of the erasure: erased
        (1, 4, 4.0, NOON + 3, D3),  # arrives after it: a returning user
        (2, 1, 3.0, NOON, BASE_ARRIVAL),
    )
    current = rebuild(log, ledger_of((1, D2)))
    assert current.select("user_id", "movie_id").rows() == [(1, 4), (2, 1)]
    # a later erasure of the same user covers the return too; the latest erasure is what counts
    assert rebuild(log, ledger_of((1, D2), (1, D3)))["user_id"].to_list() == [2]


def test_the_latest_epoch_wins_and_a_late_older_rating_loses():
    log = log_of(
        (1, 1, 3.0, NOON + 100, BASE_ARRIVAL),
        (1, 1, 1.0, NOON + 50, D2),  # arrives later but is older: loses
        (2, 1, 3.0, NOON, BASE_ARRIVAL),
        (2, 1, 5.0, NOON + 10, D1),  # a re-rating: wins
    )
    assert rebuild(log, empty_ledger()).select("user_id", "rating", "arrival").rows() == [
        (1, 3.0, BASE_ARRIVAL), (2, 5.0, D1)]


def test_on_equal_epochs_the_later_arrival_wins():
    log = log_of((1, 1, 2.0, NOON, D2), (1, 1, 4.0, NOON, D3), (1, 1, 3.0, NOON, D1))
    assert rebuild(log, empty_ledger()).select("rating", "arrival").rows() == [(4.0, D3)]


def test_current_ratings_are_sorted_by_user_then_epoch_then_movie():
    log = log_of((2, 5, 3.0, NOON, D1), (1, 9, 3.0, NOON + 5, D1), (1, 7, 3.0, NOON + 5, D1),
                 (1, 8, 3.0, NOON + 1, BASE_ARRIVAL))
    current = rebuild(log, empty_ledger())
    assert current.select("user_id", "movie_id").rows() == [(1, 8), (1, 7), (1, 9), (2, 5)]
    assert current.schema == pl.Schema(LOG_SCHEMA)
    assert rebuild(empty_log(), empty_ledger()).schema == pl.Schema(LOG_SCHEMA)


def test_the_base_release_enters_the_log_on_the_base_arrival_and_converts_back(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text(HEADER + f"1,1,4.0,{NOON}\n2,3,0.5,{NOON + 7}\n")
    ratings = parse_ratings(path, MOVIE_IDS).kept
    log = base_log(ratings)
    assert log.schema == pl.Schema(LOG_SCHEMA)
    assert log["arrival"].unique().to_list() == [BASE_ARRIVAL]
    assert log["epoch"].to_list() == [NOON, NOON + 7]
    assert_frame_equal(ratings_table(rebuild(log, empty_ledger())), ratings)


# --------------------------------------------------------------------------- the incremental path
BASE = log_of(
    (1, 1, 3.0, NOON - 500, BASE_ARRIVAL), (1, 2, 4.0, NOON - 400, BASE_ARRIVAL),
    (2, 1, 2.0, NOON - 300, BASE_ARRIVAL), (3, 3, 5.0, NOON - 200, BASE_ARRIVAL),
)


def day_rows(day: date, *rows: tuple) -> pl.DataFrame:
    return log_of(*[(*row, day) for row in rows])


def deliver(state: Delivery | None, day: date, ratings: pl.DataFrame | None = None,
            erasures: pl.DataFrame | None = None) -> Delivery:
    """Apply a delivery to a state (None: the base release alone) and check the bookkeeping."""
    log, ledger = (BASE, empty_ledger()) if state is None else (state.log, state.erasures)
    current = rebuild(log, ledger) if state is None else state.current
    done = apply_delivery(current, log, ledger, day, ratings, erasures)
    c = done.counts
    assert done.current.height == current.height + c["inserted"] - c["erased"] - c["withdrawn"]
    assert c["untouched"] == done.current.filter(~pl.col("user_id").is_in(done.touched_users.implode())).height
    assert_frame_equal(done.current, rebuild(done.log, done.erasures))
    return done


def test_a_new_users_ratings_are_inserted():
    done = deliver(None, D1, day_rows(D1, (9, 3, 4.0, NOON), (9, 1, 2.5, NOON + 1)))
    assert done.counts == {"inserted": 2, "replaced": 0, "superseded": 0, "erased_on_arrival": 0, "erased": 0,
                           "withdrawn": 0, "untouched": 4}
    assert done.touched_users.to_list() == [9] and done.touched_movies.to_list() == [1, 3]


def test_a_rerating_replaces_the_winner():
    done = deliver(None, D1, day_rows(D1, (1, 1, 1.5, NOON)))
    assert (done.counts["replaced"], done.counts["inserted"], done.counts["untouched"]) == (1, 0, 2)
    assert done.current.filter(user_id=1, movie_id=1).select("rating", "arrival").rows() == [(1.5, D1)]
    assert done.touched_users.to_list() == [1] and done.touched_movies.to_list() == [1]


def test_the_same_stars_given_again_later_replace_the_winner():
    done = deliver(None, D1, day_rows(D1, (1, 1, 3.0, NOON)))  # base row (1, 1) has 3.0 too, earlier
    assert done.counts["replaced"] == 1 and done.touched_users.to_list() == [1]
    assert done.current.filter(user_id=1, movie_id=1).select("epoch", "arrival").rows() == [(NOON, D1)]


def test_a_late_rating_older_than_the_loaded_one_is_superseded_and_changes_nothing():
    before = rebuild(BASE, empty_ledger())
    done = deliver(None, D1, day_rows(D1, (1, 1, 1.0, NOON - 900)))
    assert done.counts["superseded"] == 1 and done.touched_users.is_empty()
    assert_frame_equal(done.current, before)
    assert done.log.filter(arrival=D1).height == 1  # kept in the log: a later correction may need it


def test_a_corrected_redelivery_replaces_the_whole_day():
    first = deliver(None, D1, day_rows(D1, (9, 1, 4.0, NOON), (1, 1, 1.5, NOON), (2, 2, 3.0, NOON)))
    corrected = day_rows(D1, (2, 2, 3.5, NOON), (3, 1, 4.0, NOON))
    done = deliver(first, D1, corrected)
    # (9,1) withdrawn; (1,1) falls back to the base row; (2,2) re-rated; (3,1) new
    assert {k: v for k, v in done.counts.items() if v and k != "untouched"} == {
        "withdrawn": 1, "replaced": 2, "inserted": 1}
    assert done.current.filter(user_id=1, movie_id=1).select("rating", "arrival").rows() == [(3.0, BASE_ARRIVAL)]
    assert_frame_equal(done.log.filter(arrival=D1), corrected)
    assert done.touched_users.to_list() == [1, 2, 3, 9]


def test_an_erasure_removes_the_users_rows_up_to_its_day_applied_in_any_order():
    later = deliver(None, D3, day_rows(D3, (1, 3, 4.0, NOON + 9)))
    done = deliver(later, D2, None, ledger_of((1, D2)))  # the erasure arrives after a later day was applied
    assert done.counts["erased"] == 2 and done.touched_users.to_list() == [1]
    assert done.current.filter(user_id=1).select("movie_id", "arrival").rows() == [(3, D3)]
    assert done.touched_movies.to_list() == [1, 2]


def test_an_erased_users_earlier_day_applied_late_never_comes_back():
    erased = deliver(None, D2, None, ledger_of((1, D2)))
    done = deliver(erased, D1, day_rows(D1, (1, 3, 5.0, NOON), (9, 3, 5.0, NOON)))
    assert (done.counts["erased_on_arrival"], done.counts["inserted"]) == (1, 1)
    assert done.current.filter(user_id=1).is_empty()


def test_a_withdrawn_erasure_brings_the_rows_back():
    erased = deliver(None, D2, None, ledger_of((1, D2), (3, D2)))
    done = deliver(erased, D2, None, ledger_of((3, D2)))
    assert done.counts["inserted"] == 2 and done.touched_users.to_list() == [1]
    assert done.current.filter(user_id=1).height == 2 and done.current.filter(user_id=3).is_empty()


def test_a_returning_users_rating_dropped_by_a_correction_is_withdrawn_not_erased():
    back = deliver(deliver(None, D1, None, ledger_of((1, D1))), D3, day_rows(D3, (1, 3, 4.0, NOON)))
    assert (back.counts["inserted"], back.counts["erased_on_arrival"]) == (1, 0)  # arrived after the erasure
    done = deliver(back, D3, day_rows(D3))  # day 3 corrected to nothing
    assert (done.counts["withdrawn"], done.counts["erased"]) == (1, 0)
    assert done.current.filter(user_id=1).is_empty()


def test_an_erasure_added_by_a_redelivery_erases_the_days_unchanged_rows():
    first = deliver(None, D1, day_rows(D1, (9, 1, 4.0, NOON)))
    done = deliver(first, D1, day_rows(D1, (9, 1, 4.0, NOON)), ledger_of((9, D1)))
    assert (done.counts["erased"], done.counts["erased_on_arrival"]) == (1, 0)  # the row was not delivered anew
    assert done.touched_users.to_list() == [9] and done.current.filter(user_id=9).is_empty()


def test_none_keeps_what_was_delivered_of_that_kind():
    both = deliver(None, D1, day_rows(D1, (9, 1, 4.0, NOON)), ledger_of((2, D1)))
    ratings_only = deliver(both, D1, day_rows(D1, (9, 2, 4.0, NOON)), None)
    assert ratings_only.erasures.rows() == [(2, D1)]
    erasures_only = deliver(both, D1, None, empty_ledger())
    assert erasures_only.log.filter(arrival=D1).select("user_id", "movie_id").rows() == [(9, 1)]
    assert erasures_only.erasures.is_empty() and erasures_only.counts["inserted"] == 1  # user 2 back


def test_a_repeated_delivery_changes_nothing():
    ratings = day_rows(D2, (9, 1, 4.0, NOON), (1, 2, 1.0, NOON), (2, 1, 1.0, NOON - 900), (3, 1, 2.0, NOON))
    erasures = ledger_of((3, D2))
    once = deliver(deliver(None, D1, day_rows(D1, (2, 3, 4.0, NOON))), D2, ratings, erasures)
    assert {k: v for k, v in once.counts.items() if k != "untouched"} == {
        "inserted": 1, "replaced": 1, "superseded": 1, "erased_on_arrival": 1, "erased": 1, "withdrawn": 0}
    twice = deliver(once, D2, ratings, erasures)
    assert twice.counts == {"inserted": 0, "replaced": 0, "superseded": 0, "erased_on_arrival": 0, "erased": 0,
                            "withdrawn": 0, "untouched": once.current.height}
    assert twice.touched_users.is_empty() and twice.touched_movies.is_empty()
    for name in ("log", "erasures", "current"):
        assert_frame_equal(getattr(twice, name), getattr(once, name))


def test_only_the_changed_pairs_and_users_are_recomputed():
    log = BASE
    current = rebuild(log, empty_ledger())
    marked = current.with_columns(  # a value no rebuild would give: it survives only if user 3 is left alone
        pl.when(pl.col("user_id") == 3).then(pl.lit(0.5, dtype=pl.Float32)).otherwise(pl.col("rating")).alias("rating"))
    done = apply_delivery(marked, log, empty_ledger(), D1, day_rows(D1, (1, 1, 2.0, NOON)), ledger_of((2, D1)))
    assert done.current.filter(user_id=3)["rating"].to_list() == [0.5]
    assert done.current.filter(user_id=1, movie_id=2)["rating"].to_list() == [4.0]
    assert done.counts["untouched"] == 1  # user 3's row: user 1 is touched, all its rows count as touched


def test_apply_delivery_refuses_inconsistent_input():
    current = rebuild(BASE, empty_ledger())
    with pytest.raises(ValueError, match="base release"):
        apply_delivery(current, BASE, empty_ledger(), BASE_ARRIVAL, day_rows(D1, (9, 1, 4.0, NOON)), None)
    with pytest.raises(ValueError, match="another arrival"):
        apply_delivery(current, BASE, empty_ledger(), D2, day_rows(D1, (9, 1, 4.0, NOON)), None)
    with pytest.raises(ValueError, match="repeat"):
        apply_delivery(current, BASE, empty_ledger(), D1, day_rows(D1, (9, 1, 4.0, NOON), (9, 1, 3.0, NOON)), None)


# --------------------------------------------------------------------------- generated day files
@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("release")
    write_sample_release(folder, SPEC)
    return folder


def movie_ids(release_dir: Path) -> pl.Series:
    return pl.read_csv(release_dir / "movies.csv", columns=["movieId"])["movieId"]


def test_write_days_is_deterministic_for_a_seed(release, tmp_path):
    def written(folder: str, seed: int) -> list[bytes]:
        return [p.read_bytes() for p in write_days(release, tmp_path / folder, 3, 40, 8, 2, seed=seed, erase=2)]

    assert written("a", 5) == written("b", 5)
    assert written("a", 5) != written("c", 6)


def test_write_days_continues_the_release(release, tmp_path):
    past = pl.read_csv(release / "ratings.csv")
    last, first_new = int(past["timestamp"].max()), int(past["userId"].max()) + 1
    paths = write_days(release, tmp_path / "days", 4, 200, 12, 3, seed=9, erase=3)
    start = utc_day(last) + timedelta(days=1)
    arrivals = [start + timedelta(days=i) for i in range(4)]
    assert [p.name for p in paths] == [f"ratings-{d}.csv" for d in arrivals] + [f"erasures-{arrivals[-1]}.csv"]
    assert [(f.kind, f.day) for f in scan_days(tmp_path / "days")[0]] == sorted(
        [("ratings", d) for d in arrivals] + [("erasures", arrivals[-1])], key=lambda k: (k[1], k[0]))
    seen, rerated, returning_rows, new_ids = past.select("userId", "movieId"), 0, 0, []
    for day, path in zip(arrivals, paths):
        rows = read_day_ratings(path, movie_ids(release))  # the strict reader accepts it whole
        assert rows.height == 200 and rows["user_id"].n_unique() == 12
        assert rows["epoch"].min() >= max(epoch_day(day), last + 1) and rows["epoch"].max() < epoch_day(day) + 86_400
        assert ((rows["rating"] * 2).round() == rows["rating"] * 2).all() and rows["rating"].is_between(0.5, 5).all()
        returning = rows.filter(pl.col("user_id").is_in(seen["userId"].unique().implode()))
        new_ids.append(set(rows["user_id"].to_list()) - set(seen["userId"].to_list()))
        assert len(new_ids[-1]) == 3 and min(new_ids[-1]) >= first_new
        returning_rows += returning.height
        rerated += returning.join(seen, left_on=["user_id", "movie_id"], right_on=["userId", "movieId"],
                                  how="semi").height
        seen = pl.concat([seen, rows.select(pl.col("user_id").alias("userId"), pl.col("movie_id").alias("movieId"))],
                         how="vertical_relaxed")
    assert all(min(b) > max(a) for a, b in zip(new_ids, new_ids[1:]))  # fresh ids every day
    assert 0.02 <= rerated / returning_rows <= 0.09  # about 5 % re-ratings, no chance ones
    erased = read_erasures(paths[-1])
    assert erased.height == 3 and erased["user_id"].is_in(past["userId"].implode()).all()


def test_write_days_on_the_releases_last_day_stays_after_its_last_rating(release, tmp_path):
    last = int(pl.read_csv(release / "ratings.csv")["timestamp"].max())
    (path,) = write_days(release, tmp_path, [utc_day(last)], 50, 5, 1, seed=2)
    stamps = pl.read_csv(path)["timestamp"]
    assert path.name == f"ratings-{utc_day(last)}.csv"
    assert stamps.min() > last and stamps.max() < epoch_day(utc_day(last)) + 86_400


def test_write_days_refuses_impossible_sizes_and_days(release, tmp_path):
    with pytest.raises(ValueError, match="new_users"):
        write_days(release, tmp_path, 1, 10, 5, 6, seed=1)
    with pytest.raises(ValueError, match="users_per_day"):
        write_days(release, tmp_path, 1, 4, 5, 0, seed=1)
    with pytest.raises(ValueError, match="before the release"):
        write_days(release, tmp_path, [date(2001, 1, 1)], 10, 5, 1, seed=1)


@dataclass
class Deliveries:
    """A base state and named deliveries (day, ratings or None, erasures or None) over the sample."""

    log: pl.DataFrame
    by_name: dict[str, tuple[date, pl.DataFrame | None, pl.DataFrame | None]]


@pytest.fixture(scope="module")
def deliveries(release, tmp_path_factory) -> Deliveries:
    folder = tmp_path_factory.mktemp("days")
    paths = write_days(release, folder, 4, 80, 10, 2, seed=21, erase=3)
    ids = movie_ids(release)
    days = [read_day_ratings(p, ids) for p in paths[:4]]
    erasures = read_erasures(paths[4])
    base = base_log(parse_ratings(release / "ratings.csv", ids).kept)
    d1, d2, d3, d4 = (d["arrival"][0] for d in days)
    d5 = d4 + timedelta(days=1)
    # the correction of day 2: five rows dropped, five re-rated, and three added
    old_base = base.sort("user_id", "movie_id").row(0, named=True)
    shared = days[2].row(0, named=True)
    additions = day_rows(
        d2,
        (999_999, shared["movie_id"], 4.0, epoch_day(d2) + 5),  # a new user
        (shared["user_id"], shared["movie_id"], 1.0, epoch_day(d2) + 7),  # older than its day-3 rating: loses
        (old_base["user_id"], old_base["movie_id"], 0.5, old_base["epoch"] - 1),  # older than the base's: loses
    )
    body = days[1].drop("line")
    corrected = pl.concat([
        body.slice(5, 5).with_columns((5.5 - pl.col("rating")).alias("rating")), body.slice(10), additions,
    ]).unique(["user_id", "movie_id"], keep="last", maintain_order=True)
    # an erased user: rates on the erasure's day (erased) and the day after (a returning user, kept)
    back = int(erasures["user_id"][0])
    on_erasure_day = pl.concat([days[3].drop("line"), day_rows(d4, (back, ids[-1], 2.0, epoch_day(d4) + 30))]
                               ).unique(["user_id", "movie_id"], keep="last", maintain_order=True)
    returning = day_rows(d5, (back, ids[0], 3.0, epoch_day(d5) + 10), (back, ids[1], 4.0, epoch_day(d5) + 20))
    assert corrected.height > 70 and not erasures.is_empty()
    return Deliveries(base, {
        "d1": (d1, days[0], None), "d2": (d2, days[1], None), "d3": (d3, days[2], None),
        "d4": (d4, on_erasure_day, erasures), "d2_corrected": (d2, corrected, None), "d5": (d5, returning, None),
        "d1_erasure": (d1, None, ledger_of((int(days[1].join(base, on="user_id", how="semi")["user_id"][0]), d1))),
    })


def replay(base: pl.DataFrame, steps: list[tuple[date, pl.DataFrame | None, pl.DataFrame | None]]) -> tuple:
    log, ledger = base, empty_ledger()
    current, counts = rebuild(log, ledger), []
    for day, ratings, erasures in steps:
        done = apply_delivery(current, log, ledger, day, ratings, erasures)
        assert done.current.height == current.height + done.counts["inserted"] - done.counts["erased"] \
            - done.counts["withdrawn"]
        log, ledger, current = done.log, done.erasures, done.current
        counts.append(done.counts)
    return log, ledger, current, counts


def test_any_order_of_deliveries_meets_the_full_rebuild(deliveries):
    named = deliveries.by_name
    in_order = ["d1", "d3", "d2", "d4", "d2_corrected", "d5", "d1_erasure"]  # day 2 late, then corrected
    shuffled = ["d5", "d1_erasure", "d2_corrected", "d4", "d3", "d1"]
    log, ledger, current, counts = replay(deliveries.log, [named[n] for n in in_order])
    assert_frame_equal(current, rebuild(log, ledger))
    other_log, other_ledger, other, _ = replay(deliveries.log, [named[n] for n in shuffled])
    assert_frame_equal(other, current)
    order = ["arrival", "user_id", "movie_id"]
    assert_frame_equal(other_log.sort(order), log.sort(order))
    assert_frame_equal(other_ledger.sort("arrival", "user_id"), ledger.sort("arrival", "user_id"))
    # every kind of change happened somewhere along the way
    total = {k: sum(c[k] for c in counts) for k in counts[0]}
    assert all(total[k] > 0 for k in ("inserted", "replaced", "superseded", "erased", "withdrawn")), total
    # the returning user's day-5 ratings stay, their day-4 rating is erased
    back = int(named["d5"][1]["user_id"][0])
    assert current.filter(user_id=back)["arrival"].unique().to_list() == [named["d5"][0]]


def test_replaying_a_delivery_twice_changes_nothing(deliveries):
    named = deliveries.by_name
    log, ledger, current, _ = replay(deliveries.log, [named[n] for n in ("d1", "d2", "d3", "d4")])
    middle = apply_delivery(current, log, ledger, *named["d2"])  # a day in the middle of the log, again
    assert middle.counts["untouched"] == current.height and middle.touched_users.is_empty()
    assert_frame_equal(middle.log, log)
    assert_frame_equal(middle.current, current)
    for name in ("d2_corrected", "d5", "d1_erasure"):
        first = apply_delivery(current, log, ledger, *named[name])
        again = apply_delivery(first.current, first.log, first.erasures, *named[name])
        assert again.counts == {k: (first.current.height if k == "untouched" else 0) for k in again.counts}, name
        assert again.touched_users.is_empty()
        for frame in ("log", "erasures", "current"):
            assert_frame_equal(getattr(again, frame), getattr(first, frame))


# --------------------------------------------------------------------------- a release's tail replayed
def replay_tail(release_dir: Path, tmp_path: Path, days: int) -> tuple[pl.DataFrame, list[Path]]:
    """Hold back the tail, ingest the rest as the base, apply the tail day by day: the ratings table."""
    paths = hold_back_tail(release_dir, tmp_path / "release", tmp_path / "days", days)
    ids = movie_ids(release_dir)
    log, ledger = base_log(parse_ratings(tmp_path / "release" / "ratings.csv", ids).kept), empty_ledger()
    current = rebuild(log, ledger)
    for day_file_ in scan_days(tmp_path / "days")[0]:
        done = apply_delivery(current, log, ledger, day_file_.day, read_day_ratings(day_file_.path, ids), None)
        log, ledger, current = done.log, done.erasures, done.current
    return ratings_table(current), paths


def test_hold_back_tail_splits_the_release_by_the_ratings_own_days(release, tmp_path):
    original = (release / "ratings.csv").read_text().splitlines()
    rated_days = sorted({utc_day(int(line.rsplit(",", 1)[1])) for line in original[1:]})
    first_held = rated_days[-5]  # hold back from a day that has ratings, so the boundary is tested
    table, paths = replay_tail(release, tmp_path, (rated_days[-1] - first_held).days + 1)
    assert [p.name for p in paths] == [f"ratings-{d}.csv" for d in rated_days[-5:]]
    kept = (tmp_path / "release" / "ratings.csv").read_text().splitlines()
    held = [line for p in paths for line in p.read_text().splitlines()[1:]]
    assert kept[0] == original[0] and sorted(kept[1:] + held) == sorted(original[1:])
    assert max(int(line.rsplit(",", 1)[1]) for line in kept[1:]) < epoch_day(first_held)
    for path in paths:
        stamps = pl.read_csv(path)["timestamp"].to_numpy()
        assert {str(utc_day(int(s))) for s in stamps} == {path.name[len("ratings-"):-len(".csv")]}
    for name in ("movies.csv", "links.csv", "tags.csv", "genome-scores.csv"):
        assert (tmp_path / "release" / name).read_bytes() == (release / name).read_bytes()
    assert_frame_equal(table, parse_ratings(release / "ratings.csv", movie_ids(release)).kept)


@pytest.mark.realdata
def test_replaying_ml_latest_smalls_last_month_rebuilds_its_ratings(ml_latest_small, tmp_path):
    table, paths = replay_tail(ml_latest_small, tmp_path, 30)
    assert len(paths) >= 2
    assert_frame_equal(table, parse_ratings(ml_latest_small / "ratings.csv", movie_ids(ml_latest_small)).kept)


@pytest.mark.realdata
def test_write_days_continues_ml_latest_small(ml_latest_small, tmp_path):
    paths = write_days(ml_latest_small, tmp_path, 2, 300, 30, 5, seed=1, erase=4)
    ids = movie_ids(ml_latest_small)
    assert [read_day_ratings(p, ids).height for p in paths[:2]] == [300, 300]
    assert read_erasures(paths[2]).height == 4
    past = pl.read_csv(ml_latest_small / "ratings.csv")
    for path in paths[:2]:
        users = pl.read_csv(path)["userId"].unique().to_numpy()
        assert len(users) == 30 and np.sum(users > past["userId"].max()) == 5
        assert pl.read_csv(path)["timestamp"].min() > past["timestamp"].max()
