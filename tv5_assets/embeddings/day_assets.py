"""Embeddings of an arrival day: the content vectors of the movies the stores gained since the last full build, and
the content taste vectors of the users the day touched (thin Dagster wiring)."""

import time
from datetime import date

import dagster as dg
import polars as pl

from tv5_assets.core.lake import DataLake
from tv5_assets.core.storage import frame_fingerprint
from tv5_assets.embeddings import day_vectors
from tv5_assets.embeddings.cache import cache_path, encode_with_cache, read_cache, write_cache
from tv5_assets.embeddings.resources import EncoderResource
from tv5_assets.embeddings.texts import movie_texts
from tv5_assets.embeddings.user_vectors import user_vectors as compute_user_vectors
from tv5_assets.ingestion import day_catalogue
from tv5_assets.ingestion.day_assets import day_asset


@day_asset(
    kinds={"pytorch", "polars"},
    description=(
        "The content vector of each movie the day's users may rate that `content_vectors` lacks (the movies the day "
        "and the other published days brought in, until a refit folds them in): movie_id, vector, text_hash, text, "
        "encoded as `content_vectors` encodes a movie (a new movie has no Tag Genome tags) through the same cache, "
        "so a movie is encoded once and its vector equals the refit's."
    ),
)
def day_content_vectors(context: dg.AssetExecutionContext, encoder: EncoderResource, lake: DataLake,
                        day_movies: pl.DataFrame, movies: pl.DataFrame, genome: pl.LazyFrame
                        ) -> dg.Output[pl.DataFrame]:
    started = time.perf_counter()
    extra = day_catalogue.extra_movies(lake.base_dir, date.fromisoformat(context.partition_key), movies, day_movies)
    texts = movie_texts(extra, genome.join(extra.select("movie_id").lazy(), on="movie_id", how="semi").collect())
    path = cache_path(lake.path(), encoder.encoder.identity())
    result = encode_with_cache(texts, read_cache(path, encoder.dimension),
                               lambda batch: encoder.encoder.encode(batch, progress=context.log.info))
    if result.encoded:
        write_cache(result.cache, path)
    frame = result.frame.select("movie_id", "vector", "text_hash", "text")
    context.log.info(f"day {context.partition_key}: {frame.height} movies beyond the full build, "
                     f"{result.encoded} text(s) encoded")
    return dg.Output(frame, data_version=dg.DataVersion(frame_fingerprint(frame)), metadata={
        "movies": frame.height, "day_movies": day_movies.height, "texts_encoded": result.encoded,
        "texts_reused": result.reused, "wall_time_s": round(time.perf_counter() - started, 3)})



@day_asset(
    kinds={"scipy", "polars"},
    description=(
        "The content taste vector of every user whose ratings the partition's day changed: user_id, vector (the "
        "rating-weighted mean of `user_vectors` over `content_vectors` and `day_content_vectors`, recomputed "
        "from the user's whole current ratings, so equal to a "
        "full rebuild's for that user); null for a user left with no vector, whom the stores delete. No other "
        "user is read or rewritten."
    ),
)
def day_user_vectors(context: dg.AssetExecutionContext, day_user_ratings: pl.DataFrame,
                     day_rating_changes: pl.DataFrame, content_vectors: pl.LazyFrame,
                     day_content_vectors: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    started = time.perf_counter()
    users = day_vectors.touched_users(day_rating_changes)
    result = compute_user_vectors(day_vectors.ratings_of(day_user_ratings, users), pl.concat(
        [content_vectors.select("movie_id", "vector").collect(), day_content_vectors.select("movie_id", "vector")]))
    frame = day_vectors.with_removed(result.frame, users)
    context.log.info(f"day {context.partition_key}: {frame.height} users' content vectors, "
                     f"{day_vectors.removed(frame)} removed")
    return dg.Output(frame, data_version=dg.DataVersion(frame_fingerprint(frame)), metadata={
        "users": frame.height, "removed": day_vectors.removed(frame), "ratings_used": result.ratings_used,
        "zero_weight_users": result.zero_weight_users, "wall_time_s": round(time.perf_counter() - started, 3),
    })


assets = [day_content_vectors, day_user_vectors]
