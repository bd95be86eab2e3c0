"""The taste stage's pure parts: recency weights, a deterministic ALS, content-predicted factors for
movies nobody rated, the hybrid layout's promise (unit vectors whose cosine ranks like the score), and
the recomputation rule both ways."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tv5_assets.taste import factors, hybrid, rules
from tv5_assets.taste.interactions import recency_weights

SETTINGS = factors.FactorSettings(factors=8, iterations=6)


def _ratings(seed: int = 0, users: int = 60, movies: int = 40) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [(u, int(m) + 1, 4.0, u * 1000 + i) for u in range(1, users + 1)
            for i, m in enumerate(rng.choice(movies - 2, size=rng.integers(5, 15), replace=False))]
    return pl.DataFrame(rows, schema={"user_id": pl.Int32, "movie_id": pl.Int32, "rating": pl.Float32,
                                      "timestamp": pl.Int64}, orient="row").with_columns(
        pl.from_epoch("timestamp", time_unit="s"))


def _content(movies: int = 40, dim: int = 12, seed: int = 1) -> pl.DataFrame:
    vectors = np.random.default_rng(seed).normal(size=(movies, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return pl.DataFrame({"movie_id": pl.Series(np.arange(1, movies + 1), dtype=pl.Int32),
                         "vector": pl.Series(vectors, dtype=pl.Array(pl.Float32, dim))})


def test_recency_weight_is_one_for_the_latest_rating_and_decays_by_rank() -> None:
    ratings = _ratings().filter(pl.col("user_id") == 1)
    weights = recency_weights(ratings.lazy(), tau=5.0).collect()["weight"].to_numpy()
    n = len(weights)
    assert weights[-1] == pytest.approx(1.0)
    assert weights == pytest.approx(np.exp(-(n - 1 - np.arange(n)) / 5.0), rel=1e-6)
    assert set(recency_weights(ratings.lazy(), tau=0.0).collect()["weight"]) == {1.0}


def test_movie_factors_are_deterministic_and_cover_unrated_movies() -> None:
    ratings, content = _ratings(), _content()
    first = factors.movie_factors(ratings.lazy(), content, SETTINGS).frame
    again = factors.movie_factors(ratings.lazy(), content, SETTINGS).frame
    assert first.equals(again)  # same seed, same vectors, bit for bit
    assert first.height == 40 and first["movie_id"].to_list() == list(range(1, 41))
    cold = first.filter(pl.col("cold"))
    assert cold["movie_id"].to_list() == [39, 40] and cold["ratings"].to_list() == [0, 0]
    assert (np.abs(np.asarray(cold["vector"].to_numpy())).sum(axis=1) > 0).all()  # predicted from content
    other_seed = factors.movie_factors(ratings.lazy(), content, factors.FactorSettings(factors=8, iterations=6, seed=9))
    assert not first.equals(other_seed.frame)


def test_user_fold_in_on_a_subset_equals_the_whole_run() -> None:
    ratings, content = _ratings(), _content()
    movies = factors.movie_factors(ratings.lazy(), content, SETTINGS).frame.select("movie_id", "vector")
    everyone = factors.user_factors(ratings.lazy(), movies, SETTINGS)
    some = factors.user_factors(ratings.filter(pl.col("user_id").is_in([3, 17, 42])).lazy(), movies, SETTINGS)
    assert rules.recomputed_identically(everyone, some, "user_id").passed


def test_hybrid_inner_product_is_the_for_you_score() -> None:
    rng = np.random.default_rng(4)
    content = rng.normal(size=(50, 12)).astype(np.float32)
    content /= np.linalg.norm(content, axis=1, keepdims=True)
    movie_factors = (rng.normal(size=(50, 6)) * rng.gamma(1.0, size=(50, 1))).astype(np.float32)
    taste = rng.normal(size=(5, 12)).astype(np.float32)
    taste /= np.linalg.norm(taste, axis=1, keepdims=True)
    user_factors = rng.normal(size=(5, 6)).astype(np.float32)
    layout = hybrid.layout_for(12, movie_factors, 0.5)
    movies = hybrid.movie_vectors(content, movie_factors, layout)
    users = hybrid.user_vectors(taste, user_factors, 0.5)
    assert movies.shape == (50, layout.dimension) == (50, 12 + 6)
    frame = pl.DataFrame({"movie_id": range(50), "vector": pl.Series(movies, dtype=pl.Array(pl.Float32, 18))})
    assert rules.hybrid_movie_parts(frame, 12).passed
    assert np.linalg.norm(users, axis=1) == pytest.approx(np.ones(5), abs=1e-5)
    unit_users = user_factors / np.linalg.norm(user_factors, axis=1, keepdims=True)
    score = 0.25 * taste @ content.T + layout.factor_scale * unit_users @ movie_factors.T
    assert users @ movies.T == pytest.approx(score / np.sqrt(0.25 ** 2 + 1), abs=1e-5)
    # the most popular movie (largest collaborative norm) has a collaborative part of norm exactly 1
    assert np.linalg.norm(movies[:, 12:], axis=1).max() == pytest.approx(1.0, abs=1e-6)


def test_hybrid_movie_parts_fails_on_a_broken_layout() -> None:
    as_array = pl.col("vector").cast(pl.Array(pl.Float32, 3))
    good = pl.DataFrame({"movie_id": [1, 2], "vector": [[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]]}).with_columns(as_array)
    assert rules.hybrid_movie_parts(good, 2).passed
    bad = pl.DataFrame({"movie_id": [1, 2], "vector": [[2.0, 0.0, 0.5], [0.0, 1.0, 1.5]]}).with_columns(as_array)
    result = rules.hybrid_movie_parts(bad, 2)
    assert not result.passed and result.metadata["examples"] == [1, 2]


def test_recomputed_identically_fails_on_a_changed_or_missing_vector() -> None:
    stored = pl.DataFrame({"user_id": [1, 2, 3], "vector": [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]}).with_columns(
        pl.col("vector").cast(pl.Array(pl.Float32, 2)))
    assert rules.recomputed_identically(stored, stored, "user_id").passed
    nudged = stored.with_columns(pl.when(pl.col("user_id") == 2).then(pl.lit([0.0, 1.0001]))
                                 .otherwise(pl.col("vector")).cast(pl.Array(pl.Float32, 2)).alias("vector"))
    changed = rules.recomputed_identically(stored, nudged, "user_id")
    assert not changed.passed and changed.metadata["differing"] == 1 and changed.metadata["examples"] == [2]
    missing = rules.recomputed_identically(stored.head(2), stored, "user_id")
    assert not missing.passed and missing.metadata["missing"] == 1
    assert not rules.recomputed_identically(stored, stored.head(0), "user_id").passed
