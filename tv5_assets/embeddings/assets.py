"""Embeddings stage: content vectors per movie and taste vectors per user (thin Dagster wiring)."""


import time

import dagster as dg
import numpy as np
import polars as pl

from tv5_assets.core import charts
from tv5_assets.core.lake import DataLake
from tv5_assets.core.metadata import markdown_table
from tv5_assets.core.storage import frame_fingerprint
from tv5_assets.core.versioning import versioned_asset
from tv5_assets.embeddings.cache import cache_path, encode_with_cache, read_cache, write_cache
from tv5_assets.embeddings.resources import EncoderResource
from tv5_assets.embeddings.texts import TEMPLATE, TOP_TAGS, movie_texts
from tv5_assets.embeddings.user_vectors import user_vectors as compute_user_vectors

GROUP = "embeddings"
OWNERS = ["team:data-platform"]


PICTURE_SAMPLE = 2_000  # vectors drawn in the asset page's charts (evenly spaced, deterministic)


def vector_pictures(frame: pl.DataFrame, movies: pl.DataFrame) -> dict[str, dg.MetadataValue]:
    """Norm histogram and a 2-D PCA projection coloured by first genre, on a sample of the vectors."""
    sample = frame.select("movie_id", "vector")[charts.sample_positions(frame.height, PICTURE_SAMPLE)]
    genres = sample.join(movies.select("movie_id", "genres"), on="movie_id", how="left", maintain_order="left")[
        "genres"].list.first().fill_null("(none)").to_list()
    vectors = sample["vector"].to_numpy() if sample.height else np.zeros((0, 0), np.float32)
    pictures = {"norm_histogram": dg.MetadataValue.md(charts.norm_histogram(vectors, "Content vector L2 norms"))}
    if sample.height >= 3:
        pictures["projection_by_genre"] = dg.MetadataValue.md(charts.projection_chart(
            vectors, genres, f"Content vectors, 2-D PCA of {sample.height:,} movies, by first genre"))
    return pictures


@versioned_asset(
    group_name=GROUP,
    kinds={"pytorch", "polars"},
    owners=OWNERS,
    description=(
        "One L2-normalised float32 vector per movie: movie_id, vector, text_hash, text. The text is "
        f"'{TEMPLATE}' (display title, year when known, genres, the movie's top-{TOP_TAGS} Tag Genome "
        "tags by rank; missing parts left out), encoded by the `encoder` resource (the packaged offline "
        "all-MiniLM-L6-v2 unless TV5_ENCODER_MODEL names another, e.g. paraphrase-multilingual-MiniLM-L12-v2). "
        "Incremental: vectors are cached per (encoder identity: model, revision, backend, precision, "
        "normalisation; sha256 of the text) in cache/embeddings/<model>--<backend>-<precision>-<hash>.parquet, "
        "so a new release encodes only new or changed texts, and an unchanged one encodes none and keeps "
        "its data version."
    ),
)
def content_vectors(
    context: dg.AssetExecutionContext, encoder: EncoderResource, lake: DataLake, movies: pl.DataFrame,
    genome: pl.DataFrame,
) -> dg.Output[pl.DataFrame]:
    started = time.perf_counter()
    texts = movie_texts(movies, genome)
    path = cache_path(lake.path(), encoder.encoder.identity())
    result = encode_with_cache(texts, read_cache(path, encoder.dimension),
                               lambda batch: encoder.encoder.encode(batch, progress=context.log.info))
    if result.encoded:
        write_cache(result.cache, path)
    stats = encoder.encoder.last if result.encoded else None
    frame = result.frame.select("movie_id", "vector", "text_hash", "text")
    context.log.info(f"content_vectors: {result.encoded} text(s) encoded, {result.reused} reused from {path}")
    return dg.Output(
        frame,
        data_version=dg.DataVersion(frame_fingerprint(frame)),
        metadata={
            **encoder.encoder.describe(),
            "texts": frame.height,
            "texts_encoded": result.encoded,
            "texts_reused": result.reused,
            "texts_per_s": round(stats.texts_per_s, 1) if stats else 0.0,
            "encode_time_s": round(stats.seconds, 3) if stats else 0.0,
            "cache": dg.MetadataValue.path(str(path)),
            "cache_entries": result.cache.height,
            "text_template": TEMPLATE,
            "preview": dg.MetadataValue.md(markdown_table(frame.select("movie_id", "text_hash", "text"))),
            **vector_pictures(frame, movies),
            "wall_time_s": round(time.perf_counter() - started, 3),
        },
    )


@versioned_asset(
    group_name=GROUP,
    kinds={"scipy", "polars"},
    owners=OWNERS,
    description=(
        "One L2-normalised float32 vector per user who rated: user_id, vector. It is the rating-weighted "
        "mean of the content vectors of the movies the user rated, weight = clip((rating - 1) / 4, 0, 1) "
        "(0.5-star ratings weigh 0, not less); users whose weights are all zero fall back to the "
        "unweighted mean (counted in metadata). Computed as one sparse (users x movies) by dense "
        "(movies x dim) product."
    ),
)
def user_vectors(
    context: dg.AssetExecutionContext, ratings: pl.LazyFrame, content_vectors: pl.DataFrame
) -> dg.Output[pl.DataFrame]:
    started = time.perf_counter()
    result = compute_user_vectors(ratings, content_vectors.select("movie_id", "vector"))
    frame = result.frame
    if result.zero_weight_users:
        context.log.info(f"{result.zero_weight_users} user(s) rated nothing above 1 star: unweighted mean used")
    if result.ratings_without_vector:
        context.log.warning(f"{result.ratings_without_vector} rating(s) of movies without a content vector left out")
    return dg.Output(
        frame,
        data_version=dg.DataVersion(frame_fingerprint(frame)),
        metadata={
            "users": frame.height,
            "dimension": frame.schema["vector"].size if frame.height else 0,
            "ratings_used": result.ratings_used,
            "ratings_without_vector": result.ratings_without_vector,
            "zero_weight_users": result.zero_weight_users,
            "weight_rule": "clip((rating - 1) / 4, 0, 1); all-zero users: unweighted mean",
            "norm_histogram": dg.MetadataValue.md(charts.norm_histogram(
                frame["vector"].to_numpy()[charts.sample_positions(frame.height, PICTURE_SAMPLE)],
                "User vector L2 norms")),
            "wall_time_s": round(time.perf_counter() - started, 3),
        },
    )


assets = [content_vectors, user_vectors]
