"""Every validation rule of the synthetic stage, both ways: passes on built data, fails on a broken copy."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from tv5_assets.ingestion import movielens
from tv5_assets.sample.generator import SampleSpec, write_sample_release
from tv5_assets.synthetic import archetypes, rules
from tv5_assets.synthetic import platforms as pf
from tv5_assets.synthetic.availability import AvailabilityRules, build_availability, rating_counts
from tv5_assets.synthetic.demographics import build_demographics

SPEC = SampleSpec(seed=5, movies=400, users=150, ratings=6_000, tags=20, genome_movies=10, genome_tags=30)


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory):
    paths = write_sample_release(tmp_path_factory.mktemp("release"), SPEC)
    movies = movielens.parse_movies(paths["movies.csv"], paths["links.csv"]).kept
    ratings = movielens.parse_ratings(paths["ratings.csv"], movies["movie_id"]).kept
    built = build_demographics(ratings, movies, 3)
    availability = build_availability(movies, rating_counts(ratings), AvailabilityRules())
    return built.users, built.behaviour.select("user_id", "first_rating"), availability, movies.height


def _set(frame: pl.DataFrame, row: int, **values: object) -> pl.DataFrame:
    """A copy of `frame` with row `row` changed."""
    index = pl.int_range(pl.len()) == row
    return frame.with_columns([pl.when(index).then(pl.lit(v, dtype=frame.schema[c])).otherwise(pl.col(c)).alias(c)
                               for c, v in values.items()])


def _fails(result: rules.RuleResult, *fragments: str) -> None:
    assert not result.passed
    for fragment in fragments:
        assert fragment in result.description, result.description


def test_archetype_shares(good) -> None:
    users = good[0]
    assert rules.archetype_shares(users, archetypes.TARGET_SHARES).passed
    skewed = users.with_columns(pl.when(pl.col("archetype") == archetypes.FAMILY).then(pl.lit(archetypes.CASUAL))
                                .otherwise(pl.col("archetype")).alias("archetype"))
    _fails(rules.archetype_shares(skewed, archetypes.TARGET_SHARES), "off target by more than 1.00 pp",
           "'Family': -15.0")
    _fails(rules.archetype_shares(_set(users, 0, archetype="Critic"), archetypes.TARGET_SHARES),
           "unknown values ['Critic']")


def test_archetype_tolerance_is_one_user_below_100_users() -> None:
    quota = archetypes.quotas(40, archetypes.TARGET_SHARES)
    users = pl.DataFrame({"archetype": [a for a, k in quota.items() for _ in range(k)]})
    result = rules.archetype_shares(users, archetypes.TARGET_SHARES)
    assert result.passed and result.metadata["tolerance_pp"] == 2.5


def test_one_row_per_user(good) -> None:
    users, first = good[0], good[1]
    assert rules.one_row_per_user(users, first["user_id"]).passed
    _fails(rules.one_row_per_user(pl.concat([users, users.head(2)]), first["user_id"]), "2 user(s) with several rows")
    _fails(rules.one_row_per_user(users.slice(1), first["user_id"]), "1 rating user(s) without a row")
    _fails(rules.one_row_per_user(_set(users, 0, user_id=999_999), first["user_id"]), "1 user(s) who never rated",
           "999999")


def test_required_fields(good) -> None:
    users = good[0]
    columns = [c for c in users.columns if c != "secondary_language"]
    assert rules.non_null(users, columns, ("platforms",)).passed
    _fails(rules.non_null(_set(users, 3, name=None), columns, ("platforms",)), "'name': 1")
    _fails(rules.non_null(_set(users, 3, platforms=[]), columns, ("platforms",)), "'platforms (empty)': 1")


def test_valid_codes(good) -> None:
    users = good[0]
    assert rules.valid_codes(users).passed
    _fails(rules.valid_codes(_set(users, 0, country="FRA")), "1 user(s) with an invalid country", "FRA")
    _fails(rules.valid_codes(_set(users, 0, preferred_language="fr-FR")), "fr-FR")
    _fails(rules.valid_codes(_set(users, 0, preferred_language="fr", secondary_language="fr")), "same language twice")


def test_signup_before_first_rating(good) -> None:
    users, first = good[0], good[1]
    assert rules.signup_before_first_rating(users, first).passed
    _fails(rules.signup_before_first_rating(_set(users, 4, signup_date=dt.date(2030, 1, 1)), first),
           "1 user(s) signed up after their first rating", "2030-01-01")


def test_region_and_platforms(good) -> None:
    users = good[0]
    assert rules.region_and_platforms(users).passed
    french = users.filter(pl.col("country") == "FR").head(1)["user_id"][0]
    row = users["user_id"].to_list().index(french)
    _fails(rules.region_and_platforms(_set(users, row, region="North America")), "1 region(s) not the country's")
    _fails(rules.region_and_platforms(_set(users, row, platforms=["Criterion Channel"])),
           "not offered in the user's region", "Criterion Channel")
    _fails(rules.region_and_platforms(_set(users, row, platforms=["Netflix", "Netflix"])), "list a platform twice")


def test_age_in_band(good) -> None:
    users = good[0]
    assert rules.age_in_band(users).passed
    _fails(rules.age_in_band(_set(users, 0, age=16, age_band="18-24")), "outside 18-100 or in the wrong band")
    _fails(rules.age_in_band(_set(users, 0, age=40, age_band="65+")), "'age_band': '65+'")


def test_platform_shares_and_coverage(good) -> None:
    availability, n = good[2], good[3]
    assert rules.platform_shares(availability, n, pf.DEFAULT_SHARES).passed
    netflix = availability.filter(pl.col("platform") == "Netflix")
    fewer = pl.concat([availability.filter(pl.col("platform") != "Netflix"), netflix.head(netflix.height - 10)])
    _fails(rules.platform_shares(fewer, n, pf.DEFAULT_SHARES), "'Netflix': -2.5")
    assert rules.coverage(availability, n).passed
    _fails(rules.coverage(netflix, n), "only 35.00% of movies", "at least 85% required")


def test_platform_and_model(good) -> None:
    availability = good[2]
    assert rules.platform_and_model(availability).passed
    tv5 = availability["platform"].to_list().index("TV5MONDE")
    _fails(rules.platform_and_model(_set(availability, tv5, business_model="subscription")), "wrong business model")
    _fails(rules.platform_and_model(_set(availability, 0, platform="Blockbuster")), "Blockbuster")


@pytest.mark.parametrize(("change", "flag"), [
    ({"quality": ["HD", "8K"]}, "bad_quality"),
    ({"quality": ["4K"]}, "no_hd"),
    ({"audio_languages": ["english"]}, "bad_audio"),
    ({"subtitle_languages": ["fr", "xx"]}, "bad_subtitles"),
])
def test_quality_and_languages(good, change: dict, flag: str) -> None:
    availability = good[2]
    assert rules.quality_and_languages(availability).passed
    _fails(rules.quality_and_languages(_set(availability, 0, **change)), f"'{flag}': 1")


def test_regions_must_lie_in_the_platforms_footprint(good) -> None:
    availability = good[2]
    row = availability["platform"].to_list().index("Criterion Channel")
    _fails(rules.quality_and_languages(_set(availability, row, regions=["Western Europe"])), "'bad_regions': 1")


def test_window_ordered(good) -> None:
    availability = good[2]
    assert rules.window_ordered(availability).passed
    same_day = availability.row(0, named=True)["available_from"]
    _fails(rules.window_ordered(_set(availability, 0, available_until=same_day)),
           "1 row(s) where available_from is not before available_until")


def test_same_content() -> None:
    assert rules.same_content("demographics", "abc", "abc", "abc").passed
    _fails(rules.same_content("demographics", "abc", "abd", "abc"), "not deterministic", "abd")
    _fails(rules.same_content("demographics", "xyz", "abc", "abc"), "stored demographics (hash xyz) differs")
    _fails(rules.same_content("demographics", "abc", "abc", None), "recorded no content_hash")
