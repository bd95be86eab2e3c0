"""Published days keep their people (pure: the day assets' own functions on a small generated release, the
published folder on disk, no store): a user a day brought in keeps the person that day drew when another day
touches them, in either order of application; a re-delivery of a day draws its own users again; the people a day
publishes read back."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tv5_assets.ingestion import movielens, served_days
from tv5_assets.ingestion.days import base_log, empty_ledger, empty_log, ratings_table
from tv5_assets.release.day_publish import DayInputs, touched_profiles, with_kept_people
from tv5_assets.rl.day_episodes import touched_episodes
from tv5_assets.rl.day_policies import day_policy_rows
from tv5_assets.rl.transitions import DEFAULT_SESSION_GAP
from tv5_assets.sample.generator import SampleSpec, write_sample_release
from tv5_assets.synthetic import day_people
from tv5_assets.synthetic.archetypes import TARGET_SHARES
from tv5_assets.synthetic.demographics import build_demographics

SPEC = SampleSpec(seed=11, movies=600, users=250, ratings=12_000, tags=50, genome_movies=10, genome_tags=50)
SEED = 97
DAY_A, DAY_B = date(2024, 3, 1), date(2024, 3, 2)


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A generated release split by user: the base's people (the first 150 users), day A's new users (the next 50),
    day B's new users (the next 30) and the users both days touch (the first 20 of A's new users)."""
    paths = write_sample_release(tmp_path_factory.mktemp("release"), SPEC)
    movies = movielens.parse_movies(paths["movies.csv"], paths["links.csv"]).kept
    current = base_log(movielens.parse_ratings(paths["ratings.csv"], movies["movie_id"]).kept)
    ids = current["user_id"].unique().sort().to_list()
    base, a_new, b_new = ids[:150], ids[150:200], ids[200:230]
    people = build_demographics(ratings_table(current.filter(pl.col("user_id").is_in(base))), movies, SEED).users
    return {"movies": movies, "current": current, "people": people, "base": base, "a_new": a_new, "b_new": b_new,
            "shared": a_new[:20], "a_touched": [base[0], *a_new], "b_touched": [base[1], *a_new[:20], *b_new]}


@pytest.fixture
def lake(tmp_path: Path, release: dict) -> Path:
    release["people"].write_parquet(tmp_path / "demographics.parquet")
    return tmp_path


def scope(release: dict, users: list[int]) -> pl.DataFrame:
    """`day_user_ratings` of a day touching `users`: their whole current ratings."""
    return release["current"].filter(pl.col("user_id").is_in(users))


def run_day(lake: Path, release: dict, day: date, users: list[int]) -> dict[str, pl.DataFrame]:
    """What a day's run touching `users` computes of people, with the day assets' functions: `day_demographics`
    (the new people), `day_policies`' archetypes and `day_release`'s User profiles; then the day is published with
    the people it keeps (`day_publish.with_kept_people`, as `day_publish.publish` does)."""
    demographics = pl.scan_parquet(lake / "demographics.parquet")
    current = scope(release, users)
    touched = current.select("user_id").unique()
    changes = touched.with_columns(pl.lit("inserted").alias("change"))
    elsewhere = day_people.published_elsewhere(lake, day, demographics)
    served = day_people.served_people(demographics, elsewhere, touched)
    new = day_people.new_people(current, served, release["movies"], SEED, TARGET_SHARES).users
    steps = touched_episodes(current, touched, DEFAULT_SESSION_GAP)
    policies = day_policy_rows(steps, demographics, elsewhere, new)
    profiles = touched_profiles(demographics, changes, elsewhere, new)
    none = pl.DataFrame()
    inputs = with_kept_people(lake, DayInputs(day, changes, current, none, none, profiles, steps, policies,
                                              empty_log(), empty_ledger(), people=new))
    served_days.publish_day(served_days.published_folder(lake), day, empty_log(), empty_ledger(), 0,
                            people=inputs.people)
    return {"new": new, "policies": policies, "profiles": profiles, "published": inputs.people}


def rows_of(frame: pl.DataFrame, users: list[int]) -> pl.DataFrame:
    return frame.filter(pl.col("user_id").is_in(users)).sort("user_id")


def served_state(runs: list[dict[str, pl.DataFrame]]) -> pl.DataFrame:
    """The User profiles the stores hold after the runs, in order: each run sets its touched users' rows."""
    state = pl.concat([run["profiles"] for run in reversed(runs)])
    return state.unique("user_id", keep="first", maintain_order=True).sort("user_id")


def test_a_later_day_keeps_the_people_an_earlier_published_day_drew(lake: Path, release: dict) -> None:
    shared, a_new, b_new = release["shared"], release["a_new"], release["b_new"]
    a = run_day(lake, release, DAY_A, release["a_touched"])
    assert a["new"]["user_id"].to_list() == a_new
    b = run_day(lake, release, DAY_B, release["b_touched"])
    assert b["new"]["user_id"].to_list() == b_new  # A's users are not new on B, nor redrawn
    assert_frame_equal(rows_of(b["profiles"], shared), rows_of(a["new"], shared))  # the whole person, not only
    assert_frame_equal(rows_of(b["policies"], shared).select("user_id", "archetype"),
                       rows_of(a["new"], shared).select("user_id", "archetype"))
    base_user = release["base"][1]
    assert_frame_equal(rows_of(b["profiles"], [base_user]), rows_of(release["people"], [base_user]))
    assert_frame_equal(rows_of(b["profiles"], b_new), b["new"])
    assert b["profiles"]["user_id"].to_list() == sorted(release["b_touched"])
    # the test has teeth: drawn again over B's new users (the served people read from the base alone, as before),
    # some of A's users would change archetype
    base_only = day_people.new_people(scope(release, release["b_touched"]), release["people"].select("user_id"),
                                      release["movies"], SEED, TARGET_SHARES).users
    redrawn = rows_of(base_only, shared).join(rows_of(a["new"], shared), on="user_id", suffix="_a")
    assert redrawn.filter(pl.col("archetype") != pl.col("archetype_a")).height > 0


def test_a_person_is_drawn_once_whichever_day_is_applied_first(tmp_path: Path, release: dict) -> None:
    shared = release["shared"]
    states = []
    for order in ((DAY_A, DAY_B), (DAY_B, DAY_A)):
        lake = tmp_path / order[0].isoformat()
        lake.mkdir()
        release["people"].write_parquet(lake / "demographics.parquet")
        touched = {DAY_A: release["a_touched"], DAY_B: release["b_touched"]}
        first = run_day(lake, release, order[0], touched[order[0]])
        second = run_day(lake, release, order[1], touched[order[1]])
        assert set(shared) <= set(first["new"]["user_id"])  # the first day applied draws the shared users
        assert not set(shared) & set(second["new"]["user_id"])  # the second keeps them
        assert_frame_equal(rows_of(second["profiles"], shared), rows_of(first["new"], shared))
        assert_frame_equal(rows_of(second["policies"], shared).select("user_id", "archetype"),
                           rows_of(first["new"], shared).select("user_id", "archetype"))
        state = served_state([first, second])
        assert_frame_equal(rows_of(state, shared), rows_of(first["new"], shared))  # no person changed
        assert served_state([first]).join(state, on=list(state.columns), how="anti", nulls_equal=True).is_empty()
        states.append(state)
    # either way every touched user has one person; which day drew the shared users decides the quotas they met
    assert states[0]["user_id"].to_list() == states[1]["user_id"].to_list()
    assert states[0].height == len({*release["a_touched"], *release["b_touched"]})

def test_a_redelivery_draws_the_users_it_touches_again_and_keeps_the_others(lake: Path, release: dict) -> None:
    shared, a_new, b_new = release["shared"], release["a_new"], release["b_new"]
    folder = served_days.published_folder(lake)
    first = run_day(lake, release, DAY_A, release["a_touched"])
    run_day(lake, release, DAY_B, release["b_touched"])
    demographics = pl.scan_parquet(lake / "demographics.parquet")
    elsewhere = day_people.published_elsewhere(lake, DAY_A, demographics)
    assert elsewhere["user_id"].to_list() == b_new and set(elsewhere["arrival"]) == {DAY_B}  # its own left out
    again = run_day(lake, release, DAY_A, release["a_touched"])
    assert again["new"]["user_id"].to_list() == a_new  # drawn again, over the same new users: the same people
    assert_frame_equal(again["new"], first["new"])
    # a repeat touches nobody: the day's people stay as published
    assert run_day(lake, release, DAY_A, [])["new"].is_empty()
    assert_frame_equal(served_days.read_published_people(folder, [DAY_A]).drop("arrival"), first["new"])
    # a correction touching only A's last ten users (and a base user) draws those ten again, with the quotas over
    # ten new users; the forty it does not touch keep the person the stores serve them
    corrected = run_day(lake, release, DAY_A, [release["base"][0], *a_new[40:]])
    assert corrected["new"]["user_id"].to_list() == a_new[40:]
    published = served_days.read_published_people(folder, [DAY_A]).drop("arrival")
    assert published["user_id"].to_list() == a_new
    assert_frame_equal(rows_of(published, a_new[:40]), rows_of(first["new"], a_new[:40]))
    assert_frame_equal(rows_of(published, a_new[40:]), corrected["new"])
    b_again = run_day(lake, release, DAY_B, release["b_touched"])  # B keeps A's people, and its own
    assert_frame_equal(rows_of(b_again["profiles"], shared), rows_of(first["new"], shared))
    assert b_again["new"]["user_id"].to_list() == b_new
    assert_frame_equal(rows_of(b_again["profiles"], b_new), b_again["new"])


def test_a_day_publishes_only_the_people_of_the_users_it_touched(release: dict) -> None:
    people = release["people"]
    previous = people.filter(pl.col("user_id") <= 5)  # the day's published version drew users 1-5
    drawn = people.filter(pl.col("user_id").is_between(4, 8)).with_columns(pl.lit("redrawn").alias("archetype"))
    touched = pl.DataFrame({"user_id": [2, 4, 5, 7]})  # 2 touched and not drawn (served elsewhere, or gone)
    kept = day_people.kept_with_day(previous.with_columns(pl.lit(DAY_A).alias("arrival")), drawn, touched)
    assert kept["user_id"].to_list() == [1, 3, 4, 5, 7]  # 6 and 8 drawn, but not touched: the stores lack them
    assert kept.filter(pl.col("archetype") == "redrawn")["user_id"].to_list() == [4, 5, 7]
    assert_frame_equal(kept.filter(pl.col("user_id").is_in([1, 3])), previous.filter(pl.col("user_id").is_in([1, 3])))


def test_published_people_read_back_and_days_without_people_have_none(tmp_path: Path, release: dict) -> None:
    folder = served_days.published_folder(tmp_path)
    schema = release["people"].schema
    assert_frame_equal(served_days.read_published_people(folder, schema=schema),
                       pl.DataFrame(schema={**schema, "arrival": pl.Date}))  # nothing published
    people = release["people"].head(5)
    served_days.publish_day(folder, DAY_B, empty_log(), empty_ledger(), 0, people=people)
    served_days.publish_day(folder, DAY_A, empty_log(), empty_ledger(), 0)  # a day published without people
    assert not (folder / DAY_A.isoformat() / served_days.PEOPLE_FILE).exists()
    read = served_days.read_published_people(folder, schema=schema)
    assert_frame_equal(read, people.with_columns(pl.lit(DAY_B).alias("arrival")))
    assert_frame_equal(served_days.read_published_people(folder), read)  # the files' own columns
    assert served_days.read_published_people(folder, [DAY_A], schema).equals(
        pl.DataFrame(schema={**schema, "arrival": pl.Date}))
    assert served_days.read_published_people(folder, [DAY_A]).schema == pl.Schema(
        {"user_id": pl.Int32, "arrival": pl.Date})
    # published again without people (as a benchmark publishes), the day's file goes with its old version
    served_days.publish_day(folder, DAY_B, empty_log(), empty_ledger(), 0)
    assert served_days.read_published_people(folder, schema=schema).is_empty()
    assert served_days.fingerprint(folder)  # the published days' hash still reads every day


def test_served_people_prefer_the_base_then_the_earliest_day_and_read_only_the_users_asked(release: dict) -> None:
    people = release["people"]
    base_user, other = release["base"][:2]
    stranger = people.filter(pl.col("user_id") == other).with_columns(pl.lit(999_999).cast(pl.Int32).alias("user_id"))
    elsewhere = pl.concat([
        people.filter(pl.col("user_id") == base_user).with_columns(pl.lit("changed").alias("archetype"),
                                                                    pl.lit(DAY_A).alias("arrival")),
        stranger.with_columns(pl.lit(DAY_A).alias("arrival")),
        stranger.with_columns(pl.lit("later").alias("archetype"), pl.lit(DAY_B).alias("arrival")),
    ])
    users = pl.DataFrame({"user_id": [base_user, 999_999, 123_456]})  # Int64 asked of an Int32 table
    served = day_people.served_people(people.lazy(), elsewhere, users)
    assert served["user_id"].to_list() == [base_user, 999_999]
    assert_frame_equal(served.head(1), people.filter(pl.col("user_id") == base_user))  # the base wins
    assert_frame_equal(served.tail(1), stranger)  # then the earliest day
    new = stranger.with_columns(pl.lit(123_456).cast(pl.Int32).alias("user_id"), pl.lit("new").alias("archetype"))
    everyone = day_people.people_of(people.lazy(), elsewhere, pl.concat([new, stranger.with_columns(
        pl.lit("redrawn").alias("archetype"))]), users)
    assert everyone["user_id"].to_list() == [base_user, 123_456, 999_999]  # sorted by user
    assert everyone["archetype"].to_list()[1:] == ["new", stranger["archetype"][0]]  # the day's draw comes last
    assert day_people.new_users(users.cast(pl.Int32), served)["user_id"].to_list() == [123_456]
