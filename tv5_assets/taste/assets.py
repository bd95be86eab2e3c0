"""Taste stage: collaborative vectors from ratings and the hybrid vectors the "for you" row searches
(thin Dagster wiring around `factors` and `hybrid`).

The hyperparameters are code (`FactorSettings`, `hybrid.CONTENT_WEIGHT`), not run config: changing
one changes the assets' code versions, so exactly these assets and their readers become unsynced, and
`recommendation_quality` measures the very settings that are served.
"""


import time

import dagster as dg
import numpy as np
import polars as pl

from tv5_assets.core import charts
from tv5_assets.core.metadata import markdown_table
from tv5_assets.core.storage import frame_fingerprint
from tv5_assets.core.versioning import versioned_asset
from tv5_assets.taste import factors, hybrid

GROUP = "taste"
OWNERS = ["team:data-platform"]
SETTINGS = factors.FactorSettings()
PICTURE_SAMPLE = 2_000


def _output(frame: pl.DataFrame, started: float, **metadata: object) -> dg.Output[pl.DataFrame]:
    vectors = np.asarray(frame["vector"].to_numpy()[charts.sample_positions(frame.height, PICTURE_SAMPLE)])
    return dg.Output(frame, data_version=dg.DataVersion(frame_fingerprint(frame)), metadata={
        "rows": frame.height,
        "dimension": frame.schema["vector"].size,
        **{k: dg.MetadataValue.json(v) if isinstance(v, (dict, list)) else v for k, v in metadata.items()},
        "norm_histogram": dg.MetadataValue.md(charts.norm_histogram(vectors, "L2 norms (sample)")),
        "preview": dg.MetadataValue.md(markdown_table(frame.drop("vector"))),
        "wall_time_s": round(time.perf_counter() - started, 3),
    })


@versioned_asset(
    group_name=GROUP,
    kinds={"implicit", "polars"},
    owners=OWNERS,
    description=(
        "One collaborative vector per movie of `content_vectors`: movie_id, vector (float32, 64 factors), ratings "
        "(how many users rated it), cold (nobody did). Implicit-feedback ALS (the `implicit` library: 64 factors, "
        "regularization 1.0, alpha 1.0, 15 iterations, seed 0) on who rated what, every rating counting as a "
        "watch. A movie nobody rated gets the factors a ridge regression from its content vector predicts "
        "(fitted on the rated movies), so the hybrid search can still surface it. Not unit vectors: the norm "
        "carries how broadly a movie is watched."
    ),
)
def collaborative_movie_vectors(context: dg.AssetExecutionContext, ratings: pl.LazyFrame,
                                content_vectors: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    started = time.perf_counter()
    result = factors.movie_factors(ratings, content_vectors.select("movie_id", "vector"), SETTINGS)
    frame = result.frame
    cold = int(frame["cold"].sum())
    context.log.info(f"collaborative_movie_vectors: {frame.height} movies, {cold} nobody rated (content-predicted)")
    return _output(frame, started, settings=SETTINGS.__dict__, cold_movies=cold,
                   cold_regression_movies=result.cold_regression_movies)


@versioned_asset(
    group_name=GROUP,
    kinds={"implicit", "polars"},
    owners=OWNERS,
    description=(
        "One collaborative vector per user who rated a movie of `collaborative_movie_vectors`: user_id, vector. "
        "ALS's exact user solve against the fixed movie vectors, on recency-weighted confidences (each rating "
        "weighs exp(-age / 5), age = how many of the user's ratings came after it), so the vector leans to "
        "what the user watched lately: the 'for you' row predicts what comes next."
    ),
)
def collaborative_user_vectors(context: dg.AssetExecutionContext, ratings: pl.LazyFrame,
                               collaborative_movie_vectors: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    started = time.perf_counter()
    frame = factors.user_factors(ratings, collaborative_movie_vectors.select("movie_id", "vector"), SETTINGS)
    context.log.info(f"collaborative_user_vectors: {frame.height} users folded in")
    return _output(frame, started, recency_tau=SETTINGS.recency_tau)


@versioned_asset(
    group_name=GROUP,
    kinds={"numpy", "polars"},
    owners=OWNERS,
    description=(
        "One hybrid vector per movie: movie_id, vector = [content, collaborative / M] (448-d by default), M = "
        "the largest collaborative norm, so the norm (1 to sqrt(2)) keeps popularity. Searched by inner product "
        "with `hybrid_user_vectors` in Milvus for the 'for you' row (layout and reasons: "
        "tv5_assets/taste/hybrid.py)."
    ),
)
def hybrid_movie_vectors(content_vectors: pl.DataFrame,
                         collaborative_movie_vectors: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    started = time.perf_counter()
    ids, content, collab = hybrid.aligned(content_vectors, collaborative_movie_vectors, "movie_id")
    layout = hybrid.layout_for(content.shape[1], collab, hybrid.CONTENT_WEIGHT)
    frame = hybrid.frame("movie_id", ids, hybrid.movie_vectors(content, collab, layout))
    return _output(frame, started, layout=layout.describe())


@versioned_asset(
    group_name=GROUP,
    kinds={"numpy", "polars"},
    owners=OWNERS,
    description=(
        "One unit hybrid vector per user: user_id, vector = [w^2 * content taste, collaborative / its norm], "
        "normalised, w = 0.5 (the best content weight on a validation split, see recommendation_quality): the "
        "query side of `hybrid_movie_vectors`. Its cosine with a movie's hybrid vector is the 'for you' score, "
        "w^2 * content similarity + the collaborative prediction (scaled)."
    ),
)
def hybrid_user_vectors(user_vectors: pl.DataFrame,
                        collaborative_user_vectors: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    started = time.perf_counter()
    ids, content, collab = hybrid.aligned(user_vectors, collaborative_user_vectors, "user_id")
    frame = hybrid.frame("user_id", ids, hybrid.user_vectors(content, collab, hybrid.CONTENT_WEIGHT))
    return _output(frame, started, content_weight=hybrid.CONTENT_WEIGHT,
                   users_without_collaborative_part=int((np.abs(collab).sum(axis=1) == 0).sum()))


assets = [collaborative_movie_vectors, collaborative_user_vectors, hybrid_movie_vectors, hybrid_user_vectors]
