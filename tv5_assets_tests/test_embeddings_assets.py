"""The embeddings stage run through Dagster with the real packaged model, on the generated sample."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from tv5_assets.embeddings.cache import vector_column
from tv5_assets_tests.harness import SMALL_SAMPLE, check_results, materialize, release_config

EMBEDDINGS = "group:embeddings"


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def data_version(result: dg.ExecuteInProcessResult, asset: str) -> str:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    return events[-1].materialization.tags["dagster/data_version"]


def failed_checks(result: dg.ExecuteInProcessResult) -> dict:
    return {key: e.description for key, e in check_results(result).items() if not e.passed}


@pytest.fixture(scope="module")
def ingested_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The MovieLens stage on the small sample, once; each test works on its own copy."""
    base = tmp_path_factory.mktemp("sample-lake")
    assert materialize("group:movielens", base, release_config(**SMALL_SAMPLE)).success
    return base


@pytest.fixture
def sample_lake(ingested_sample: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(ingested_sample, tmp_path / "lake"))


def test_sample_materializes_with_green_checks_then_reuses_every_vector(sample_lake: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    first = materialize(EMBEDDINGS, sample_lake, instance=instance)
    assert first.success and failed_checks(first) == {} and len(check_results(first)) == 11
    meta = metadata(first, "content_vectors")
    movies = pl.read_parquet(sample_lake / "movies.parquet")
    assert (meta["texts"], meta["texts_encoded"], meta["texts_reused"]) == (movies.height, movies.height, 0)
    assert meta["model"] == "sentence-transformers/all-MiniLM-L6-v2" and meta["dimension"] == 384
    assert meta["device"] in {"cpu", "cuda", "mps"} and meta["texts_per_s"] > 0
    # the asset page's pictures: norm histogram and the 2-D projection by genre, as inline PNGs
    for picture in ("norm_histogram", "projection_by_genre"):
        assert meta[picture].startswith("![") and "data:image/png;base64," in meta[picture]
    assert metadata(first, "user_vectors")["norm_histogram"].startswith("![User vector L2 norms]")
    content = pl.read_parquet(sample_lake / "content_vectors.parquet")
    assert content.schema == pl.Schema({"movie_id": pl.Int32, "vector": pl.Array(pl.Float32, 384),
                                        "text_hash": pl.String, "text": pl.String})
    assert content["movie_id"].to_list() == movies["movie_id"].sort().to_list()
    users = pl.read_parquet(sample_lake / "user_vectors.parquet")
    assert users.schema == pl.Schema({"user_id": pl.Int32, "vector": pl.Array(pl.Float32, 384)})
    assert users.height == SMALL_SAMPLE["sample_users"] == metadata(first, "user_vectors")["users"]
    coherence = check_results(first)[("content_vectors", "genre_coherence")].metadata
    assert coherence["genre_coherence"].value > coherence["floor"].value > coherence["chance_level"].value
    assert (meta["backend"], meta["precision"]) == ("openvino", "int8") or meta["device"] != "cpu"  # the CPU default
    cached = sorted(p.name for p in (sample_lake / "cache" / "embeddings").iterdir())
    assert len(cached) == 1 and cached[0].startswith(f"sentence-transformers--all-MiniLM-L6-v2--{meta['backend']}-"
                                                     f"{meta['precision']}-")

    second = materialize(EMBEDDINGS, sample_lake, instance=instance)
    assert second.success and failed_checks(second) == {}
    again = metadata(second, "content_vectors")
    assert (again["texts_encoded"], again["texts_reused"]) == (0, movies.height)
    for asset in ("content_vectors", "user_vectors"):  # unchanged input: same versions, children stay fresh
        assert data_version(second, asset) == data_version(first, asset)


def test_one_changed_title_encodes_exactly_one_text(sample_lake: Path) -> None:
    assert materialize("content_vectors", sample_lake).success
    movies = pl.read_parquet(sample_lake / "movies.parquet")
    changed_id = movies["movie_id"][5]
    movies.with_columns(
        pl.when(pl.col("movie_id") == changed_id).then(pl.lit("Le Fabuleux Destin d'Amélie Poulain"))
        .otherwise("display_title").alias("display_title")
    ).write_parquet(sample_lake / "movies.parquet")
    result = materialize("content_vectors", sample_lake)
    meta = metadata(result, "content_vectors")
    assert (meta["texts_encoded"], meta["texts_reused"]) == (1, movies.height - 1)
    text = pl.read_parquet(sample_lake / "content_vectors.parquet").filter(pl.col("movie_id") == changed_id)["text"]
    assert text[0].startswith("Le Fabuleux Destin d'Amélie Poulain")


def test_checks_fail_on_corrupted_stored_vectors(sample_lake: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(EMBEDDINGS, sample_lake, instance=instance).success
    content = pl.read_parquet(sample_lake / "content_vectors.parquet")
    matrix = content["vector"].to_numpy().copy()
    matrix[0, 0] = np.nan
    matrix[1] *= 2.0
    corrupted = pl.concat([content.with_columns(vector_column(matrix)), content.slice(2, 1)])
    corrupted.write_parquet(sample_lake / "content_vectors.parquet")
    users = pl.read_parquet(sample_lake / "user_vectors.parquet")
    users.slice(1).write_parquet(sample_lake / "user_vectors.parquet")
    # separate runs: a failed blocking check of content_vectors would skip the checks of its children
    result = materialize(dg.AssetSelection.checks_for_assets("content_vectors"), sample_lake, instance=instance,
                         raise_on_error=False)
    user_result = materialize(dg.AssetSelection.checks_for_assets("user_vectors"), sample_lake, instance=instance,
                              raise_on_error=False)
    failed = {**failed_checks(result), **failed_checks(user_result)}
    assert set(failed) == {
        ("content_vectors", "no_nan_or_inf"), ("content_vectors", "unit_norm"),
        ("content_vectors", "one_vector_per_movie"), ("user_vectors", "one_vector_per_rating_user"),
    }
    assert failed[("content_vectors", "no_nan_or_inf")] == "1 vector(s) hold NaN or Inf"
    assert "2 vector(s) have a norm further than 0.001 from 1" in failed[("content_vectors", "unit_norm")]
    assert "2 duplicated row(s), 0 without a vector" in failed[("content_vectors", "one_vector_per_movie")]
    assert f"1 without a vector (e.g. [{users['user_id'][0]}])" in failed[("user_vectors", "one_vector_per_rating_user")]
    assert check_results(result)[("content_vectors", "unit_norm")].severity == dg.AssetCheckSeverity.ERROR


def test_vectors_of_another_width_fail_the_dimension_check(sample_lake: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    assert materialize("content_vectors", sample_lake, instance=instance).success
    content = pl.read_parquet(sample_lake / "content_vectors.parquet")
    narrow = content.with_columns(vector_column(content["vector"].to_numpy()[:, :128]))
    narrow.with_columns(vector_column(narrow["vector"].to_numpy() / np.linalg.norm(
        narrow["vector"].to_numpy(), axis=1, keepdims=True))).write_parquet(sample_lake / "content_vectors.parquet")
    result = materialize(dg.AssetSelection.checks_for_assets("content_vectors"), sample_lake, instance=instance,
                         raise_on_error=False)
    assert set(failed_checks(result)) == {("content_vectors", "dimension_is_models")}
    assert "expected Array(Float32, 384)" in failed_checks(result)[("content_vectors", "dimension_is_models")]
