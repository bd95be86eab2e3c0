"""Embeddings of an arrival day: the content taste vectors of the users it touched (thin Dagster wiring)."""

import time

import dagster as dg
import polars as pl

from tv5_assets.core.storage import frame_fingerprint
from tv5_assets.embeddings import day_vectors
from tv5_assets.embeddings.user_vectors import user_vectors as compute_user_vectors
from tv5_assets.ingestion.day_assets import day_asset



@day_asset(
    kinds={"scipy", "polars"},
    description=(
        "The content taste vector of every user whose ratings the partition's day changed: user_id, vector (the "
        "rating-weighted mean of `user_vectors`, recomputed from the user's whole current ratings, so equal to a "
        "full rebuild's for that user); null for a user left with no vector, whom the stores delete. No other "
        "user is read or rewritten."
    ),
)
def day_user_vectors(context: dg.AssetExecutionContext, day_user_ratings: pl.DataFrame,
                     day_rating_changes: pl.DataFrame, content_vectors: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    started = time.perf_counter()
    users = day_vectors.touched_users(day_rating_changes)
    result = compute_user_vectors(day_vectors.ratings_of(day_user_ratings, users),
                                  content_vectors.select("movie_id", "vector"))
    frame = day_vectors.with_removed(result.frame, users)
    context.log.info(f"day {context.partition_key}: {frame.height} users' content vectors, "
                     f"{day_vectors.removed(frame)} removed")
    return dg.Output(frame, data_version=dg.DataVersion(frame_fingerprint(frame)), metadata={
        "users": frame.height, "removed": day_vectors.removed(frame), "ratings_used": result.ratings_used,
        "zero_weight_users": result.zero_weight_users, "wall_time_s": round(time.perf_counter() - started, 3),
    })


assets = [day_user_vectors]
