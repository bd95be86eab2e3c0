"""Is the model of the last refit still as good on what users rate now? (plain functions, no Dagster)

The global models (ALS movie factors, the hybrid movie vectors and with them every user's fold-in) change only
at a refit, while every day brings new ratings. A day's new ratings are a fresh held-out set for those models:
for each user of the day who has a hybrid vector from the refit, rank every movie by inner product (as the
"for you" row does), leave out what the user had rated before the day, and count how many of the day's
positives (rating >= the evaluation's threshold) are in the top k: recall@k, as `metrics.recall_at_k`
defines it (hits / min(k, positives)), averaged over the users. `drifted` compares it with the served
recall@20 that `recommendation_quality` measured at the refit.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp

from tv5_assets.core.checking import RuleResult
from tv5_assets.evaluation import metrics
from tv5_assets.evaluation.split import SplitSettings

POSITIVE_THRESHOLD = SplitSettings().positive_threshold  # the evaluation's default: the same positives
# Why 500: a user's recall on a day's few positives is close to 0 or 1 (standard deviation up to 0.5), so the
# mean over n users has a standard error up to 0.5 / sqrt(n): 0.022 at 500 users, about the 10 % drop being
# judged on a recall near 0.25. Below that a "drop" is mostly noise, and a false alarm costs a full refit.
MIN_USERS = 500
PAIR = ["user_id", "movie_id"]


def _vectors(frame: pl.DataFrame) -> np.ndarray:
    return np.asarray(frame["vector"].to_numpy(), np.float32).reshape(frame.height, -1)


def _matrix(pairs: pl.DataFrame, user_ids: np.ndarray, movie_ids: np.ndarray) -> sp.csr_matrix:
    """(users, movies) float32 CSR with 1 at each pair (pairs of known users and movies only)."""
    rows = np.searchsorted(user_ids, pairs["user_id"].to_numpy())
    cols = np.searchsorted(movie_ids, pairs["movie_id"].to_numpy())
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(user_ids), len(movie_ids)))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def day_recall(day_ratings: pl.DataFrame, hybrid_user_vectors: pl.DataFrame | pl.LazyFrame,
               hybrid_movie_vectors: pl.DataFrame, rated_before: pl.DataFrame, k: int = 20,
               positive_threshold: float = POSITIVE_THRESHOLD, block: int = 256) -> tuple[float, int]:
    """(mean recall@k, users scored) of the refit's hybrid vectors on the day's new positive ratings.

    `day_ratings`: user_id, movie_id, rating of the day's new ratings; `hybrid_user_vectors` and
    `hybrid_movie_vectors`: user_id / movie_id, vector as the refit wrote them; `rated_before`: user_id, movie_id
    of the users' ratings before the day (excluded from their ranking, and never a positive). Users without a
    refit vector (new since) and positives of movies without a vector are left out. Ranked `block` users at a time;
    the top k is a set (argpartition), which is all recall needs. Deterministic: no sampling.
    """
    movies = hybrid_movie_vectors.select("movie_id", "vector").drop_nulls("vector").sort("movie_id")
    movie_ids = movies["movie_id"].to_numpy()
    positives = (day_ratings.filter(pl.col("rating") >= positive_threshold).select(PAIR).unique()
                 .join(rated_before.select(PAIR), on=PAIR, how="anti")
                 .join(movies.select("movie_id"), on="movie_id", how="semi"))
    users = (hybrid_user_vectors.lazy().select("user_id", "vector").drop_nulls("vector")
             .join(positives.lazy().select("user_id").unique(), on="user_id", how="semi")
             .sort("user_id").collect())
    if users.is_empty() or len(movie_ids) == 0:
        return 0.0, 0
    user_ids = users["user_id"].to_numpy()
    positives = positives.join(users.select("user_id"), on="user_id", how="semi")
    found = _matrix(positives, user_ids, movie_ids)
    seen = _matrix(rated_before.select(PAIR).join(users.select("user_id"), on="user_id", how="semi")
                   .join(movies.select("movie_id"), on="movie_id", how="semi"), user_ids, movie_ids)
    counts = np.asarray(found.sum(axis=1)).ravel().astype(np.int64)
    query, catalogue = _vectors(users), _vectors(movies)
    width = min(k, len(movie_ids))
    total = 0.0
    for start in range(0, len(user_ids), block):
        stop = min(start + block, len(user_ids))
        scores = query[start:stop] @ catalogue.T
        excluded = seen[start:stop].tocoo()
        scores[excluded.row, excluded.col] = -np.inf
        np.negative(scores, out=scores)  # argpartition keeps the smallest: the best scores negated
        top = np.argpartition(scores, width - 1, axis=1)[:, :width]
        hits = metrics.hit_matrix(top, found[start:stop])
        total += float(metrics.recall_at_k(hits, counts[start:stop], width).sum())
    return total / len(user_ids), len(user_ids)


def drifted(day_recall: float, refit_recall: float | None, max_drop_share: float, users: int,
            min_users: int = MIN_USERS) -> RuleResult:
    """Fails when the day's recall fell below the refit's by more than `max_drop_share` of it; passes, saying
    why, when there is no refit evaluation or too few users to judge."""
    figures: dict[str, object] = {"day_recall": round(day_recall, 4), "users": users,
                                  "max_drop_share": max_drop_share, "min_users": min_users}
    if refit_recall is None:
        return RuleResult(True, "no refit evaluation yet (recommendation_quality has no served recall@20): "
                                "nothing to compare with", {**figures, "refit_recall": None})
    drop = 1.0 - day_recall / refit_recall if refit_recall > 0 else 0.0
    figures |= {"refit_recall": round(refit_recall, 4), "drop_share": round(drop, 4)}
    if users < min_users:
        return RuleResult(True, f"too few users to judge: {users} of the day have a refit vector and a new "
                                f"positive (at least {min_users} needed); day recall {day_recall:.4f} vs refit "
                                f"{refit_recall:.4f}", figures)
    floor = refit_recall * (1.0 - max_drop_share)
    passed = day_recall >= floor
    verdict = "within" if passed else "more than"
    return RuleResult(passed, f"recall on the day's new ratings {day_recall:.4f} vs {refit_recall:.4f} at the refit "
                              f"({users} users): a drop of {drop:.1%}, {verdict} the {max_drop_share:.0%} allowed "
                              f"(floor {floor:.4f})", figures)
