"""The graph as row frames: one frame per node label and per relationship type, built with polars.

Node frames have exactly the label's properties (key first, unique). Relationship frames have the
start key, the end key and the stored properties, sorted by start key: the batches are cut on
start-node boundaries (see `batches`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import polars as pl

from tv5_assets.core.storage import frame_fingerprint
from tv5_assets.graph_store import model


@dataclass(frozen=True)
class GraphRows:
    """Every node and relationship to load, by label / type."""

    nodes: dict[str, pl.DataFrame]
    relationships: dict[str, pl.DataFrame]

    def counts(self) -> dict[str, int]:
        return {**{k: v.height for k, v in self.nodes.items()}, **{k: v.height for k, v in self.relationships.items()}}

    def fingerprint(self, salt: str = "") -> str:
        """Content hash of all frames (and `salt`, e.g. the statements' digest): the graph's data version."""
        digest = hashlib.sha256(salt.encode())
        for name, frame in sorted({**self.nodes, **self.relationships}.items()):
            digest.update(f"{name}:{frame_fingerprint(frame)}".encode())
        return digest.hexdigest()[:24]


def media_nodes(movies: pl.DataFrame) -> pl.DataFrame:
    """Media: the display title ('The City of Lost Children'), not the raw one with its year."""
    return (movies.select(
        pl.col("movie_id").cast(pl.Int64).alias("id"),
        pl.col("display_title").alias("title"),
        pl.col("year").cast(pl.Int64),
        pl.col("imdb_id"),
        pl.col("tmdb_id").cast(pl.Int64),
    ).unique("id", keep="first", maintain_order=True).sort("id"))


def user_nodes(demographics: pl.DataFrame, ratings: pl.DataFrame) -> pl.DataFrame:
    """User: everyone with a profile or a rating (a rater without a profile still gets a node, so that
    no rating is dropped; its profile properties are then absent)."""
    profiles = demographics.select(
        pl.col("user_id").cast(pl.Int64).alias("id"), "archetype", "age_band", "country",
    ).unique("id", keep="first", maintain_order=True)
    raters = ratings.select(pl.col("user_id").cast(pl.Int64).alias("id")).unique()
    ids = pl.concat([profiles.select("id"), raters]).unique()
    return ids.join(profiles, on="id", how="left").sort("id").select(model.USER.properties)


def genre_nodes(movies: pl.DataFrame) -> pl.DataFrame:
    return (movies.select(pl.col("genres").explode().alias("name")).drop_nulls().unique().sort("name"))


def tag_nodes(genome: pl.DataFrame) -> pl.DataFrame:
    return (genome.select(pl.col("tag_id").cast(pl.Int64).alias("id"), pl.col("tag").alias("name"))
            .unique("id", keep="first", maintain_order=True).sort("id"))


def platform_nodes(availability: pl.DataFrame) -> pl.DataFrame:
    """Platform: its business model as the availability rows state it (the first one, by platform)."""
    return (availability.group_by("platform", maintain_order=True).agg(pl.col("business_model").first())
            .rename({"platform": "name"}).sort("name"))


def rated_rows(ratings: pl.DataFrame) -> pl.DataFrame:
    """RATED: one per rating; timestamp in epoch seconds, time_of_day as UTC hours (see model.RATED)."""
    return ratings.select(
        pl.col("user_id").cast(pl.Int64),
        pl.col("movie_id").cast(pl.Int64),
        pl.col("rating").cast(pl.Float64),
        pl.col("timestamp").dt.epoch("s").alias("timestamp"),
        pl.col("time_of_day").cast(pl.String).replace_strict(model.TIME_OF_DAY_HOURS, return_dtype=pl.String),
    ).sort("user_id", maintain_order=True)


def has_genre_rows(movies: pl.DataFrame) -> pl.DataFrame:
    return (movies.select(pl.col("movie_id").cast(pl.Int64), pl.col("genres").alias("genre"))
            .explode("genre").drop_nulls("genre").unique(maintain_order=True).sort("movie_id", maintain_order=True))


def has_tag_rows(genome: pl.DataFrame) -> pl.DataFrame:
    """HAS_TAG: the genome's top tags per movie, with relevance and rank."""
    return genome.select(
        pl.col("movie_id").cast(pl.Int64), pl.col("tag_id").cast(pl.Int64),
        pl.col("relevance").cast(pl.Float64), pl.col("rank").cast(pl.Int64),
    ).sort("movie_id", "rank", maintain_order=True)


def available_on_rows(availability: pl.DataFrame) -> pl.DataFrame:
    return availability.select(
        pl.col("movie_id").cast(pl.Int64), "platform", "regions", "quality", "subtitle_languages",
    ).sort("movie_id", maintain_order=True)


def graph_rows(movies: pl.DataFrame, ratings: pl.DataFrame, genome: pl.DataFrame, demographics: pl.DataFrame,
               availability: pl.DataFrame) -> GraphRows:
    """All node and relationship frames from the five upstream assets."""
    return GraphRows(
        nodes={
            model.MEDIA.label: media_nodes(movies),
            model.USER.label: user_nodes(demographics, ratings),
            model.GENRE.label: genre_nodes(movies),
            model.TAG.label: tag_nodes(genome),
            model.PLATFORM.label: platform_nodes(availability),
        },
        relationships={
            model.HAS_GENRE.type: has_genre_rows(movies),
            model.HAS_TAG.type: has_tag_rows(genome),
            model.AVAILABLE_ON.type: available_on_rows(availability),
            model.RATED.type: rated_rows(ratings),
        },
    )
