"""A user's taste as one vector: the rating-weighted mean of the content vectors of what they rated.

weight = clip((rating - 1) / 4, 0, 1): the seed's (rating - 1) / 4, clipped at 0 because MovieLens
has 0.5-star ratings, which the seed's formula turns negative. A user whose weights are all zero
(only ratings of 1 or less) falls back to the unweighted mean of what they rated. The mean is then
L2-normalised (so dividing by the weight sum is not needed). All users at once: one sparse
(users x movies) weight matrix times the dense (movies x dim) content matrix, its row blocks
spread over the cores (scipy's kernel is single-threaded but releases the GIL).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from tv5_assets.embeddings.cache import vector_column


def rating_weight(rating: pl.Expr) -> pl.Expr:
    return ((rating.cast(pl.Float32) - 1.0) / 4.0).clip(0.0, 1.0).cast(pl.Float32)


@dataclass(frozen=True)
class UserVectors:
    frame: pl.DataFrame  # user_id i32, vector array[f32, dim], sorted by user_id
    ratings_used: int
    ratings_without_vector: int  # ratings of movies that have no content vector (left out)
    zero_weight_users: int  # users who fell back to the unweighted mean


def dense_codes(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct ids and each id's position among them; linear time for compact ids (MovieLens)."""
    if ids.size and ids.min() >= 0 and ids.max() < 4 * ids.size + 1_000_000:
        present = np.zeros(int(ids.max()) + 1, dtype=bool)
        present[ids] = True
        position = np.cumsum(present, dtype=np.int64) - 1
        return np.flatnonzero(present).astype(ids.dtype), position[ids]
    distinct, codes = np.unique(ids, return_inverse=True)
    return distinct, codes


def weight_matrix(rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, shape: tuple[int, int]) -> sp.csr_array:
    """CSR (users x movies); built directly when rows are already grouped by user (ratings are sorted so)."""
    if rows.size and np.all(rows[1:] >= rows[:-1]):
        indptr = np.zeros(shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
        return sp.csr_array((weights, cols, indptr), shape=shape)
    return sp.csr_array((weights, (rows, cols)), shape=shape)


def sparse_dot(matrix: sp.csr_array, dense: np.ndarray, workers: int | None = None) -> np.ndarray:
    """matrix @ dense as float32, row blocks computed on `workers` threads."""
    workers = workers or os.cpu_count() or 1
    out = np.empty((matrix.shape[0], dense.shape[1]), dtype=np.float32)
    edges = np.linspace(0, matrix.shape[0], 4 * workers + 1).astype(np.int64)

    def block(begin: int, end: int) -> None:
        out[begin:end] = matrix[begin:end] @ dense

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(block, edges[:-1], edges[1:]))
    return out


def l2_normalise(matrix: np.ndarray) -> np.ndarray:
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), np.float32(1e-12))
    return matrix


def user_vectors(ratings: pl.DataFrame | pl.LazyFrame, content: pl.DataFrame) -> UserVectors:
    """One L2-normalised vector per user of `ratings` (user_id, movie_id, rating) from `content` (movie_id, vector)."""
    movie_index = content.select("movie_id").with_row_index("col").with_columns(pl.col("col").cast(pl.Int32))
    joined = (
        ratings.lazy()
        .select("user_id", "movie_id", rating_weight(pl.col("rating")).alias("weight"))
        .join(movie_index.lazy(), on="movie_id", how="left", maintain_order="left")
        .collect()
    )
    ratings_total = joined.height
    known = joined.drop_nulls("col")
    del joined
    users, rows = dense_codes(known["user_id"].to_numpy())
    weights = known["weight"].to_numpy()
    matrix = weight_matrix(rows, known["col"].to_numpy(), weights, (users.size, content.height))
    zero = np.asarray(matrix.sum(axis=1)).ravel() == 0
    if zero.any():  # all-zero users: every weight 1, i.e. the unweighted mean
        matrix.data[np.repeat(zero, np.diff(matrix.indptr))] = 1.0
    taste = l2_normalise(sparse_dot(matrix, content["vector"].to_numpy()))
    frame = pl.DataFrame({"user_id": pl.Series(users, dtype=pl.Int32)}).with_columns(vector_column(taste))
    return UserVectors(frame=frame, ratings_used=known.height, ratings_without_vector=ratings_total - known.height,
                       zero_weight_users=int(zero.sum()))
