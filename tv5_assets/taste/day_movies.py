"""The movie side of the movies a day brings in, against the fixed global models (no Dagster here).

ALS's item factors refit on their own clock, so a new movie gets what the last full build gives a movie nobody
rated: the factors its content vector predicts through the ridge regression fitted on every rated movie
(`factors.content_to_factors`, refitted here from the served factors, which reproduces the build's weights). Its
hybrid vector is built by the served layout (the factor scale of the served movie factors).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from tv5_assets.taste import factors, hybrid


def _matrix(frame: pl.DataFrame) -> np.ndarray:
    return np.asarray(frame["vector"].to_numpy(), dtype=np.float32)


def cold_factors(content_vectors: pl.DataFrame, collaborative_movie_vectors: pl.DataFrame,
                 extra_content: pl.DataFrame, ridge: float) -> pl.DataFrame:
    """movie_id, vector, ratings (0), cold (true) for each movie of `extra_content` (movie_id, vector)."""
    served = collaborative_movie_vectors.sort("movie_id")
    dimension = served.schema["vector"].size
    extra = extra_content.select("movie_id", "vector").sort("movie_id")
    rated = content_vectors.select("movie_id", "vector").join(
        served.filter(~pl.col("cold")).select("movie_id", pl.col("vector").alias("factors")), on="movie_id",
        how="inner").sort("movie_id")
    if extra.height and rated.height:
        weights = factors.content_to_factors(_matrix(rated), np.asarray(rated["factors"].to_numpy(), np.float32),
                                             ridge)
        predicted = _matrix(extra) @ weights
    else:
        predicted = np.zeros((extra.height, dimension), dtype=np.float32)
    return pl.DataFrame({
        "movie_id": extra["movie_id"].cast(pl.Int32),
        "vector": pl.Series(predicted.astype(np.float32), dtype=pl.Array(pl.Float32, dimension)),
        "ratings": pl.Series(np.zeros(extra.height, dtype=np.uint32), dtype=pl.UInt32),
        "cold": pl.Series(np.ones(extra.height, dtype=bool), dtype=pl.Boolean),
    })


def hybrid_movies(extra_content: pl.DataFrame, extra_factors: pl.DataFrame,
                  collaborative_movie_vectors: pl.DataFrame) -> pl.DataFrame:
    """movie_id, vector: the hybrid vectors of the extra movies, by the layout of the served movie factors."""
    content_dim = extra_content.schema["vector"].size
    layout = hybrid.layout_for(content_dim, _matrix(collaborative_movie_vectors), hybrid.CONTENT_WEIGHT)
    ids, content, collab = hybrid.aligned(extra_content, extra_factors, "movie_id")
    if not ids.size:
        return pl.DataFrame(schema={"movie_id": pl.Int32, "vector": pl.Array(pl.Float32, layout.dimension)})
    return hybrid.frame("movie_id", ids, hybrid.movie_vectors(content, collab, layout))
