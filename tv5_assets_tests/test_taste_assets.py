"""The taste stage, the hybrid collections and recommendation_quality on the generated sample, through
Dagster with the real engines (packaged encoder, Milvus Lite); the taste checks failing on damaged vectors."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from tv5_assets.evaluation import checks as quality_checks
from tv5_assets.evaluation.evaluate import POPULAR, REFERENCE, SERVED, SERVED_ANN
from tv5_assets.taste import checks
from tv5_assets_tests.harness import SMALL_SAMPLE, check_results, materialize, release_config

TASTE = ("collaborative_movie_vectors", "collaborative_user_vectors", "hybrid_movie_vectors", "hybrid_user_vectors")
SERVING = ("milvus/hybrid_media_vectors", "milvus/hybrid_user_vectors")


def keys(*names: str) -> dg.AssetSelection:
    return dg.AssetSelection.assets(*[dg.AssetKey.from_user_string(n) for n in names])


@pytest.fixture(scope="module")
def sample_lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dg.ExecuteInProcessResult]:
    lake = tmp_path_factory.mktemp("taste")
    upstream = dg.AssetSelection.groups("movielens", "embeddings", "synthetic")
    assert materialize(upstream, lake, release_config(**SMALL_SAMPLE)).success
    result = materialize(keys(*TASTE, *SERVING, "recommendation_quality"), lake)
    return lake, result


def test_sample_builds_every_new_asset_with_green_blocking_checks(sample_lake) -> None:
    lake, result = sample_lake
    assert result.success
    evaluations = check_results(result)
    blocking_failures = {k: e.description for k, e in evaluations.items()
                         if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR}
    assert blocking_failures == {}
    for asset in TASTE:
        assert (asset, checks.DIMENSION) in evaluations
    assert evaluations[("hybrid_movie_vectors", checks.RECOMPUTED)].passed
    assert evaluations[("collaborative_user_vectors", checks.RECOMPUTED)].passed
    movies = pl.read_parquet(lake / "content_vectors.parquet").height
    assert pl.read_parquet(lake / "hybrid_movie_vectors.parquet").height == movies
    assert pl.read_parquet(lake / "hybrid_movie_vectors.parquet").schema["vector"].size == 384 + 64
    built = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert built["milvus/hybrid_media_vectors"]["entity_count"].value == movies
    table = pl.read_parquet(lake / "recommendation_quality.parquet")
    assert {POPULAR, REFERENCE, SERVED, SERVED_ANN} <= set(table["scorer"])
    assert {"recall@10", "recall@20", "recall@50", "ndcg@20", "coverage@20"} <= set(table.columns)
    assert (ASSET_CHECK := ("recommendation_quality", quality_checks.BEATS_POPULAR)) in evaluations
    assert evaluations[ASSET_CHECK].metadata["most_popular"].value == pytest.approx(
        table.filter((pl.col("scorer") == POPULAR) & (pl.col("segment") == "all users"))["recall@20"][0])


def _damage(path: Path) -> pl.DataFrame:
    """One vector doubled, one NaN, one row gone."""
    frame = pl.read_parquet(path)
    vectors = np.asarray(frame["vector"].to_numpy(), np.float32).copy()
    vectors[0] *= 2.0
    vectors[1, 0] = np.nan
    damaged = frame.with_columns(pl.Series("vector", vectors, dtype=frame.schema["vector"])).slice(0, frame.height - 1)
    damaged.write_parquet(path)
    return damaged


@pytest.mark.parametrize("asset", ["hybrid_movie_vectors", "hybrid_user_vectors", "collaborative_user_vectors"])
def test_checks_fail_on_damaged_vectors(sample_lake, asset: str, tmp_path: Path) -> None:
    lake, _ = sample_lake
    copy = tmp_path / "lake"
    copy.mkdir()
    for parquet in lake.glob("*.parquet"):
        (copy / parquet.name).write_bytes(parquet.read_bytes())
    _damage(copy / f"{asset}.parquet")
    result = materialize(dg.AssetSelection.checks_for_assets(dg.AssetKey(asset)), copy, raise_on_error=False)
    evaluations = {name: e for (owner, name), e in check_results(result).items() if owner == asset}
    failed = {name for name, e in evaluations.items() if not e.passed}
    expected = {checks.FINITE, checks.RECOMPUTED,
                checks.ONE_PER_MOVIE if asset == "hybrid_movie_vectors" else checks.ONE_PER_USER}
    if asset == "hybrid_user_vectors":
        expected.add(checks.UNIT_NORM)
    if asset == "hybrid_movie_vectors":
        expected.add(checks.LAYOUT)
    assert failed == expected, {n: e.description for n, e in evaluations.items()}
    assert all(e.severity == dg.AssetCheckSeverity.ERROR for e in evaluations.values())


def test_quality_checks_warn_when_the_served_vectors_lose_to_popularity(sample_lake, tmp_path: Path) -> None:
    lake, _ = sample_lake
    table = pl.read_parquet(lake / "recommendation_quality.parquet")
    popular = table.filter((pl.col("scorer") == POPULAR) & (pl.col("segment") == "all users"))["recall@20"][0]
    # the served row (and its exact twin) now below most popular, as the seed's content vectors were
    worse = table.with_columns(pl.when(pl.col("scorer").is_in([SERVED, SERVED_ANN])).then(popular / 4)
                               .otherwise(pl.col("recall@20")).alias("recall@20"))
    copy = tmp_path / "lake"
    copy.mkdir()
    worse.write_parquet(copy / "recommendation_quality.parquet")
    result = materialize(dg.AssetSelection.checks_for_assets(dg.AssetKey("recommendation_quality")), copy,
                         raise_on_error=False)
    evaluations = {name: e for (_, name), e in check_results(result).items()}
    beats = evaluations[quality_checks.BEATS_POPULAR]
    assert not beats.passed and beats.severity == dg.AssetCheckSeverity.WARN
    assert f"vs most popular {popular:.4f} (0.25x)" in beats.description
    assert evaluations[quality_checks.ANN_AGREES].passed  # ANN and exact still agree with each other
