"""What each user actually rated, as the features archetypes are assigned from.

Per user, from `ratings` joined to `movies`: how many ratings (activity), how spread over genres
(Shannon entropy of the genre mix, each film's weight split evenly over its genres, normalised to
[0, 1] by the log of the number of genres), and the shares of Children/Animation films, non-English
titles (see `title_language`), films from before 1980, action-like films (Action, Adventure, Sci-Fi,
Horror, Fantasy, Thriller), the mean release year, and the first rating's time.

Vectorised with a sparse user x movie matrix (ratings are sorted by user, so it is built without a
sort) times a sparse movie x genre matrix and a small dense movie x feature matrix: linear in the
number of ratings.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import sparse

from tv5_assets.synthetic.title_language import title_languages

KIDS_GENRES = ("Children", "Animation")
ACTION_GENRES = ("Action", "Adventure", "Sci-Fi", "Horror", "Fantasy", "Thriller")
CLASSIC_BEFORE = 1980
FEATURES = ("genre_entropy", "kids_share", "non_english_share", "classic_share", "action_share", "mean_year")


def movie_features(movies: pl.DataFrame) -> pl.DataFrame:
    """Per movie: genres, kids / action / classic / non-English flags, original language and year."""
    genres = pl.col("genres")
    return (
        movies.select("movie_id", "title", "year", "genres")
        .join(title_languages(movies.select("movie_id", "title")), on="movie_id", how="left")
        .with_columns(
            genres.list.eval(pl.element().is_in(KIDS_GENRES)).list.any().fill_null(False).alias("kids"),
            genres.list.eval(pl.element().is_in(ACTION_GENRES)).list.any().fill_null(False).alias("action"),
            (pl.col("year") < CLASSIC_BEFORE).fill_null(False).alias("classic"),
        )
    )


def _genre_matrix(features: pl.DataFrame) -> tuple[sparse.csr_array, list[str]]:
    """Sparse movie x genre weights, each movie's weight split evenly over its genres."""
    names = sorted(set(features["genres"].explode().drop_nulls().to_list()))
    exploded = features.select(pl.int_range(pl.len()).alias("row"), "genres").explode("genres").drop_nulls()
    weight = exploded.select((1.0 / pl.len().over("row")).alias("w"))["w"].to_numpy()
    column = exploded["genres"].replace_strict(names, list(range(len(names))), return_dtype=pl.Int64).to_numpy()
    shape = (features.height, max(len(names), 1))
    return sparse.csr_array((weight, (exploded["row"].to_numpy(), column)), shape=shape), names


def user_behaviour(ratings: pl.DataFrame | pl.LazyFrame, movies: pl.DataFrame) -> pl.DataFrame:
    """One row per rating user: user_id, ratings and the FEATURES, first_rating; sorted by user_id."""
    features = movie_features(movies)
    genre_matrix, genre_names = _genre_matrix(features)
    year = features["year"].cast(pl.Float64)
    has_year = year.is_not_null().to_numpy()
    dense = np.column_stack([
        features["kids"].to_numpy(), features["non_english"].to_numpy(), features["classic"].to_numpy(),
        features["action"].to_numpy(), has_year, year.fill_null(0.0).to_numpy(),
    ]).astype(np.float64)

    frame = ratings.lazy().select("user_id", "movie_id", pl.col("timestamp").dt.epoch("us").alias("t")).collect()
    movie_ids = features["movie_id"].to_numpy()
    lookup = np.full(int(max(movie_ids.max(initial=0), frame["movie_id"].max() or 0)) + 1, -1, dtype=np.int64)
    lookup[movie_ids] = np.arange(len(movie_ids))
    user = frame["user_id"].to_numpy()
    column = lookup[frame["movie_id"].to_numpy()]
    stamp = frame["t"].to_numpy()
    del frame
    if (column < 0).any():
        raise ValueError(f"{int((column < 0).sum())} rating(s) reference movies absent from movies")
    if len(user) and (np.diff(user) < 0).any():  # ratings are stored sorted; accept any order anyway
        order = np.argsort(user, kind="stable")
        user, column, stamp = user[order], column[order], stamp[order]
    counts = np.bincount(user) if len(user) else np.zeros(0, dtype=np.int64)
    user_ids = np.flatnonzero(counts)
    counts = counts[user_ids]
    indptr = np.concatenate([[0], np.cumsum(counts)])
    matrix = sparse.csr_array((np.ones(len(column)), column, indptr), shape=(len(user_ids), len(movie_ids)))
    genre_sums = (matrix @ genre_matrix).toarray()  # sparse x sparse: ~2 genres per rating, not 20
    kids, non_english, classic, action, with_year, year_sum = (matrix @ dense).T
    first = np.minimum.reduceat(stamp, indptr[:-1]) if len(stamp) else np.zeros(0, dtype=np.int64)

    totals = genre_sums.sum(axis=1, keepdims=True)
    share = np.divide(genre_sums, totals, out=np.zeros_like(genre_sums), where=totals > 0)
    logs = np.log(share, out=np.zeros_like(share), where=share > 0)
    entropy = -(share * logs).sum(axis=1) / np.log(max(len(genre_names), 2))
    return pl.DataFrame({
        "user_id": user_ids.astype(np.int32),
        "ratings": counts.astype(np.int64),
        "genre_entropy": entropy,
        "kids_share": kids / counts,
        "non_english_share": non_english / counts,
        "classic_share": classic / counts,
        "action_share": action / counts,
        "mean_year": np.divide(year_sum, with_year, out=np.full(len(counts), np.nan), where=with_year > 0),
        "first_rating": pl.Series(first, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
    })
