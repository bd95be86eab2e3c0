"""Summaries a person would rather look at than read: share tables and target-vs-actual bar charts."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: charts are rendered to PNG for the Dagster UI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from tv5_assets.core.metadata import png_markdown  # noqa: E402


def share_table(values: pl.Series, targets: dict[str, float], total: int, label: str, unit: str) -> pl.DataFrame:
    """label, target_pct, actual_pct, deviation_pp, count: one row per target, in target order."""
    counts = dict(values.value_counts().iter_rows())
    rows = [(name, 100 * share, 100 * counts.get(name, 0) / max(total, 1), counts.get(name, 0))
            for name, share in targets.items()]
    return pl.DataFrame(rows, schema=[label, "target_pct", "actual_pct", unit], orient="row").with_columns(
        pl.col("target_pct").round(2), pl.col("actual_pct").round(2),
        (pl.col("actual_pct") - pl.col("target_pct")).round(2).alias("deviation_pp"),
    ).select(label, "target_pct", "actual_pct", "deviation_pp", unit)


def archetype_shares(users: pl.DataFrame, targets: dict[str, float]) -> pl.DataFrame:
    return share_table(users["archetype"], targets, users.height, "archetype", "users")


def platform_coverage(availability: pl.DataFrame, n_movies: int, targets: dict[str, float]) -> pl.DataFrame:
    """Per platform: target and actual share of the catalogue, titles, mean regions, 4K share."""
    extra = availability.group_by("platform").agg(
        pl.col("business_model").first(),
        pl.col("regions").list.len().mean().round(2).alias("mean_regions"),
        (100 * pl.col("quality").list.contains("4K").mean()).round(1).alias("uhd_pct"),
    )
    table = share_table(availability["platform"], targets, n_movies, "platform", "titles")
    return table.join(extra, on="platform", how="left", maintain_order="left")


def platforms_by_popularity(availability: pl.DataFrame, movie_ids: pl.Series, counts: pl.DataFrame) -> pl.DataFrame:
    """Mean platforms per film by popularity quartile: the evidence that popular films are on more services."""
    per_film = availability.group_by("movie_id").agg(pl.len().alias("platforms"))
    return (
        pl.DataFrame({"movie_id": movie_ids})
        .join(counts.select("movie_id", "ratings"), on="movie_id", how="left")
        .join(per_film, on="movie_id", how="left")
        .with_columns(
            pl.col("platforms").fill_null(0),
            (pl.col("ratings").fill_null(0).rank("average") / pl.len() * 4).ceil().clip(1, 4).cast(pl.Int32)
            .alias("popularity_quartile"),
        )
        .group_by("popularity_quartile")
        .agg(pl.len().alias("films"), pl.col("platforms").mean().round(2).alias("mean_platforms"),
             (100 * (pl.col("platforms") > 0).mean()).round(1).alias("on_a_platform_pct"))
        .sort("popularity_quartile")
    )


def target_chart(table: pl.DataFrame, label: str, title: str) -> str:
    """Grouped bars, target vs actual percent per row of a share table, as Markdown with an inline PNG."""
    names = table[label].to_list()
    x = np.arange(len(names))
    figure, axes = plt.subplots(figsize=(max(6.0, 0.9 * len(names)), 3.2))
    axes.bar(x - 0.2, table["target_pct"].to_list(), 0.4, label="target", color="#9db4d3")
    axes.bar(x + 0.2, table["actual_pct"].to_list(), 0.4, label="actual", color="#1f4e8c")
    axes.set_xticks(x, names, rotation=20, ha="right")
    axes.set_ylabel("%")
    axes.set_title(title)
    axes.legend()
    try:
        return png_markdown(figure, title)
    finally:
        plt.close(figure)

