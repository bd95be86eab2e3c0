"""Taste of an arrival day: the collaborative and hybrid vectors of the users it touched (thin Dagster wiring).

The movie side stays as the last full build left it (`collaborative_movie_vectors`, refit on its own clock): a
touched user is folded in against those fixed factors, exactly as `collaborative_user_vectors` folds in everyone.
"""

import time

import dagster as dg
import numpy as np
import polars as pl

from tv5_assets.core.storage import frame_fingerprint
from tv5_assets.core.versioning import versioned_multi_asset
from tv5_assets.embeddings import day_vectors
from tv5_assets.ingestion.day_assets import ARRIVAL_DAYS, DAY_GROUP, OWNERS, day_asset
from tv5_assets.taste import day_movies, factors, hybrid
from tv5_assets.taste.assets import SETTINGS



def _output(frame: pl.DataFrame, started: float, **metadata: object) -> dg.Output[pl.DataFrame]:
    return dg.Output(frame, data_version=dg.DataVersion(frame_fingerprint(frame)), metadata={
        "users": frame.height, "removed": day_vectors.removed(frame), **metadata,
        "wall_time_s": round(time.perf_counter() - started, 3)})


@versioned_multi_asset(
    outs={
        "day_collaborative_movie_vectors": {
            "description": "The collaborative vector of each movie of `day_content_vectors` (the movies the stores "
            "gained since the last full build): what the last full build gives a movie nobody rated, the factors its "
            "content vector predicts through the ridge regression fitted on the served rated movies; movie_id, "
            "vector, ratings (0), cold (true). ALS refits with the global models.",
            "group_name": DAY_GROUP, "kinds": {"numpy", "polars"}, "owners": OWNERS},
        "day_hybrid_movie_vectors": {
            "description": "The hybrid vector of each of those movies, by `hybrid_movie_vectors`' layout (its factor "
            "scale from the served movie factors): movie_id, vector.",
            "group_name": DAY_GROUP, "kinds": {"numpy", "polars"}, "owners": OWNERS},
    },
    partitions_def=ARRIVAL_DAYS,
    can_subset=False,
)
def day_movie_vectors(day_content_vectors: pl.DataFrame, content_vectors: pl.LazyFrame,
                      collaborative_movie_vectors: pl.DataFrame):
    started = time.perf_counter()
    extra = day_content_vectors.select("movie_id", "vector")
    served = content_vectors.select("movie_id", "vector").collect()  # not the texts: 0.38 s of the 0.63 s read
    cold = day_movies.cold_factors(served, collaborative_movie_vectors, extra, SETTINGS.cold_ridge)
    combined = day_movies.hybrid_movies(extra, cold.select("movie_id", "vector"), collaborative_movie_vectors)
    for name, frame in (("day_collaborative_movie_vectors", cold), ("day_hybrid_movie_vectors", combined)):
        yield dg.Output(frame, output_name=name, data_version=dg.DataVersion(frame_fingerprint(frame)), metadata={
            "movies": frame.height, "wall_time_s": round(time.perf_counter() - started, 3)})


@day_asset(
    kinds={"implicit", "polars"},
    description=(
        "The collaborative vector of every user whose ratings the partition's day changed: user_id, vector, ALS's "
        "exact user solve on the user's whole current ratings (recency-weighted) against the fixed "
        "`collaborative_movie_vectors`, as `collaborative_user_vectors` computes it; null for a user left with "
        "none. A movie gained since the last full build has no ALS factors yet and is left out: its content-predicted "
        "factors would enter every user's solve (ALS's Gram of all item factors), not only the touched users'."
    ),
)
def day_collaborative_user_vectors(day_user_ratings: pl.DataFrame, day_rating_changes: pl.DataFrame,
                                   collaborative_movie_vectors: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    started = time.perf_counter()
    users = day_vectors.touched_users(day_rating_changes)
    folded = factors.user_factors(day_vectors.ratings_of(day_user_ratings, users).lazy(),
                                  collaborative_movie_vectors.select("movie_id", "vector"), SETTINGS)
    return _output(day_vectors.with_removed(folded, users), started, recency_tau=SETTINGS.recency_tau)


@day_asset(
    kinds={"numpy", "polars"},
    description=(
        "The hybrid vector of every user whose ratings the partition's day changed: user_id, vector, from the "
        "day's content and collaborative vectors as `hybrid_user_vectors` combines them; null for a user left "
        "with none."
    ),
)
def day_hybrid_user_vectors(day_user_vectors: pl.DataFrame,
                            day_collaborative_user_vectors: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    started = time.perf_counter()
    users = day_user_vectors.select("user_id")
    ids, content, collab = hybrid.aligned(day_user_vectors.drop_nulls("vector"),
                                          day_collaborative_user_vectors.drop_nulls("vector"), "user_id")
    dimension = day_user_vectors.schema["vector"].size + day_collaborative_user_vectors.schema["vector"].size
    combined = hybrid.frame("user_id", ids, hybrid.user_vectors(content, collab, hybrid.CONTENT_WEIGHT)) \
        if ids.size else pl.DataFrame(schema={"user_id": pl.Int32, "vector": pl.Array(pl.Float32, dimension)})
    return _output(day_vectors.with_removed(combined, users), started, content_weight=hybrid.CONTENT_WEIGHT,
                   users_without_collaborative_part=int((np.abs(collab).sum(axis=1) == 0).sum()) if ids.size else 0)


assets = [day_movie_vectors, day_collaborative_user_vectors, day_hybrid_user_vectors]
