"""The evaluation's pure parts: metrics against hand-computed cases, the temporal split, no leakage of
held-out ratings into the train-side vectors, and the quality rules both ways."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from tv5_assets.evaluation import metrics, rules
from tv5_assets.evaluation.evaluate import (
    POPULAR,
    SERVED,
    SERVED_ANN,
    SERVED_SEARCHED_USERS,
    EvaluationSettings,
    evaluate,
    exclude_rated,
)
from tv5_assets.evaluation.split import SplitSettings, temporal_split
from tv5_assets.taste.factors import FactorSettings


def test_recall_and_ndcg_match_hand_computed_values() -> None:
    # user 0: positives {1, 3}; ranked [3, 0, 1, 2] -> hits at ranks 1 and 3
    # user 1: positive {2}; ranked [0, 1, 4, 3] -> no hit
    top = np.array([[3, 0, 1, 2], [0, 1, 4, 3]])
    positives = sp.csr_matrix(np.array([[0, 1, 0, 1, 0], [0, 0, 1, 0, 0]], dtype=np.float32))
    hits = metrics.hit_matrix(top, positives)
    assert hits.tolist() == [[True, False, True, False], [False, False, False, False]]
    counts = np.array([2, 1])
    assert metrics.recall_at_k(hits, counts, 1).tolist() == [1.0, 0.0]  # 1 / min(1, 2)
    assert metrics.recall_at_k(hits, counts, 4).tolist() == [1.0, 0.0]  # 2 / min(4, 2)
    assert metrics.recall_at_k(hits, counts, 2).tolist() == [0.5, 0.0]
    # NDCG@3, user 0: DCG = 1/log2(2) + 1/log2(4) = 1.5; ideal = 1 + 1/log2(3)
    ndcg = metrics.ndcg_at_k(hits, counts, 3)
    assert ndcg[0] == pytest.approx(1.5 / (1 + 1 / np.log2(3)))
    assert ndcg[1] == 0.0
    assert metrics.coverage(top, 2, catalogue=5) == pytest.approx(3 / 5)  # {3, 0, 1}


def test_a_short_list_counts_its_missing_ranks_as_misses() -> None:
    top = np.array([[2, -1, -1]])
    positives = sp.csr_matrix(np.array([[1, 0, 1]], dtype=np.float32))
    assert metrics.hit_matrix(top, positives).tolist() == [[True, False, False]]  # -1 is not movie 2 (the last)
    assert metrics.coverage(top, 3, catalogue=3) == pytest.approx(1 / 3)


def test_search_requests_stay_within_the_reply_budget() -> None:
    from tv5_assets.evaluation.ann import request_plan

    wanted = np.array([60, 60, 70, 3_000, 9_000, 20_000])
    plan = request_plan(wanted, cap=16_384, max_queries=2, max_hits=10_000)
    assert plan == [(0, 2, 60), (2, 4, 3_000), (4, 5, 9_000), (5, 6, 16_384)]  # 2 x 3,000 hits fit 10,000
    assert [stop for _, stop, _ in plan][-1] == len(wanted)  # every query planned once, in order
    assert request_plan(np.array([80] * 5), cap=100, max_queries=50, max_hits=10_000) == [(0, 5, 80)]


def test_two_round_search_gives_the_lists_of_one_full_search() -> None:
    from tv5_assets.evaluation.ann import search_in_two_rounds

    rng = np.random.default_rng(7)
    movies, users = rng.normal(size=(300, 8)), rng.normal(size=(40, 8))
    ranking_all = np.argsort(-(users @ movies.T), axis=1, kind="stable")
    k = 10
    # heavy raters rated their own top 30 (the first round of 2k = 20 finds none unrated); others rated at random
    rated = [ranking_all[u, :30] if u % 4 == 0 else rng.choice(300, size=rng.integers(0, 60), replace=False)
             for u in range(len(users))]
    limit = k + max(len(r) for r in rated)
    calls: list[tuple[int, int]] = []

    def search(rows: np.ndarray, at_most: int) -> list[list[int]]:
        calls.append((len(rows), at_most))
        return [ranking_all[u, :at_most].tolist() for u in rows]

    two_rounds, twice = search_in_two_rounds(search, rated, k, limit)
    assert two_rounds.tolist() == exclude_rated([ranking_all[u, :limit] for u in range(40)], rated, k).tolist()
    assert 10 <= twice < 40 and calls == [(40, 2 * k), (twice, limit)]  # only the short lists searched again
    assert (two_rounds >= 0).all()

    calls.clear()  # the first round already holds the full limit: one round
    assert search_in_two_rounds(search, [np.array([], np.int64)] * 3, k, 15)[1] == 0 and calls == [(3, 15)]


def test_exclude_rated_keeps_the_order_and_pads() -> None:
    assert exclude_rated([[5, 1, 7, 2]], [np.array([1, 2])], 3).tolist() == [[5, 7, -1]]


def _ratings(rows: list[tuple[int, int, float, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"user_id": pl.Int32, "movie_id": pl.Int32, "rating": pl.Float32,
                                      "timestamp": pl.Int64}, orient="row").with_columns(
        pl.from_epoch("timestamp", time_unit="s").dt.replace_time_zone("UTC"))


def test_temporal_split_holds_out_each_users_last_fifth_by_time() -> None:
    # user 1 rated 10 movies at times 10..1 (reverse order in the file); user 2 rated once
    rows = [(1, m, 4.5 if m % 2 else 3.0, 100 - m) for m in range(1, 11)] + [(2, 1, 5.0, 7)]
    split = temporal_split(_ratings(rows), SplitSettings())
    assert sorted(split.train.filter(pl.col("user_id") == 1)["movie_id"]) == list(range(3, 11))
    assert sorted(split.held_out["movie_id"]) == [1, 2]  # the two latest: times 99 and 98
    assert split.positives.rows() == [(1, 1)]  # movie 1 rated 4.5; movie 2 rated 3.0 is not a positive
    assert split.train.filter(pl.col("user_id") == 2).height == 1  # a single rating stays in train
    assert (split.users_sampled, split.users_total) == (2, 2)


def test_user_sample_keeps_whole_users() -> None:
    rows = [(u, m, 4.0, u * 100 + m) for u in range(1, 51) for m in range(1, 6)]
    split = temporal_split(_ratings(rows), SplitSettings(max_users=10, seed=3))
    users = set(split.train["user_id"]) | set(split.held_out["user_id"])
    assert len(users) == 10 and split.users_total == 50
    assert split.train.height + split.held_out.height == 50  # all 5 ratings of each sampled user


def _synthetic_ratings(seed: int = 0, users: int = 80, movies: int = 60) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(1, users + 1):
        liked = rng.choice(movies, size=rng.integers(8, 25), replace=False, p=np.linspace(2, 1, movies) / np.linspace(2, 1, movies).sum())
        for order, movie in enumerate(liked):
            rows.append((user, int(movie) + 1, float(rng.choice([2.0, 3.5, 4.0, 5.0])), 1_000_000 + user * 1000 + order))
    content = rng.normal(size=(movies, 16)).astype(np.float32)
    content /= np.linalg.norm(content, axis=1, keepdims=True)
    vectors = pl.DataFrame({"movie_id": pl.Series(np.arange(1, movies + 1), dtype=pl.Int32),
                            "vector": pl.Series(content, dtype=pl.Array(pl.Float32, 16))})
    return _ratings(rows), vectors


SMALL = EvaluationSettings(factors=FactorSettings(factors=8, iterations=5), weight_grid=(0.0, 0.5))


def test_held_out_ratings_never_reach_the_train_side_vectors() -> None:
    ratings, content = _synthetic_ratings()
    baseline = evaluate(ratings, content, SMALL)
    held = temporal_split(ratings, SMALL.split).held_out.select("user_id", "movie_id")
    # the same train part, with every held-out rating's movie and stars changed
    altered = ratings.with_row_index("_row").join(held.with_columns(pl.lit(True).alias("_held")),
                                                  on=["user_id", "movie_id"], how="left").sort("_row")
    changed = altered.with_columns(
        pl.when(pl.col("_held")).then((pl.col("movie_id") % 60) + 1).otherwise(pl.col("movie_id")).alias("movie_id"),
        pl.when(pl.col("_held")).then(pl.lit(5.0, pl.Float32)).otherwise(pl.col("rating")).alias("rating"),
    ).drop("_row", "_held")
    other = evaluate(changed, content, SMALL)
    assert np.array_equal(baseline.served.users, other.served.users)
    assert np.array_equal(baseline.served.movies, other.served.movies)
    assert not baseline.split.held_out.equals(other.split.held_out)  # the held-out part did change
    # and the comparison can fail: one changed *train* rating changes the train-side vectors
    first_train = temporal_split(ratings, SMALL.split).train.row(0, named=True)
    moved = ratings.with_columns(pl.when((pl.col("user_id") == first_train["user_id"])
                                         & (pl.col("movie_id") == first_train["movie_id"]))
                                 .then(pl.lit(59, pl.Int32)).otherwise(pl.col("movie_id")).alias("movie_id"))
    assert not np.array_equal(baseline.served.users, evaluate(moved, content, SMALL).served.users)


def test_evaluation_ranks_every_scorer_with_the_same_users() -> None:
    ratings, content = _synthetic_ratings(seed=1)
    result = evaluate(ratings, content, SMALL, ann_top=lambda movies, users, rated, k: exclude_rated(
        np.argsort(-(users @ movies.T), axis=1).tolist(), rated, k))
    everyone = result.table.filter(pl.col("segment") == "all users")
    assert everyone["users"].n_unique() == 1 and everyone["users"][0] > 0
    # an exact "ANN" (full numpy sort) gives the exact ranking's figures
    assert result.figure(SERVED_ANN) == pytest.approx(result.figure(SERVED))
    assert set(result.validation["content_weight"]) == {0.0, 0.5}


def test_a_searched_subset_is_compared_with_the_exact_ranking_of_the_same_users() -> None:
    ratings, content = _synthetic_ratings(seed=2)
    exact_search = lambda movies, users, rated, k: exclude_rated(  # noqa: E731
        np.argsort(-(users @ movies.T), axis=1).tolist(), rated, k)
    settings = EvaluationSettings(factors=FactorSettings(factors=8, iterations=5), weight_grid=(0.5,), ann_max_users=25)
    result = evaluate(ratings, content, settings, ann_top=exact_search)
    everyone = result.table.filter(pl.col("segment") == "all users")
    users = dict(zip(everyone["scorer"], everyone["users"]))
    assert users[SERVED_ANN] == users[SERVED_SEARCHED_USERS] == 25 < users[SERVED]
    assert result.figure(SERVED_ANN) == pytest.approx(result.figure(SERVED_SEARCHED_USERS))
    assert rules.ann_agrees_with_exact(result.table).metadata["exact"] == pytest.approx(
        result.figure(SERVED_SEARCHED_USERS))
    # against popularity, the exact ranking of every evaluated user speaks for the served vectors
    assert rules.served_scorer(result.table) == SERVED


def _table(served: float, popular: float, exact: float | None = None) -> pl.DataFrame:
    rows = [{"scorer": POPULAR, "segment": "all users", "users": 10, "recall@20": popular},
            {"scorer": SERVED_ANN, "segment": "all users", "users": 10, "recall@20": served}]
    if exact is not None:
        rows.append({"scorer": SERVED, "segment": "all users", "users": 10, "recall@20": exact})
    return pl.DataFrame(rows)


def test_served_beats_most_popular_both_ways() -> None:
    passed = rules.served_beats_most_popular(_table(0.16, 0.10))
    assert passed.passed and passed.metadata["ratio"] == pytest.approx(1.6)
    failed = rules.served_beats_most_popular(_table(0.02, 0.10))
    assert not failed.passed and "0.0200 vs most popular 0.1000" in failed.description


def test_ann_agrees_with_exact_both_ways() -> None:
    assert rules.ann_agrees_with_exact(_table(0.163, 0.1, exact=0.166)).passed
    lost = rules.ann_agrees_with_exact(_table(0.10, 0.1, exact=0.166))
    assert not lost.passed and lost.metadata["ratio"] < 0.95
    assert not rules.ann_agrees_with_exact(_table(0.16, 0.1)).passed  # no exact row: not shown, not passed


def test_spd_inverse_matches_the_general_inverse_and_refuses_an_indefinite_matrix() -> None:
    from tv5_assets.evaluation.scorers import spd_inverse

    rng = np.random.default_rng(0)
    liked = (rng.random((400, 300)) < 0.05).astype(np.float32)
    gram = liked.T @ liked + 250.0 * np.eye(300, dtype=np.float32)
    inverse = spd_inverse(gram)
    assert inverse.dtype == np.float32
    np.testing.assert_allclose(inverse, np.linalg.inv(gram.astype(np.float64)), atol=1e-7)
    np.testing.assert_array_equal(inverse, inverse.T)
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        spd_inverse(-gram)


def test_top_k_columns_picks_the_highest_scores_best_first_and_masked_ones_last() -> None:
    from tv5_assets.core.topk import top_k_columns

    scores = np.random.default_rng(3).random((40, 500), dtype=np.float32)
    scores[:, :5] = -np.inf  # e.g. movies the user rated
    columns, values = top_k_columns(scores, 20)
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :20]
    np.testing.assert_array_equal(columns, expected)
    np.testing.assert_array_equal(values, np.take_along_axis(scores, expected, axis=1))
    columns, _ = top_k_columns(scores[:, :8], 8)  # fewer finite scores than k: the masked ones come last
    assert set(columns[0, :3]) == {5, 6, 7} and set(columns[0, 3:]) == {0, 1, 2, 3, 4}
    with pytest.raises(ValueError, match="more than the 8 columns"):
        top_k_columns(scores[:, :8], 9)
