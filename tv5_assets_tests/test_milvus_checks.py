"""The collections' asset checks, both ways, through Dagster on Milvus Lite: green on a good build, failing
with a useful message when the collection, its index, its load state, or the source drifts apart. The checks
audit the collection the asset's latest materialization staged (no alias), read from the run's instance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from tv5_assets.vector_store import checks
from tv5_assets.vector_store.assets import media_vectors, user_vectors
from tv5_assets.vector_store.rebuild import rebuild
from tv5_assets.vector_store.resources import MilvusResource
from tv5_assets.vector_store.rows import Rows, media_rows, user_rows
from tv5_assets.vector_store.schema import MEDIA as MEDIA_SPEC
from tv5_assets.vector_store.schema import USERS as USER_SPEC
from tv5_assets_tests.harness import check_results, materialize
from tv5_assets_tests.milvus_support import (
    make_resource,
    owned,
    staged_name,
    staged_on,
    unit_vectors,
    variant,
    write_source_lake,
)

MEDIA = media_vectors.key.to_user_string()
USERS = user_vectors.key.to_user_string()
ALL_CHECKS = (checks.ENTITY_COUNT, checks.INDEX_AS_CONFIGURED, checks.LOADED, checks.SELF_RETRIEVAL, checks.RECALL,
              checks.LATENCY, checks.FILTERED_SEARCH, checks.EVERY_VALUE)


INSTANCE = dg.DagsterInstance.ephemeral()  # the `built` fixture's runs and the checks re-run against them


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, MilvusResource, dg.ExecuteInProcessResult]]:
    """Both collections staged from a hand-made source lake, with all their checks."""
    lake = tmp_path_factory.mktemp("checks")
    write_source_lake(lake)
    with owned(make_resource("lite", lake)) as milvus:
        result = materialize(dg.AssetSelection.assets(media_vectors, user_vectors), lake, instance=INSTANCE,
                             milvus=milvus)
        yield lake, milvus, result


def _run_check(lake: Path, milvus: MilvusResource, asset: dg.AssetsDefinition, name: str,
               config: dict | None = None, instance: dg.DagsterInstance = INSTANCE) -> dg.AssetCheckEvaluation:
    key = dg.AssetCheckKey(asset.key, name)
    run_config = {"ops": {f"{asset.key.to_python_identifier()}_{name}": {"config": config}}} if config else None
    result = materialize(dg.AssetSelection.checks(key), lake, run_config=run_config, raise_on_error=False,
                         instance=instance, milvus=milvus)
    return check_results(result)[(asset.key.to_user_string(), name)]


def test_every_check_passes_on_a_good_build(built) -> None:
    _, milvus, result = built
    evaluations = check_results(result)
    assert set(evaluations) == {(asset, name) for asset in (MEDIA, USERS) for name in ALL_CHECKS}
    failed = {key: e.description for key, e in evaluations.items() if not e.passed and key[1] != checks.LATENCY}
    assert failed == {}  # latency warns on a loaded machine: not asserted (no timed tests)
    latency = evaluations[(MEDIA, checks.LATENCY)]
    assert latency.severity == dg.AssetCheckSeverity.WARN
    assert {"p50_ms", "p99_ms", "p99_budget_ms"} <= set(latency.metadata)
    assert latency.metadata["p99_budget_ms"].value == checks.LITE_P99_BUDGET_MS  # Lite's default budget
    assert evaluations[(MEDIA, checks.RECALL)].metadata["recall_at_10"].value >= 0.95
    assert evaluations[(MEDIA, checks.FILTERED_SEARCH)].metadata["expression"].value == \
        'ARRAY_CONTAINS(platforms, "TV5MONDE")'
    assert evaluations[(USERS, checks.FILTERED_SEARCH)].metadata["expression"].value == 'country == "FR"'


def test_nothing_staged_or_the_staged_collection_gone_fails_every_check(tmp_path: Path) -> None:
    write_source_lake(tmp_path)
    with owned(make_resource("lite", tmp_path)) as milvus:
        result = materialize(dg.AssetSelection.checks_for_assets(media_vectors), tmp_path, raise_on_error=False,
                             milvus=milvus)
        evaluations = check_results(result)
        assert len(evaluations) == len(ALL_CHECKS) and not any(e.passed for e in evaluations.values())
        assert evaluations[(MEDIA, checks.ENTITY_COUNT)].description == \
            "milvus/media_vectors has no staged collection: materialize the asset"
        gone = staged_on(dg.DagsterInstance.ephemeral(), media_vectors.key, "media_vectors__v20260101000000_abcdef")
        result = materialize(dg.AssetSelection.checks_for_assets(media_vectors), tmp_path, raise_on_error=False,
                             instance=gone, milvus=milvus)
    evaluations = check_results(result)
    assert not any(e.passed for e in evaluations.values())
    assert "the staged collection media_vectors__v20260101000000_abcdef is not on milvus-lite" in \
        evaluations[(MEDIA, checks.ENTITY_COUNT)].description


def test_entity_count_fails_when_entities_go_missing(built) -> None:
    lake, milvus, result = built
    collection = staged_name(result, user_vectors.key)
    with milvus.connected():
        milvus.client.delete(collection, filter="id in [1, 2, 3]")
    try:
        evaluation = _run_check(lake, milvus, user_vectors, checks.ENTITY_COUNT)
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
        assert "holds 247 entities, which differs from the 250 source rows" in evaluation.description
    finally:  # put them back for the other tests of the module
        rows = user_rows(pl.read_parquet(lake / "user_vectors.parquet"),
                         pl.read_parquet(lake / "demographics.parquet"), USER_SPEC).frame
        with milvus.connected():
            milvus.insert(collection, rows.filter(pl.col("id") <= 3), USER_SPEC)


def test_index_check_fails_when_the_configuration_differs(built) -> None:
    lake, milvus, _ = built
    evaluation = _run_check(lake, variant(milvus, hnsw_m=32, metric_type="L2"), media_vectors,
                            checks.INDEX_AS_CONFIGURED)
    assert not evaluation.passed
    assert "'M': {'expected': 32, 'reported': 16}" in evaluation.description
    assert "'metric_type': {'expected': 'L2', 'reported': 'COSINE'}" in evaluation.description


def test_load_check_on_lite_loads_what_a_new_process_finds_released(built) -> None:
    """Milvus Lite keeps load state per process: the check loads the collection and says what it found.
    (On the server a released collection fails the check: see test_milvus_assets.)"""
    lake, milvus, result = built
    collection = staged_name(result, media_vectors.key)
    with milvus.connected():
        milvus.client.release_collection(collection)
    evaluation = _run_check(lake, milvus, media_vectors, checks.LOADED)
    assert evaluation.passed and evaluation.metadata["found_state"].value == "NotLoad"
    assert evaluation.description == f"{collection} load state is Loaded (found NotLoad: Milvus Lite loads per process)"


def test_quality_checks_fail_when_the_source_vectors_changed(built, tmp_path: Path) -> None:
    """The collection no longer holds the source's vectors: nothing finds itself, recall collapses."""
    lake, milvus, _ = built
    stale = Path(tmp_path)
    for name in ("movies", "availability", "user_vectors", "demographics"):
        (stale / f"{name}.parquet").symlink_to(lake / f"{name}.parquet")
    source = pl.read_parquet(lake / "content_vectors.parquet")
    rng = np.random.default_rng(99)
    fresh = unit_vectors(rng, source.height, rng.normal(size=(25, 384)))
    source.with_columns(pl.Series("vector", fresh).cast(source.schema["vector"])).write_parquet(
        stale / "content_vectors.parquet")
    evaluation = _run_check(stale, milvus, media_vectors, checks.SELF_RETRIEVAL)
    assert not evaluation.passed and "required 99%" in evaluation.description
    assert evaluation.metadata["rate"].value < 0.5 and evaluation.metadata["missed_ids"].value
    evaluation = _run_check(stale, milvus, media_vectors, checks.RECALL)
    assert not evaluation.passed and evaluation.metadata["recall_at_10"].value < 0.5


def test_recall_fails_for_an_index_too_coarse_for_the_data(tmp_path: Path) -> None:
    """Pure-noise 384-d vectors defeat a tiny HNSW graph (M=4; efConstruction is the media spec's 100, which
    overrides the resource's 8) searched at ef=10."""
    frames = write_source_lake(tmp_path, movies=1500, users=10)
    rng = np.random.default_rng(7)
    noise = rng.normal(size=(1500, 384)).astype(np.float32)
    frames["content_vectors"].with_columns(
        pl.Series("vector", noise / np.linalg.norm(noise, axis=1, keepdims=True)).cast(pl.Array(pl.Float32, 384))
    ).write_parquet(tmp_path / "content_vectors.parquet")
    coarse = make_resource("lite", tmp_path, hnsw_m=4, hnsw_ef_construction=8, search_ef=10)
    instance = dg.DagsterInstance.ephemeral()
    with owned(coarse):
        assert materialize(dg.AssetSelection.assets(media_vectors).without_checks(), tmp_path, instance=instance,
                           milvus=coarse).success
        evaluation = _run_check(tmp_path, coarse, media_vectors, checks.RECALL, {"minimum": 0.95}, instance)
    assert not evaluation.passed and evaluation.metadata["recall_at_10"].value < 0.95
    assert "at ef=10 against exact numpy search; required 0.95" in evaluation.description


def test_latency_check_warns_over_budget_and_passes_within(built) -> None:
    lake, milvus, _ = built
    evaluation = _run_check(lake, milvus, media_vectors, checks.LATENCY, {"p99_budget_ms": 0.001, "queries": 20})
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    # every query is over a 0.001 ms budget: the check stops once the p99 of the 20 planned is decided
    assert "budget p99 0 ms" in evaluation.description and evaluation.metadata["planned_queries"].value == 20
    assert evaluation.metadata["stopped_early"].value is True and evaluation.metadata["queries"].value < 20
    evaluation = _run_check(lake, milvus, media_vectors, checks.LATENCY, {"p99_budget_ms": 60_000, "queries": 20})
    assert evaluation.passed and 0 < evaluation.metadata["p50_ms"].value <= evaluation.metadata["p99_ms"].value


def test_filtered_search_fails_when_attributes_drifted(built, tmp_path: Path) -> None:
    """Availability now lists more TV5MONDE titles than the collection was built with."""
    lake, milvus, _ = built
    for name in ("content_vectors", "movies", "user_vectors", "demographics"):
        (tmp_path / f"{name}.parquet").symlink_to(lake / f"{name}.parquet")
    availability = pl.read_parquet(lake / "availability.parquet")
    extra = pl.DataFrame({"movie_id": [6, 12], "platform": ["TV5MONDE", "TV5MONDE"]},
                         schema=availability.schema)
    pl.concat([availability, extra]).write_parquet(tmp_path / "availability.parquet")
    evaluation = _run_check(tmp_path, milvus, media_vectors, checks.FILTERED_SEARCH)
    assert not evaluation.passed
    assert "the filter counts 100 entities, the source 102" in evaluation.description


def test_every_value_check_fails_on_a_collection_holding_a_cut_value(tmp_path: Path) -> None:
    """The old loader cut array elements to 16 characters: "Criterion Channel" became "Criterion Channe", and a
    filter on the real name found nothing. The check counts every distinct value, so it sees the loss."""
    frames = write_source_lake(tmp_path)
    availability = frames["availability"].with_columns(
        pl.when(pl.col("platform") == "MUBI").then(pl.lit("Criterion Channel")).otherwise("platform").alias("platform"))
    availability.write_parquet(tmp_path / "availability.parquet")
    rows = media_rows(frames["content_vectors"], frames["movies"], availability, MEDIA_SPEC)
    cut = Rows(rows.frame.with_columns(pl.col("platforms").list.eval(pl.element().str.slice(0, 16))))
    with owned(make_resource("lite", tmp_path)) as milvus:
        with milvus.connected():
            built = rebuild(milvus, MEDIA_SPEC, milvus.alias_name(MEDIA_SPEC.alias), cut, [(0, cut.frame.height)])
        instance = staged_on(dg.DagsterInstance.ephemeral(), media_vectors.key, built.collection)
        evaluation = _run_check(tmp_path, milvus, media_vectors, checks.EVERY_VALUE, instance=instance)
        print(f"cut collection: passed={evaluation.passed} severity={evaluation.severity}: {evaluation.description}")
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
        truth = availability.filter(pl.col("platform") == "Criterion Channel").height
        assert f"platforms = 'Criterion Channel': 0 of {truth}" in evaluation.description
        # the same rows uncut (what the loader now writes) pass
        with milvus.connected():
            built = rebuild(milvus, MEDIA_SPEC, milvus.alias_name(MEDIA_SPEC.alias), rows, [(0, rows.frame.height)])
        staged_on(instance, media_vectors.key, built.collection)
        evaluation = _run_check(tmp_path, milvus, media_vectors, checks.EVERY_VALUE, instance=instance)
        assert evaluation.passed, evaluation.description
        assert evaluation.metadata["values_per_field"].value == {"genres": 3, "platforms": 3}


def test_latency_budget_defaults_to_the_backend_and_yields_to_config() -> None:
    """The serving budget (10 ms) on a Milvus server, Lite's documented latency (100 ms) on Lite; a configured
    budget wins on both."""
    assert checks.LatencyConfig().budget_ms("milvus-server") == checks.SERVER_P99_BUDGET_MS == 10.0
    assert checks.LatencyConfig().budget_ms("milvus-lite") == checks.LITE_P99_BUDGET_MS == 100.0
    assert checks.LatencyConfig(p99_budget_ms=25.0).budget_ms("milvus-server") == 25.0
    assert checks.LatencyConfig(p99_budget_ms=25.0).budget_ms("milvus-lite") == 25.0
