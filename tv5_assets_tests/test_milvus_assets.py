"""End to end on the generated sample: MovieLens -> embeddings + synthetic -> both Milvus collections, on
Milvus Lite and on the local Milvus 2.3.5 server; staged collections (no alias) audited green, an unchanged
version staged again, data version unchanged for unchanged inputs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from tv5_assets.vector_store import checks
from tv5_assets.vector_store.assets import media_vectors, user_vectors
from tv5_assets.vector_store.resources import MilvusResource
from tv5_assets_tests.harness import SMALL_SAMPLE, check_results, materialize, release_config
from tv5_assets_tests.milvus_support import BACKENDS, make_resource, owned

UPSTREAM = dg.AssetSelection.groups("movielens", "embeddings", "synthetic").without_checks()
COLLECTIONS = dg.AssetSelection.assets(media_vectors, user_vectors)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's MovieLens, embeddings and synthetic stages, materialized once."""
    lake = tmp_path_factory.mktemp("sample")
    assert materialize(UPSTREAM, lake, release_config(**SMALL_SAMPLE)).success
    return lake


@pytest.fixture(params=BACKENDS)
def lake_and_milvus(request: pytest.FixtureRequest, upstream: Path, tmp_path: Path
                    ) -> Iterator[tuple[Path, MilvusResource]]:
    lake = Path(shutil.copytree(upstream, tmp_path / "lake"))
    with owned(make_resource(request.param, lake)) as milvus:
        yield lake, milvus


def _materializations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetMaterialization]:
    return {e.asset_key.to_user_string(): e.materialization for e in result.get_asset_materialization_events()}


def test_sample_stages_both_collections_with_green_checks_and_no_alias(lake_and_milvus) -> None:
    lake, milvus = lake_and_milvus
    instance = dg.DagsterInstance.ephemeral()
    first = materialize(COLLECTIONS, lake, instance=instance, milvus=milvus)
    assert first.success
    evaluations = check_results(first)
    assert len(evaluations) == 16
    # every blocking check passes; latency only warns, and depends on the machine's load: not asserted
    assert {key: e.description for key, e in evaluations.items() if not e.passed and key[1] != checks.LATENCY} == {}
    assert evaluations[("milvus/user_vectors", checks.LATENCY)].severity == dg.AssetCheckSeverity.WARN

    built = _materializations(first)
    media, users = built["milvus/media_vectors"], built["milvus/user_vectors"]
    assert media.metadata["entity_count"].value == pl.read_parquet(lake / "content_vectors.parquet").height == 300
    assert users.metadata["entity_count"].value == pl.read_parquet(lake / "user_vectors.parquet").height == 40
    assert media.metadata["alias"].value == milvus.alias_name("media_vectors")
    assert media.metadata["staged_version"].value.startswith(milvus.alias_name("media_vectors") + "__v")
    with milvus.connected():  # staged, audited, not served: no reader finds it behind the alias
        assert milvus.alias_target(milvus.alias_name("media_vectors")) is None
    # media vectors build at efConstruction 100 (their spec's: half the build time, recall 0.997 at ml-25m shape)
    assert media.metadata["index"].value == {"index_type": "HNSW", "metric_type": "COSINE", "M": 16,
                                             "efConstruction": 100, "search_ef": 100}
    # content user vectors: an inverted file (HNSW cannot separate their near-tied neighbours at ml-25m shape)
    assert users.metadata["index"].value == {"index_type": "IVF_FLAT", "metric_type": "COSINE", "nlist": 1024,
                                             "search_nprobe": 64}
    assert media.metadata["movies_on_a_platform"].value > 0 and users.metadata["users_without_demographics"].value == 0
    assert media.metadata["vectors_per_s"].value > 0 and media.metadata["load_time_s"].value >= 0

    # Unchanged rows: the staged versions are staged again (nothing reloaded), same data version.
    kept = _materializations(materialize(COLLECTIONS.without_checks(), lake, instance=instance, milvus=milvus))
    for key, before in built.items():
        assert kept[key].metadata["reused"].value is True and kept[key].metadata["batches"].value == 0
        assert kept[key].metadata["staged_version"].value == before.metadata["staged_version"].value
        assert kept[key].tags["dagster/data_version"] == before.tags["dagster/data_version"]
    # force_rebuild builds new versions anyway; the earlier stages, neither served nor released, are dropped.
    force = {"ops": {op: {"config": {"force_rebuild": True}} for op in ("milvus__media_vectors", "milvus__user_vectors")}}
    again = _materializations(materialize(COLLECTIONS.without_checks(), lake, force, instance=instance, milvus=milvus))
    for key, before in built.items():
        after = again[key]
        assert after.metadata["reused"].value is False
        assert after.metadata["dropped_leftovers"].value == [before.metadata["staged_version"].value]
        assert after.tags["dagster/data_version"] == before.tags["dagster/data_version"]  # unchanged input
    with milvus.connected():
        for key in ("milvus/media_vectors", "milvus/user_vectors"):
            staged = again[key].metadata["staged_version"].value
            assert milvus.count(staged) == built[key].metadata["entity_count"].value
        ours = sorted(n for n in milvus.list_collections() if n.startswith(milvus.collection_prefix))
        assert ours == sorted(m.metadata["staged_version"].value for m in again.values())


def test_released_collection_fails_the_load_check_on_the_server(upstream: Path, tmp_path: Path) -> None:
    lake = Path(shutil.copytree(upstream, tmp_path / "lake"))
    instance = dg.DagsterInstance.ephemeral()
    with owned(make_resource("server", lake)) as milvus:
        staged = materialize(dg.AssetSelection.assets(media_vectors).without_checks(), lake, instance=instance,
                             milvus=milvus)
        collection = _materializations(staged)["milvus/media_vectors"].metadata["staged_version"].value
        with milvus.connected():
            milvus.client.release_collection(collection)
        result = materialize(dg.AssetSelection.checks(dg.AssetCheckKey(media_vectors.key, checks.LOADED)), lake,
                             instance=instance, raise_on_error=False, milvus=milvus)
        evaluation = check_results(result)[("milvus/media_vectors", checks.LOADED)]
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
        assert evaluation.description == f"{collection} load state is NotLoad"
