"""Ranked lists and their figures: the top K of every evaluated user, rated movies excluded, and the table.

Segments: all evaluated users; cold users (at most `cold_user_max` training ratings); and, for every
user, the positives among rarely rated movies (at most `rare_movie_max` training ratings) and among
movies nobody rated in training, scored against the same full ranked list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from tv5_assets.core.topk import top_k_columns
from tv5_assets.evaluation import metrics
from tv5_assets.evaluation.scorers import Catalogue, Scores, binary_matrix

KS = (10, 20, 50)


@dataclass(frozen=True)
class Targets:
    """What each evaluated user must find: rows of the catalogue's users with at least one positive."""

    rows: np.ndarray  # evaluated users' rows in the catalogue
    positives: sp.csr_matrix  # (evaluated users, movies)


@dataclass(frozen=True)
class Segments:
    cold_user_max: int = 20
    rare_movie_max: int = 10


def targets(data: Catalogue, positives: pl.DataFrame) -> Targets:
    known = (positives.join(pl.DataFrame({"movie_id": data.movie_ids}).cast(positives.schema["movie_id"]),
                            on="movie_id", how="semi")
             .join(pl.DataFrame({"user_id": data.user_ids}).cast(positives.schema["user_id"]), on="user_id", how="semi"))
    users = np.searchsorted(data.user_ids, known["user_id"].to_numpy())
    rows = np.unique(users)
    matrix = binary_matrix(np.searchsorted(rows, users), np.searchsorted(data.movie_ids, known["movie_id"].to_numpy()),
                           (len(rows), len(data.movie_ids)))
    return Targets(rows, matrix)


def subset(goal: Targets, size: int, seed: int) -> Targets:
    """At most `size` of the evaluated users (seeded, in row order); all of them when there are not more."""
    if len(goal.rows) <= size:
        return goal
    keep = np.sort(np.random.default_rng(seed).choice(len(goal.rows), size=size, replace=False))
    return Targets(goal.rows[keep], goal.positives[keep])


def top_k(scores: Scores, data: Catalogue, rows: np.ndarray, k: int, block: int = 512) -> np.ndarray:
    """(len(rows), k) movie columns, best first, movies the user rated in train excluded."""
    out = np.empty((len(rows), k), np.int64)
    for start in range(0, len(rows), block):
        part = rows[start:start + block]
        block_scores = np.asarray(scores(part), dtype=np.float32)
        seen = data.rated[part].tocoo()
        block_scores[seen.row, seen.col] = -np.inf
        out[start:start + block] = top_k_columns(block_scores, k)[0]
    return out


def _figures(top: np.ndarray, positives: sp.csr_matrix, catalogue_size: int) -> dict[str, float]:
    counts = np.asarray(positives.sum(axis=1)).ravel().astype(np.int64)
    scored = counts > 0
    if not scored.any():
        return {"users": 0}
    hits = metrics.hit_matrix(top[scored], positives[scored])
    figures: dict[str, float] = {"users": int(scored.sum())}
    ks = [k for k in KS if k <= top.shape[1]]
    for k in ks:
        figures[f"recall@{k}"] = float(metrics.recall_at_k(hits, counts[scored], k).mean())
        figures[f"ndcg@{k}"] = float(metrics.ndcg_at_k(hits, counts[scored], k).mean())
    for k in ks:
        figures[f"coverage@{k}"] = metrics.coverage(top, k, catalogue_size)
    return figures


def segment_masks(data: Catalogue, goal: Targets, segments: Segments) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """segment -> (user mask over goal.rows, movie mask over the catalogue)."""
    train_counts = np.diff(data.rated.indptr)[goal.rows]
    popularity = data.popularity
    every_movie = np.ones(len(data.movie_ids), bool)
    every_user = np.ones(len(goal.rows), bool)
    return {
        "all users": (every_user, every_movie),
        f"cold users (<= {segments.cold_user_max} train ratings)": (train_counts <= segments.cold_user_max, every_movie),
        f"rare movies (<= {segments.rare_movie_max} train ratings)": (every_user, popularity <= segments.rare_movie_max),
        "movies unrated in train": (every_user, popularity == 0),
    }


def table(tops: Iterable[tuple[str, np.ndarray]], data: Catalogue, goal: Targets,
          segments: Segments) -> pl.DataFrame:
    """One row per (scorer, segment): users scored, recall@K, NDCG@K, coverage@K."""
    masks = segment_masks(data, goal, segments)
    records = []
    for scorer, top in tops:
        for segment, (users, movies) in masks.items():
            positives = goal.positives[users] @ sp.diags(movies.astype(np.float32))
            records.append({"scorer": scorer, "segment": segment,
                            **_figures(top[users], sp.csr_matrix(positives), len(data.movie_ids))})
    return pl.DataFrame(records).fill_null(0.0)
