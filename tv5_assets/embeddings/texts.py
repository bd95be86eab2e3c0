"""The text each movie is encoded from, and its stable hash (the key of the embedding cache).

Template (parts whose data is missing are left out, so no text says "None"):

    "{display_title} ({year}). Genres: {genre}, {genre}. Tags: {tag}, ..., {tag}."

- display_title: the human form ('The City of Lost Children (La Cité des enfants perdus)');
- year: omitted when unknown;
- genres: in MovieLens order; the part is omitted for '(no genres listed)';
- tags: the movie's top-10 Tag Genome tags by rank (most relevant first); omitted without genome.

e.g. "Toy Story (1995). Genres: Adventure, Animation, Children, Comedy, Fantasy."
"""

from __future__ import annotations

import hashlib

import polars as pl

TEMPLATE = "{display_title} ({year}). Genres: {genre}, {genre}. Tags: {tag}, ..., {tag}."
TOP_TAGS = 10


def text_hash(text: str) -> str:
    """sha256 (first 32 hex digits) of the UTF-8 text: stable across runs, machines and polars versions."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def movie_texts(movies: pl.DataFrame, genome: pl.DataFrame, top_tags: int = TOP_TAGS) -> pl.DataFrame:
    """movie_id, text, text_hash: one row per movie of `movies`, sorted by movie_id."""
    tags = (
        genome.filter(pl.col("rank") <= top_tags)
        .sort("movie_id", "rank")
        .group_by("movie_id", maintain_order=True)
        .agg(pl.col("tag").alias("tags"))
    )
    title = pl.when(pl.col("year").is_not_null()).then(
        pl.format("{} ({})", pl.col("display_title"), pl.col("year"))
    ).otherwise(pl.col("display_title"))
    genres = pl.when(pl.col("genres").list.len() > 0).then(
        pl.lit(". Genres: ") + pl.col("genres").list.join(", ")
    ).otherwise(pl.lit(""))
    tag_part = pl.when(pl.col("tags").list.len() > 0).then(
        pl.lit(". Tags: ") + pl.col("tags").list.join(", ")
    ).otherwise(pl.lit(""))
    frame = (
        movies.select("movie_id", "display_title", "year", "genres")
        .join(tags, on="movie_id", how="left")
        .select("movie_id", pl.concat_str(title, genres, tag_part.fill_null(""), pl.lit(".")).alias("text"))
        .sort("movie_id")
    )
    hashes = pl.Series("text_hash", [text_hash(t) for t in frame["text"]], dtype=pl.String)
    return frame.with_columns(hashes)
