"""The availability of a day's new movies (`synthetic.day_availability`): pure logic, no services."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tv5_assets.ingestion.titles import display_title, year_from_title
from tv5_assets.synthetic import platforms as pf
from tv5_assets.synthetic.availability import (AvailabilityRules, _rows, _scores, build_availability,
                                               catalogue_features)
from tv5_assets.synthetic.day_availability import new_movie_availability, place_new_movies
from tv5_assets.synthetic.draws import combine, key_seeds, name_seed, uniform

RULES = AvailabilityRules()
N_MOVIES, N_NEW = 300, 5
_GENRES = ("Drama", "Comedy", "Action", "Children", "Animation", "Documentary", "Thriller", "Romance", "War")
_TITLES = ("The Long Road {i}", "Le Voyage de nuit {i}", "Night Train {i} (Train de nuit)", "El Camino del sol {i}",
           "Stars Over Ohio {i}", "Amélie et les autres {i}", "Il Deserto dei Tartari {i}", "Happy Days {i}")


@pytest.fixture(scope="module")
def catalogue() -> pl.DataFrame:
    """N_MOVIES movies in the `movies` schema: English, French, Spanish and Italian titles, a few without a year."""
    rng = np.random.default_rng(5)
    ids = 1 + 7 * np.arange(N_MOVIES)  # not contiguous
    years = rng.integers(1925, 2024, N_MOVIES)
    titles = [_TITLES[rng.integers(len(_TITLES))].format(i=i) + ("" if i % 37 == 0 else f" ({years[i]})")
              for i in range(N_MOVIES)]
    genres = [sorted(set(rng.choice(_GENRES, rng.integers(1, 4)).tolist())) for _ in range(N_MOVIES)]
    return pl.DataFrame({"movie_id": ids, "title": titles}, schema={"movie_id": pl.Int32, "title": pl.String}) \
        .with_columns(display_title(pl.col("title")).alias("display_title"),
                      year_from_title(pl.col("title")).alias("year"),
                      pl.Series("genres", genres, dtype=pl.List(pl.String)),
                      pl.format("tt{}", pl.col("movie_id").cast(pl.String).str.zfill(7)).alias("imdb_id"),
                      (pl.col("movie_id") + 10_000).cast(pl.Int32).alias("tmdb_id"))


@pytest.fixture(scope="module")
def counts(catalogue: pl.DataFrame) -> pl.DataFrame:
    """Ratings per movie, heavy-tailed; some movies have none (absent), as a new movie has none."""
    rng = np.random.default_rng(9)
    ratings = np.floor(rng.pareto(1.2, catalogue.height) * 20).astype(np.int64)
    return pl.DataFrame({"movie_id": catalogue["movie_id"], "ratings": ratings}).filter(pl.col("ratings") > 0)


def expected_scores(catalogue: pl.DataFrame, counts: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """(features, seeds, scores) of the whole catalogue, keyed as `build_availability` keys its draws."""
    features = catalogue_features(catalogue, counts)
    movie_seeds = key_seeds(RULES.seed, features["movie_id"].to_list(), f"availability|{RULES.digest()}")
    seeds = np.column_stack([combine(movie_seeds, name_seed(p.name)) for p in RULES.platforms])
    noise = np.column_stack([uniform(seeds[:, j], 0) for j in range(seeds.shape[1])])
    return features, seeds, _scores(features, RULES, noise)


@pytest.fixture(scope="module")
def new_ids(catalogue: pl.DataFrame, counts: pl.DataFrame) -> pl.Series:
    """Five films with no ratings yet, as a day's new films: the two that reach the most platforms' thresholds of
    the full build and the three that reach the fewest (so that films on several platforms are exercised)."""
    features, _, score = expected_scores(catalogue, counts)
    ids = features["movie_id"].to_numpy()
    reached = placed_counts(score, ids, build_availability(catalogue, counts, RULES))
    unrated = np.flatnonzero(~np.isin(ids, counts["movie_id"].to_numpy()))
    order = unrated[np.argsort(reached[unrated], kind="stable")]
    return pl.Series("movie_id", ids[np.concatenate([order[-2:], order[:N_NEW - 2]])])


def placed_counts(score: np.ndarray, ids: np.ndarray, served: pl.DataFrame) -> np.ndarray:
    """Per film: on how many platforms its score reaches the lowest score `served` has there."""
    index = {p.name: j for j, p in enumerate(RULES.platforms)}
    plat = served["platform"].replace_strict(index, return_dtype=pl.Int64).to_numpy()
    fit = score[np.searchsorted(ids, served["movie_id"].to_numpy()), plat]
    lowest = np.array([fit[plat == j].min() for j in range(len(index))])
    return (score >= lowest).sum(axis=1)


@pytest.fixture(scope="module")
def served(catalogue: pl.DataFrame, counts: pl.DataFrame, new_ids: pl.Series) -> pl.DataFrame:
    """The full build over every movie but the new ones (which have no ratings yet either)."""
    base = catalogue.filter(~pl.col("movie_id").is_in(new_ids.implode()))
    return build_availability(base, counts.filter(pl.col("movie_id").is_in(base["movie_id"].implode())), RULES)


@pytest.fixture(scope="module")
def day_counts(counts: pl.DataFrame, new_ids: pl.Series) -> pl.DataFrame:
    """The served ratings' counts: the new movies have none."""
    return counts.filter(~pl.col("movie_id").is_in(new_ids.implode()))


@pytest.fixture(scope="module")
def frame(catalogue, day_counts, served, new_ids) -> pl.DataFrame:
    return new_movie_availability(catalogue, day_counts, served, new_ids, RULES)


def test_schema_and_every_new_movie_placed(frame, served, new_ids) -> None:
    assert frame.schema == served.schema
    assert sorted(frame["movie_id"].unique().to_list()) == sorted(new_ids.to_list())
    assert frame.select("movie_id", "platform").is_duplicated().sum() == 0
    order = {p.name: j for j, p in enumerate(RULES.platforms)}
    keys = list(zip(frame["movie_id"].to_list(), [order[p] for p in frame["platform"].to_list()], strict=True))
    assert keys == sorted(keys)  # by movie_id, then platform order


def expected_pairs(catalogue: pl.DataFrame, counts: pl.DataFrame, served: pl.DataFrame, new_ids: pl.Series):
    """The rule, written out film by film: (pairs, thresholds, films given a home, films on several platforms)."""
    features, _, score = expected_scores(catalogue, counts)
    row = {movie: i for i, movie in enumerate(features["movie_id"].to_list())}
    names = [p.name for p in RULES.platforms]
    threshold = np.array([min(score[row[m], j] for m in served.filter(pl.col("platform") == name)["movie_id"])
                          for j, name in enumerate(names)])
    ranks = score.argsort(axis=0, kind="stable").argsort(axis=0, kind="stable")
    pairs, homes, several = set(), 0, 0
    for movie in new_ids.to_list():
        reached = [j for j in range(len(names)) if score[row[movie], j] >= threshold[j]]
        if not reached:
            reached, homes = [int(np.argmax(ranks[row[movie]]))], homes + 1
        several += len(reached) > 1
        pairs |= {(movie, names[j]) for j in reached}
    return pairs, threshold, homes, several


def pairs_of(frame: pl.DataFrame) -> set[tuple[int, str]]:
    return set(zip(frame["movie_id"].to_list(), frame["platform"].to_list(), strict=True))


def test_threshold_rule(frame, catalogue, day_counts, served, new_ids) -> None:
    pairs, threshold, homes, several = expected_pairs(catalogue, day_counts, served, new_ids)
    assert pairs_of(frame) == pairs
    assert several >= 1
    placement = place_new_movies(catalogue, day_counts, served, new_ids, RULES)
    assert placement.home_only.size == homes
    assert np.allclose(placement.thresholds, threshold)


def test_home_rule(catalogue, day_counts, served, new_ids) -> None:
    """Under the full build's thresholds nearly every film reaches one (homes set them low); keep each platform's
    best fifth served, so that the least fitting new films reach none and get a home."""
    features, _, score = expected_scores(catalogue, day_counts)
    index = {p.name: j for j, p in enumerate(RULES.platforms)}
    fit = score[np.searchsorted(features["movie_id"].to_numpy(), served["movie_id"].to_numpy()),
                served["platform"].replace_strict(index, return_dtype=pl.Int64).to_numpy()]
    narrow = served.with_columns(pl.Series("fit", fit)).filter(
        pl.col("fit") >= pl.col("fit").quantile(0.8).over("platform")).drop("fit")
    pairs, _, homes, _ = expected_pairs(catalogue, day_counts, narrow, new_ids)
    rows = new_movie_availability(catalogue, day_counts, narrow, new_ids, RULES)
    assert pairs_of(rows) == pairs
    assert homes >= 1
    placement = place_new_movies(catalogue, day_counts, narrow, new_ids, RULES)
    assert placement.home_only.size == homes
    assert rows.filter(pl.col("movie_id").is_in(placement.home_only.tolist())).group_by("movie_id").len()[
        "len"].to_list() == [1] * homes


def test_a_platform_with_no_served_film_takes_only_homes(catalogue, day_counts, served, new_ids) -> None:
    without = served.filter(pl.col("platform") != "Netflix")
    placement = place_new_movies(catalogue, day_counts, without, new_ids, RULES)
    rows = new_movie_availability(catalogue, day_counts, without, new_ids, RULES)
    on_netflix = set(rows.filter(pl.col("platform") == "Netflix")["movie_id"].to_list())
    assert on_netflix <= set(placement.home_only.tolist())
    assert rows.group_by("movie_id").len().filter(pl.col("movie_id").is_in(on_netflix))["len"].to_list() \
        == [1] * len(on_netflix)


def test_rows_are_the_full_builds_draws(frame, catalogue, day_counts) -> None:
    full = build_availability(catalogue, day_counts, RULES)
    shared = frame.join(full.select("movie_id", "platform"), on=["movie_id", "platform"], how="semi")
    assert shared.height >= 1
    assert shared.equals(full.join(shared.select("movie_id", "platform"), on=["movie_id", "platform"], how="semi"))
    # every row, chosen by the full build or not: `_rows` with the same features and seeds
    features, seeds, _ = expected_scores(catalogue, day_counts)
    movie_row = np.searchsorted(features["movie_id"].to_numpy(), frame["movie_id"].to_numpy())
    index = {p.name: j for j, p in enumerate(RULES.platforms)}
    plat = np.array([index[name] for name in frame["platform"].to_list()])
    assert frame.equals(_rows(features, RULES.platforms, RULES, movie_row, plat, seeds[movie_row, plat]))


def test_order_independent_and_deterministic(frame, catalogue, day_counts, served, new_ids) -> None:
    shuffled = new_movie_availability(catalogue.sample(fraction=1.0, shuffle=True, seed=1),
                                      day_counts.sample(fraction=1.0, shuffle=True, seed=2),
                                      served.sample(fraction=1.0, shuffle=True, seed=3),
                                      new_ids.sample(fraction=1.0, shuffle=True, seed=4), RULES)
    assert shuffled.equals(frame)
    assert new_movie_availability(catalogue, day_counts, served, new_ids, RULES).equals(frame)


def test_rules_change_the_rows(frame, catalogue, day_counts, served, new_ids) -> None:
    other = AvailabilityRules(seed=RULES.seed + 1, shares=dict(pf.DEFAULT_SHARES))
    assert not new_movie_availability(catalogue, day_counts, served, new_ids, other).equals(frame)


def test_no_new_movies_give_an_empty_frame(catalogue, day_counts, served) -> None:
    empty = new_movie_availability(catalogue, day_counts, served, pl.Series("movie_id", [], dtype=pl.Int32), RULES)
    assert empty.height == 0 and empty.schema == served.schema


def test_bad_inputs_are_refused(catalogue, day_counts, served, new_ids) -> None:
    with pytest.raises(ValueError, match="not in the catalogue"):
        new_movie_availability(catalogue, day_counts, served, pl.Series([999_999]), RULES)
    with pytest.raises(ValueError, match="duplicate movie_id"):
        new_movie_availability(pl.concat([catalogue, catalogue.head(1)]), day_counts, served, new_ids, RULES)
