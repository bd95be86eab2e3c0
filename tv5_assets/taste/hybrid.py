"""Hybrid vectors: content and collaborative parts in one vector each, so one search ranks by both.

For user u and movie i the "for you" score is score(u, i) = w^2 * c_u . c_i + p_u . q_i / (|p_u| M): the
content similarity (taste vector c_u against content vector c_i, both unit) weighted by w^2, plus the
collaborative score (ALS user p_u against movie q_i, M = the largest |q_i|, so every |q_i| / M <= 1).
As vectors, searched by inner product (the collection's metric is IP):

    movie: [c_i, q_i / M]                          (norm between 1 and sqrt(2): popularity counts)
    user:  [w^2 * c_u, p_u / |p_u|] / sqrt(w^4 + 1)  (unit)

so user . movie = score(u, i) / sqrt(w^4 + 1). The weight sits on the user side so that every movie keeps
its whole unit content part, and a movie nobody rated has the factors its content predicts, so it is
reachable through both parts. Why not cosine over movies padded to one norm (the MIPS-to-cosine
reduction, which ranks identically): at 62K movies the padding coordinate dominated the movie side,
user queries (padding 0) sat far from every movie, and HNSW found only ~60 % of the exact top 50 at
ef=100 (~77 % at ef=2000), on Lite and on the server alike; inner product at M=32 finds ~91 % at ef=100.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

CONTENT_WEIGHT = 0.5  # w: the best of the grid on a validation split of ml-latest-small (recommendation_quality)


@dataclass(frozen=True)
class HybridLayout:
    """Where each part sits in a hybrid vector, and the scale applied to movie factors."""

    content_dim: int
    factors: int
    content_weight: float
    factor_scale: float  # 1 / M, M = the largest collaborative movie norm

    @property
    def dimension(self) -> int:
        return self.content_dim + self.factors

    def describe(self) -> dict[str, object]:
        return {"content": [0, self.content_dim], "collaborative": [self.content_dim, self.dimension],
                "content_weight": self.content_weight, "factor_scale": self.factor_scale}


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), np.float32(1e-12))


def layout_for(content_dim: int, movie_factors: np.ndarray, content_weight: float) -> HybridLayout:
    largest = float(np.linalg.norm(movie_factors, axis=1).max()) if len(movie_factors) else 1.0
    return HybridLayout(content_dim, movie_factors.shape[1], content_weight, 1.0 / max(largest, 1e-12))


def movie_vectors(content: np.ndarray, factors: np.ndarray, layout: HybridLayout) -> np.ndarray:
    """Hybrid vectors of movies (rows aligned: content row i and factor row i are the same movie)."""
    scaled = (factors * np.float32(layout.factor_scale)).astype(np.float32)
    return np.hstack([_unit_rows(content.astype(np.float32)), scaled]).astype(np.float32)


def user_vectors(content: np.ndarray, factors: np.ndarray, content_weight: float) -> np.ndarray:
    """Unit hybrid vectors of users (rows aligned); a user with no collaborative part keeps the content one."""
    w2 = np.float32(content_weight ** 2)
    return _unit_rows(np.hstack([w2 * _unit_rows(content), _unit_rows(factors)]).astype(np.float32))


def aligned(left: pl.DataFrame, right: pl.DataFrame, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keys present in both frames (key, vector), sorted, with their two vector matrices row-aligned."""
    both = left.select(key, pl.col("vector").alias("a")).join(right.select(key, pl.col("vector").alias("b")),
                                                               on=key, how="inner").sort(key)
    return (both[key].to_numpy(), np.asarray(both["a"].to_numpy(), np.float32),
            np.asarray(both["b"].to_numpy(), np.float32))


def frame(key: str, ids: np.ndarray, vectors: np.ndarray) -> pl.DataFrame:
    """key i32, vector array[f32, dim]: the stored form of hybrid vectors."""
    return pl.DataFrame({key: pl.Series(ids, dtype=pl.Int32),
                         "vector": pl.Series(vectors, dtype=pl.Array(pl.Float32, vectors.shape[1]))})
