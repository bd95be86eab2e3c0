"""The scorers compared, each fitted on the training part only: users x movies scores, a block at a time.

- random: seeded uniform scores (the floor);
- most_popular: how many training ratings each movie has (the same list for everyone);
- content: the seed's `user_vectors` rule refitted on train, against `content_vectors`;
- collaborative: the taste stage's ALS movie vectors and recency-weighted user fold-in, refitted on train;
- hybrid: the served layout (content + collaborative in one vector), refitted on train;
- ease: EASE (Steck 2019), item-item closed form on binarised ratings (>= 3.5), lambda 250: the reference.
  It inverts a dense movies x movies Gram matrix, so it keeps the `ease_max_items` most rated movies
  (the rest score -inf); at ml-latest-small size that is every rated movie.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp
from scipy.linalg import lapack

from tv5_assets.embeddings.user_vectors import user_vectors as content_user_vectors
from tv5_assets.taste import factors, hybrid

Scores = Callable[[np.ndarray], np.ndarray]  # user rows -> (len(rows), movies) float32


@dataclass(frozen=True)
class Catalogue:
    """The training data in matrix form: rows are the split's users, columns the catalogue's movies."""

    user_ids: np.ndarray  # int32, sorted
    movie_ids: np.ndarray  # int32, sorted (content_vectors' movies)
    content: np.ndarray  # (movies, dim) content vectors, rows aligned with movie_ids
    train: pl.DataFrame  # user_id, movie_id, rating, timestamp (movies of the catalogue only)
    rated: sp.csr_matrix  # (users, movies) 1 where the user rated the movie in train

    @property
    def popularity(self) -> np.ndarray:
        return np.asarray(self.rated.sum(axis=0)).ravel()

    @property
    def content_frame(self) -> pl.DataFrame:
        """movie_id, vector: the content vectors as the stages' functions take them."""
        return pl.DataFrame({"movie_id": pl.Series(self.movie_ids, dtype=pl.Int32),
                             "vector": pl.Series(self.content, dtype=pl.Array(pl.Float32, self.content.shape[1]))})


def binary_matrix(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """float32 CSR with 1 at each (row, col), however often the pair repeats."""
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def catalogue(train: pl.DataFrame, content: pl.DataFrame, user_ids: np.ndarray) -> Catalogue:
    content = content.sort("movie_id")
    movie_ids = content["movie_id"].to_numpy()
    known = train.join(content.select("movie_id"), on="movie_id", how="semi", maintain_order="left")
    rows = np.searchsorted(user_ids, known["user_id"].to_numpy())
    cols = np.searchsorted(movie_ids, known["movie_id"].to_numpy())
    rated = binary_matrix(rows, cols, (len(user_ids), len(movie_ids)))
    return Catalogue(user_ids, movie_ids, np.asarray(content["vector"].to_numpy(), np.float32), known, rated)


def _rows_of(frame: pl.DataFrame, key_ids: np.ndarray, key: str, width: int) -> np.ndarray:
    """Vectors of `frame` (key, vector) placed at their key's position in `key_ids`; zeros where absent."""
    out = np.zeros((len(key_ids), width), np.float32)
    if frame.height:
        position = np.searchsorted(key_ids, frame[key].to_numpy())
        out[position] = np.asarray(frame["vector"].to_numpy(), np.float32)
    return out


def random_scores(data: Catalogue, seed: int) -> Scores:
    def scores(rows: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng([seed, int(rows[0]) if len(rows) else 0])
        return rng.random((len(rows), len(data.movie_ids)), dtype=np.float32)
    return scores


def popularity_scores(data: Catalogue) -> Scores:
    popular = data.popularity.astype(np.float32)
    return lambda rows: np.broadcast_to(popular, (len(rows), popular.size)).copy()


def content_taste(data: Catalogue) -> np.ndarray:
    """The seed's content user vectors, refitted on train (users x dim, aligned with data.user_ids)."""
    frame = content_user_vectors(data.train.lazy(), data.content_frame).frame
    return _rows_of(frame, data.user_ids, "user_id", data.content.shape[1])


def content_scores(taste: np.ndarray, data: Catalogue) -> Scores:
    return lambda rows: taste[rows] @ data.content.T


@dataclass(frozen=True)
class Collaborative:
    movies: np.ndarray  # (movies, factors)
    users: np.ndarray  # (users, factors), zeros for a user with no training rating


def collaborative(data: Catalogue, settings: factors.FactorSettings) -> Collaborative:
    movies = factors.movie_factors(data.train.lazy(), data.content_frame, settings).frame
    users = factors.user_factors(data.train.lazy(), movies.select("movie_id", "vector"), settings)
    return Collaborative(np.asarray(movies["vector"].to_numpy(), np.float32),
                         _rows_of(users, data.user_ids, "user_id", settings.factors))


def collaborative_scores(model: Collaborative) -> Scores:
    return lambda rows: model.users[rows] @ model.movies.T


@dataclass(frozen=True)
class Hybrid:
    movies: np.ndarray
    users: np.ndarray
    layout: hybrid.HybridLayout


def hybrid_vectors(taste: np.ndarray, model: Collaborative, content: np.ndarray, weight: float) -> Hybrid:
    layout = hybrid.layout_for(content.shape[1], model.movies, weight)
    return Hybrid(hybrid.movie_vectors(content, model.movies, layout),
                  hybrid.user_vectors(taste, model.users, weight), layout)


def hybrid_scores(vectors: Hybrid) -> Scores:
    return lambda rows: vectors.users[rows] @ vectors.movies.T


@dataclass(frozen=True)
class EaseSettings:
    l2: float = 250.0
    like_threshold: float = 3.5
    max_items: int = 10_000


def spd_inverse(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric positive definite matrix through its Cholesky factor (LAPACK potrf + potri):
    about a third of the work of a general inverse, 5.6x faster on EASE's 10,000 x 10,000 Gram matrix."""
    potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (matrix,))  # s- or d- by the matrix's dtype
    factor, info = potrf(matrix, lower=1, clean=0)
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky factorisation failed (LAPACK potrf info {info}): not positive definite")
    lower, info = potri(factor, lower=1, overwrite_c=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"inverse from the Cholesky factor failed (LAPACK potri info {info})")
    lower = np.tril(lower)
    return lower + np.tril(lower, -1).T


def ease_scores(data: Catalogue, settings: EaseSettings) -> tuple[Scores, int]:
    """EASE scores, and how many movies it covers (the `max_items` most rated, among those liked at least once)."""
    liked = data.train.filter(pl.col("rating") >= settings.like_threshold)
    rows = np.searchsorted(data.user_ids, liked["user_id"].to_numpy())
    cols = np.searchsorted(data.movie_ids, liked["movie_id"].to_numpy())
    matrix = binary_matrix(rows, cols, (len(data.user_ids), len(data.movie_ids)))
    counts = np.asarray(matrix.sum(axis=0)).ravel()
    order = np.argsort(-counts, kind="stable")
    items = np.sort(order[:min(settings.max_items, int((counts > 0).sum()))])
    sub = matrix[:, items].tocsc().astype(np.float32)
    gram = (sub.T @ sub).toarray()
    gram[np.diag_indices_from(gram)] += settings.l2
    precision = spd_inverse(gram)
    weights = precision / (-np.diag(precision))
    weights[np.diag_indices_from(weights)] = 0.0
    sub = sub.tocsr()
    width = len(data.movie_ids)

    def scores(rows: np.ndarray) -> np.ndarray:
        out = np.full((len(rows), width), -np.inf, np.float32)
        out[:, items] = sub[rows] @ weights
        return out

    return scores, len(items)
