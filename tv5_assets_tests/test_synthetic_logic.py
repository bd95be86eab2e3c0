"""The synthetic stage's pure logic: keyed draws, title languages, behaviour, archetypes, people, availability."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tv5_assets.ingestion import movielens
from tv5_assets.sample.generator import SampleSpec, write_sample_release
from tv5_assets.synthetic import archetypes, people, rules
from tv5_assets.synthetic import platforms as pf
from tv5_assets.synthetic import regions as rg
from tv5_assets.synthetic.availability import AvailabilityRules, build_availability, rating_counts
from tv5_assets.synthetic.behaviour import user_behaviour
from tv5_assets.synthetic.demographics import build_demographics
from tv5_assets.synthetic.draws import categorical, key_seeds, uniform
from tv5_assets.synthetic.title_language import title_languages

SPEC = SampleSpec(seed=11, movies=600, users=250, ratings=12_000, tags=50, genome_movies=10, genome_tags=50)
SEED = 97


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(movies, ratings) of a small generated release, parsed as the ingestion stage does."""
    paths = write_sample_release(tmp_path_factory.mktemp("release"), SPEC)
    movies = movielens.parse_movies(paths["movies.csv"], paths["links.csv"]).kept
    return movies, movielens.parse_ratings(paths["ratings.csv"], movies["movie_id"]).kept


@pytest.fixture(scope="module")
def built(sample: tuple[pl.DataFrame, pl.DataFrame]):
    movies, ratings = sample
    return build_demographics(ratings, movies, SEED)


# ------------------------------------------------------------------------------------------ draws
def test_key_seeds_are_the_md5_of_seed_and_key() -> None:
    seeds = key_seeds(42, [7, 123_456], "user")
    expected = [int.from_bytes(hashlib.md5(f"user|42|{k}".encode()).digest()[:8], "little") for k in (7, 123_456)]
    assert seeds.dtype == np.uint64 and seeds.tolist() == expected


def test_uniform_streams_are_uniform_independent_and_keyed() -> None:
    seeds = key_seeds(1, range(50_000), "test")
    a, b = uniform(seeds, 0), uniform(seeds, 1)
    assert 0.0 <= a.min() and a.max() < 1.0
    assert abs(a.mean() - 0.5) < 0.01 and abs(np.corrcoef(a, b)[0, 1]) < 0.02
    assert np.array_equal(uniform(seeds[::-1], 3)[::-1], uniform(seeds, 3))  # per key, not per position
    assert np.array_equal(categorical(np.array([0.0, 0.49, 0.51, 0.999]), np.array([1.0, 1.0])), [0, 0, 1, 1])


# ------------------------------------------------------------------------------------ title language
@pytest.mark.parametrize(("title", "non_english", "language"), [
    ("Toy Story (1995)", False, "en"),
    ("Die Hard (1988)", False, "en"),  # a leading "Die" is English here
    ("101 Dalmatians (One Hundred and One Dalmatians) (1961)", False, "en"),
    ("Bloodsport 2 (a.k.a. Bloodsport II: The Next Kumite) (1996)", False, "en"),
    ("City of Lost Children, The (Cité des enfants perdus, La) (1995)", True, "fr"),
    ("Misérables, Les (1995)", True, "fr"),
    ("La Cérémonie (1995)", True, "fr"),
    ("Pan's Labyrinth (Laberinto del fauno, El) (2006)", True, "es"),
    ("Postman, The (Postino, Il) (1994)", True, "it"),
    ("Marriage of Maria Braun, The (Ehe der Maria Braun, Die) (1979)", True, "de"),
    ("Day Watch (Dnevnoy dozor) (2006)", True, None),  # romanised Russian: foreign, language unknown
])
def test_title_language_from_the_title_text(title: str, non_english: bool, language: str | None) -> None:
    result = title_languages(pl.DataFrame({"movie_id": [1], "title": [title]})).row(0, named=True)
    assert (result["non_english"], result["original_language"]) == (non_english, language)


def test_title_language_on_real_titles(ml_latest_small: Path) -> None:
    movies = pl.read_csv(ml_latest_small / "movies.csv").rename({"movieId": "movie_id"})
    result = title_languages(movies)
    assert result.height == movies.height
    assert 0.06 < result["non_english"].mean() < 0.15  # MovieLens is mostly English-language
    assert result.filter(pl.col("original_language") == "fr").height > 200


# ------------------------------------------------------------------------------------------ behaviour
def test_behaviour_features_on_hand_made_ratings() -> None:
    movies = pl.DataFrame({
        "movie_id": [1, 2, 3], "title": ["Toy Story (1995)", "Heat (1995)", "Misérables, Les (1958)"],
        "year": [1995, 1995, 1958], "genres": [["Animation", "Children"], ["Action"], ["Drama"]],
    })
    stamp = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
    ratings = pl.DataFrame({
        "user_id": [5, 5, 9, 9, 9], "movie_id": [1, 1, 1, 2, 3],
        "timestamp": [stamp + dt.timedelta(days=d) for d in (3, 1, 2, 0, 5)],
    }).with_columns(pl.col("user_id").cast(pl.Int32), pl.col("movie_id").cast(pl.Int32))
    b = user_behaviour(ratings, movies)
    assert b["user_id"].to_list() == [5, 9] and b["ratings"].to_list() == [2, 3]
    one, three = b.row(0, named=True), b.row(1, named=True)
    assert one["kids_share"] == 1.0 and three["kids_share"] == pytest.approx(1 / 3)
    assert one["genre_entropy"] == pytest.approx(np.log(2) / np.log(4))  # even over 2 of 4 genres
    assert three["non_english_share"] == pytest.approx(1 / 3) and three["classic_share"] == pytest.approx(1 / 3)
    assert one["first_rating"] == stamp + dt.timedelta(days=1) and three["first_rating"] == stamp
    shuffled = user_behaviour(ratings.sample(fraction=1.0, shuffle=True, seed=3), movies)
    assert shuffled.equals(b)


# ------------------------------------------------------------------------------------------ archetypes
@pytest.mark.parametrize("n", [1, 7, 40, 99, 100, 610, 162_541])
def test_quotas_sum_to_n_within_one_user(n: int) -> None:
    quota = archetypes.quotas(n, archetypes.TARGET_SHARES)
    assert sum(quota.values()) == n
    for name, share in archetypes.TARGET_SHARES.items():
        assert abs(quota[name] - n * share) < 1.0
        if n >= 100:
            assert abs(quota[name] / n - share) <= 0.01


def test_shares_must_name_every_archetype_and_sum_to_one() -> None:
    with pytest.raises(ValueError, match="exactly"):
        archetypes.quotas(10, {"Casual": 1.0})
    with pytest.raises(ValueError, match="sum to 1"):
        archetypes.quotas(10, {**archetypes.TARGET_SHARES, "Casual": 0.5})


def test_assignment_follows_behaviour_and_ignores_row_order(built) -> None:
    behaviour = built.behaviour
    table = archetypes.agreement(behaviour, behaviour["archetype"])
    by = {row["archetype"]: row for row in table.to_dicts()}
    assert min(by, key=lambda a: by[a]["mean_genre_entropy"]) == archetypes.GENRE_SPECIALIST
    assert max(by, key=lambda a: by[a]["children_animation_share"]) == archetypes.FAMILY
    assert max(by, key=lambda a: by[a]["non_english_share"]) == archetypes.INTERNATIONAL
    assert max(by, key=lambda a: by[a]["median_ratings"]) == archetypes.CINEPHILE
    order = np.random.default_rng(0).permutation(behaviour.height)
    tiebreak = uniform(people.user_seeds(SEED, behaviour["user_id"].to_numpy()), people.TIEBREAK)
    again = archetypes.assign_archetypes(behaviour[order], tiebreak[order], archetypes.TARGET_SHARES)
    assert again.tolist() == behaviour["archetype"].to_numpy()[order].tolist()


# ------------------------------------------------------------------------------------------ people
def test_demographics_contract_and_invariants(built) -> None:
    users = built.users
    assert users.schema == pl.Schema({
        "user_id": pl.Int32, "archetype": pl.String, "age": pl.Int32, "age_band": pl.String, "country": pl.String,
        "region": pl.String, "preferred_language": pl.String, "secondary_language": pl.String,
        "platforms": pl.List(pl.String), "name": pl.String, "email": pl.String, "signup_date": pl.Date,
    })
    assert users["user_id"].is_sorted() and users.height == SPEC.users
    assert users["email"].n_unique() == users.height and users["email"].str.contains(r"^[a-z0-9.]+@example\.").all()
    for outcome in (rules.valid_codes(users), rules.region_and_platforms(users), rules.age_in_band(users),
                    rules.signup_before_first_rating(users, built.behaviour)):
        assert outcome.passed, outcome.description
    young = users.filter(pl.col("archetype") == archetypes.YOUNG_ADULT)["age"]
    senior = users.filter(pl.col("archetype") == archetypes.SENIOR)["age"]
    assert young.max() <= 29 and senior.min() >= 60


def test_a_users_row_does_not_depend_on_the_other_users(sample, built) -> None:
    """Same (seed, user_id) -> same row, on any subset and in any order (given the same archetype)."""
    movies, ratings = sample
    ids = built.users["user_id"].to_numpy()
    subset = np.sort(np.random.default_rng(1).choice(ids, size=60, replace=False))
    full = built.users.filter(pl.col("user_id").is_in(subset.tolist()))
    # the per-user draws, on the subset alone, with the archetypes of the full run
    alone = people.draw_people(subset, people.user_seeds(SEED, subset), full["archetype"].to_numpy(),
                               built.behaviour.filter(pl.col("user_id").is_in(subset.tolist()))["first_rating"])
    assert alone.equals(full)
    # the whole asset on a subset of ratings: archetypes are population ranks, everything else is per user
    small = build_demographics(ratings.filter(pl.col("user_id").is_in(subset.tolist())), movies, SEED).users
    keyed_only = ["user_id", "country", "region", "preferred_language", "name", "email", "signup_date"]
    assert small.select(keyed_only).equals(full.select(keyed_only))
    same_archetype = small.join(full, on="user_id", suffix="_full").filter(
        pl.col("archetype") == pl.col("archetype_full"))
    assert same_archetype.height > 0
    assert full.filter(pl.col("user_id").is_in(same_archetype["user_id"].implode())).equals(
        small.filter(pl.col("user_id").is_in(same_archetype["user_id"].implode())))
    shuffled = build_demographics(ratings.sample(fraction=1.0, shuffle=True, seed=5), movies, SEED).users
    assert shuffled.equals(built.users)


def test_market_mix_is_francophone_first() -> None:
    assert sum(c.weight for c in rg.COUNTRIES) == pytest.approx(100)
    seeds = people.user_seeds(3, np.arange(1, 20_001))
    users = people.draw_people(np.arange(1, 20_001), seeds, np.full(20_000, archetypes.CASUAL, dtype=object),
                               pl.Series([dt.datetime(2010, 1, 1)] * 20_000).dt.replace_time_zone("UTC"))
    francophone = [c.code for c in rg.COUNTRIES if dict(c.languages).get("fr", 0.0) >= 0.4]
    assert users["country"].is_in(francophone).mean() > 0.6
    expected_fr = sum(c.weight * dict(c.languages).get("fr", 0.0) for c in rg.COUNTRIES) / 100
    assert abs(users["preferred_language"].eq("fr").mean() - expected_fr) < 0.015
    assert abs(users["country"].eq("FR").mean() - 0.26) < 0.02
    assert users["name"].n_unique() > 5_000  # pools of 300 x 300 names per locale
    assert (users["secondary_language"] != users["preferred_language"]).all()


def test_name_pools_are_deterministic_and_localised() -> None:
    first, last = people.name_pool("fr_FR")
    assert len(first) == len(last) == people.POOL_SIZE
    people.name_pool.cache_clear()
    assert people.name_pool("fr_FR") == (first, last)
    assert any("é" in name for name in first)


# ------------------------------------------------------------------------------------------ availability
@pytest.fixture(scope="module")
def catalogue(sample) -> tuple[pl.DataFrame, pl.DataFrame]:
    movies, ratings = sample
    return movies, rating_counts(ratings)


def test_availability_meets_shares_and_coverage_exactly(catalogue) -> None:
    movies, counts = catalogue
    frame = build_availability(movies, counts, AvailabilityRules())
    n = movies.height
    for platform, share in pf.DEFAULT_SHARES.items():
        assert frame.filter(pl.col("platform") == platform).height == round(share * n)
    assert frame["movie_id"].n_unique() >= np.ceil(0.90 * n)
    for outcome in (rules.platform_shares(frame, n, pf.DEFAULT_SHARES), rules.coverage(frame, n),
                    rules.quality_and_languages(frame), rules.window_ordered(frame), rules.platform_and_model(frame)):
        assert outcome.passed, outcome.description


def test_availability_follows_popularity_and_affinities(catalogue) -> None:
    movies, counts = catalogue
    frame = build_availability(movies, counts, AvailabilityRules())
    per_film = frame.group_by("movie_id").agg(pl.len().alias("n"))
    ranked = counts.join(per_film, on="movie_id", how="left").with_columns(pl.col("n").fill_null(0))
    top, bottom = ranked.sort("ratings").tail(100)["n"].mean(), ranked.sort("ratings").head(100)["n"].mean()
    assert top > bottom + 0.5  # popular films are on more services
    features = title_languages(movies.select("movie_id", "title"))
    french = features.filter(pl.col("original_language") == "fr")["movie_id"]
    tv5 = frame.filter(pl.col("platform") == "TV5MONDE")["movie_id"]
    assert tv5.is_in(french.implode()).mean() > 2 * features["original_language"].eq("fr").mean()
    kids = movies.filter(pl.col("genres").list.contains("Children") | pl.col("genres").list.contains("Animation"))
    disney = frame.filter(pl.col("platform") == "Disney+")["movie_id"]
    assert disney.is_in(kids["movie_id"].implode()).mean() > 2 * kids.height / movies.height


def test_availability_is_deterministic_and_order_independent(catalogue) -> None:
    movies, counts = catalogue
    frame = build_availability(movies, counts, AvailabilityRules())
    again = build_availability(movies.sample(fraction=1.0, shuffle=True, seed=2),
                               counts.sample(fraction=1.0, shuffle=True, seed=4), AvailabilityRules())
    assert again.equals(frame)


@pytest.mark.parametrize("change", [
    {"seed": 1907}, {"shares": {**pf.DEFAULT_SHARES, "MUBI": 0.11}}, {"min_coverage": 0.91},
    {"popularity_weight": 1.0001}, {"recency_weight": 0.61}, {"affinity_weight": 0.99}, {"noise_weight": 0.81},
    {"catalogue_date": dt.date(2025, 1, 2)}, {"min_window_days": 181}, {"max_window_days": 1_461},
])
def test_every_rule_change_changes_availability(catalogue, change: dict) -> None:
    movies, counts = catalogue
    base = AvailabilityRules()
    assert set(change) <= {f.name for f in dataclasses.fields(base)}
    assert not build_availability(movies, counts, dataclasses.replace(base, **change)).equals(
        build_availability(movies, counts, base))


def test_availability_rules_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown platform"):
        AvailabilityRules(shares={"Blockbuster": 0.5})
    with pytest.raises(ValueError, match="min_coverage"):
        AvailabilityRules(shares={"MUBI": 0.1}, min_coverage=0.9)
    with pytest.raises(ValueError, match="window"):
        AvailabilityRules(min_window_days=0)
