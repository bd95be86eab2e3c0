"""The whole measurement in plain functions: split, fit every scorer on train, rank, tabulate.

The served hybrid is also searched through a vector index (`ann_top`, given by the caller: the asset
passes a Milvus search), so the figure that counts is the one the recommender's real search path gets.
Its content weight is chosen on a validation split carved out of train the same way (each user's last
ratings in train), never on the held-out ratings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from tv5_assets.evaluation import ranking, scorers
from tv5_assets.evaluation.split import Split, SplitSettings, temporal_split
from tv5_assets.taste import hybrid
from tv5_assets.taste.factors import FactorSettings

# (movie vectors, user vectors of the rows, rows' rated movie columns per user, k) -> (rows, k) movie columns
AnnTop = Callable[[np.ndarray, np.ndarray, list[np.ndarray], int], np.ndarray]

WEIGHT_GRID = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
SERVED = "hybrid (served)"
SERVED_ANN = "hybrid (served, ANN search)"
SERVED_SEARCHED_USERS = "hybrid (served, exact, searched users only)"
REFERENCE = "ease (reference)"
POPULAR = "most popular"


@dataclass(frozen=True)
class EvaluationSettings:
    split: SplitSettings = field(default_factory=SplitSettings)
    factors: FactorSettings = field(default_factory=FactorSettings)
    content_weight: float = hybrid.CONTENT_WEIGHT  # the served weight
    weight_grid: tuple[float, ...] = WEIGHT_GRID
    ease: scorers.EaseSettings = field(default_factory=scorers.EaseSettings)
    segments: ranking.Segments = field(default_factory=ranking.Segments)
    ann_max_users: int = 2_000  # users searched through the vector index (a seeded subset when more)
    validation_users: int = 3_000  # users ranked per content weight on the validation split (seeded subset)
    seed: int = 0


@dataclass(frozen=True)
class Evaluation:
    table: pl.DataFrame  # scorer, segment, users, recall@K, ndcg@K, coverage@K
    validation: pl.DataFrame  # content_weight, recall@20 on the validation split
    chosen_weight: float
    ease_items: int
    split: Split
    served: scorers.Hybrid  # the train-side hybrid vectors that were ranked and searched
    seconds: dict[str, float]

    def figure(self, scorer: str, metric: str = "recall@20", segment: str = "all users") -> float:
        row = self.table.filter((pl.col("scorer") == scorer) & (pl.col("segment") == segment))
        return float(row[metric][0]) if row.height else 0.0


def validation_curve(split: Split, content: pl.DataFrame, settings: EvaluationSettings) -> pl.DataFrame:
    """recall@20 of the hybrid per content weight, fitted on train minus its last share, scored on that share
    (for at most `validation_users` users: one ranking per weight)."""
    inner = temporal_split(split.train, replace(settings.split, max_users=split.users_sampled + 1))
    data = scorers.catalogue(inner.train, content, np.sort(split.train["user_id"].unique().to_numpy()))
    goal = ranking.subset(ranking.targets(data, inner.positives), settings.validation_users, settings.seed)
    taste = scorers.content_taste(data)
    model = scorers.collaborative(data, settings.factors)
    records = []
    for weight in settings.weight_grid:
        vectors = scorers.hybrid_vectors(taste, model, data.content, weight)
        top = ranking.top_k(scorers.hybrid_scores(vectors), data, goal.rows, 20)
        figures = ranking.table([("hybrid", top)], data, goal, settings.segments).row(0, named=True)
        records.append({"content_weight": weight, "recall@20": figures["recall@20"], "ndcg@20": figures["ndcg@20"]})
    return pl.DataFrame(records)


def evaluate(ratings: pl.LazyFrame | pl.DataFrame, content: pl.DataFrame, settings: EvaluationSettings,
             ann_top: AnnTop | None = None, log: Callable[[str], None] = lambda _: None) -> Evaluation:
    """Every scorer on the temporal split of `ratings`, ranked over the movies of `content` (movie_id, vector)."""
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[step] = round(now - clock, 3)
        clock = now
        log(f"recommendation_quality: {step} done in {seconds[step]:.1f} s")

    split = temporal_split(ratings, settings.split)
    data = scorers.catalogue(split.train, content, np.sort(split.train["user_id"].unique().to_numpy()))
    goal = ranking.targets(data, split.positives)
    lap("split")
    validation = validation_curve(split, content, settings)
    best = validation.sort(["recall@20", "content_weight"], descending=[True, False]).row(0, named=True)
    lap("validation")
    k = max(ranking.KS)
    tops: list[tuple[str, np.ndarray]] = [
        ("random", ranking.top_k(scorers.random_scores(data, settings.seed), data, goal.rows, k)),
        (POPULAR, ranking.top_k(scorers.popularity_scores(data), data, goal.rows, k)),
    ]
    taste = scorers.content_taste(data)
    tops.append(("content user vectors (seed)", ranking.top_k(scorers.content_scores(taste, data), data, goal.rows, k)))
    lap("random, popular, content")
    model = scorers.collaborative(data, settings.factors)
    tops.append(("collaborative (ALS)", ranking.top_k(scorers.collaborative_scores(model), data, goal.rows, k)))
    lap("collaborative")
    served = scorers.hybrid_vectors(taste, model, data.content, settings.content_weight)
    tops.append((SERVED, ranking.top_k(scorers.hybrid_scores(served), data, goal.rows, k)))
    lap("hybrid")
    searched_tops: list[tuple[str, np.ndarray]] = []
    searched = ranking.subset(goal, settings.ann_max_users, settings.seed)
    if ann_top is not None:
        rated = [data.rated.indices[data.rated.indptr[r]:data.rated.indptr[r + 1]] for r in searched.rows]
        searched_tops.append((SERVED_ANN, ann_top(served.movies, served.users[searched.rows], rated, k)))
        if len(searched.rows) < len(goal.rows):  # the exact ranking of the same users, for a fair comparison
            searched_tops.append((SERVED_SEARCHED_USERS, ranking.top_k(scorers.hybrid_scores(served), data,
                                                                       searched.rows, k)))
        lap(f"hybrid through the vector index ({len(searched.rows)} users)")
    ease, ease_items = scorers.ease_scores(data, settings.ease)
    tops.append((REFERENCE, ranking.top_k(ease, data, goal.rows, k)))
    lap("ease")
    table = pl.concat([ranking.table(tops, data, goal, settings.segments),
                       *([ranking.table(searched_tops, data, searched, settings.segments)] if searched_tops else [])],
                      how="diagonal_relaxed")
    lap("metrics")
    return Evaluation(table, validation, float(best["content_weight"]), ease_items, split, served, seconds)


def exclude_rated(found: Sequence[Sequence[int]], rated: Sequence[np.ndarray], k: int) -> np.ndarray:
    """The first k columns of each ranked list that the user did not rate in train (-1 where too few)."""
    out = np.full((len(found), k), -1, np.int64)
    for row, (ranked, seen) in enumerate(zip(found, rated)):
        kept = np.asarray(ranked, np.int64)
        kept = kept[~np.isin(kept, seen)][:k]
        out[row, :len(kept)] = kept
    return out
