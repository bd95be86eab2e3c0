"""Write-Audit-Publish on the sample, with the real engines (Milvus Lite, the local Neo4j, AgentDB): the stores
stage, their checks audit the staged versions, `release` publishes every store together only when every blocking
check of their lineage passed; a stopped release leaves readers' answers unchanged; a publish killed between two
stores is finished by the next run; `rollback` switches back.

The tests of this module run in order on one lake and one persistent instance (a subprocess publishes too).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from tv5_assets.agentdb.node import NodeRuntime
from tv5_assets.core.lake import DataLake
from tv5_assets.core.pools import apply_limits
from tv5_assets.core.releases import Registry
from tv5_assets.definitions import defs
from tv5_assets.graph_store import slots as graph_slots
from tv5_assets.release.assets import pointers
from tv5_assets.vector_store.resources import MilvusResource
from tv5_assets_tests.harness import SMALL_SAMPLE, lake_resources, local_neo4j, materialize, release_config

pytestmark = pytest.mark.neo4j
REPO = Path(__file__).resolve().parents[1]
MEDIA = "milvus/media_vectors"


class Sample:
    def __init__(self, lake: Path, home: Path, instance: dg.DagsterInstance) -> None:
        self.lake, self.home, self.instance = lake, home, instance
        self.registry = Registry.in_lake(lake)

    def milvus(self) -> MilvusResource:
        return MilvusResource(uri=str(self.lake / "milvus.db"))

    def served(self) -> dict[str, str | None]:
        """What every store serves now, read from the stores themselves (resources set up as in a step)."""
        with dg.build_resources({"milvus": self.milvus(), "neo4j": local_neo4j()}) as resources:
            return {p.store: p.served()
                    for p in pointers(resources.milvus, DataLake(base_dir=str(self.lake)), resources.neo4j)}

    def release_ids(self) -> dict[str, str | None]:
        """The release id each store says it serves (a Milvus collection property, the AgentDB file's
        `tv5_releases` row, the graph's `(:Release)` node), read from the stores themselves."""
        with dg.build_resources({"milvus": self.milvus(), "neo4j": local_neo4j()}) as resources:
            return {p.store: p.release_of()
                    for p in pointers(resources.milvus, DataLake(base_dir=str(self.lake)), resources.neo4j)}

    def readers(self) -> dict[str, object]:
        """A reader's answers from each store: 'more like this' for three movies (Milvus, through the alias), the
        sessions AgentDB reads from data/agentdb.db, and a Cypher count (Neo4j)."""
        vectors = pl.read_parquet(self.lake / "content_vectors.parquet").head(3)
        milvus = self.milvus()
        with milvus.connected():
            alias = milvus.alias_name("media_vectors")
            milvus.ensure_searchable(alias)  # Lite loads per process, as a reader does (README)
            hits = milvus.search(alias, np.asarray(vectors["vector"].to_list(), np.float32), limit=5)
        found = [[int(h["id"]) for h in query] for query in hits]
        stats = NodeRuntime.locate().stats(self.lake / "agentdb.db")
        with dg.build_resources({"neo4j": local_neo4j()}) as resources:
            rated = resources.neo4j.read("MATCH (:User)-[r:RATED]->(:Media) RETURN count(r) AS n")[0]["n"]
        return {"milvus": found, "agentdb": (stats["sessions"], stats["experiences"]), "neo4j": rated}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory, neo4j_server) -> Iterator[Sample]:
    lake, home = tmp_path_factory.mktemp("wap_lake"), tmp_path_factory.mktemp("wap_home")
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        apply_limits(instance)  # a persistent instance: every store pool needs its limit
        result = materialize("*", lake, release_config(**SMALL_SAMPLE), instance=instance)
        assert result.success
        yield Sample(lake, home, instance)


def _release(sample: Sample) -> dg.ExecuteInProcessResult:
    return materialize("release", sample.lake, instance=sample.instance, raise_on_error=False)


def _failure(result: dg.ExecuteInProcessResult) -> str:
    return " ".join(str(e.event_specific_data.error.message) for e in result.get_step_failure_events())


def test_a_whole_run_publishes_every_store_together(sample: Sample) -> None:
    event = sample.instance.get_latest_materialization_event(dg.AssetKey("release"))
    metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    release_id = metadata["release_id"]
    assert sample.registry.served_id() == release_id
    manifest = sample.registry.manifest(release_id)
    assert set(manifest["stores"]) == {"milvus/media_vectors", "milvus/user_vectors", "milvus/hybrid_media_vectors",
                                       "milvus/hybrid_user_vectors", "agentdb", "graph"}
    assert sample.served() == {store: entry["version"] for store, entry in manifest["stores"].items()}
    assert sample.release_ids() == dict.fromkeys(manifest["stores"], release_id)  # any reader can ask a store
    assert {"ratings", "movies", "content_vectors", "episodes"} <= set(manifest["lake"])
    recall = [c for c in manifest["checks"] if c["asset"] == MEDIA and c["check"] == "recall_at_10"]
    assert recall and recall[0]["figures"]["recall_at_10"] >= 0.95 and not recall[0]["blocks"]
    assert not [c for c in manifest["checks"] if c["blocks"]]
    print(f"\nrelease {release_id}: {metadata['switch_s']} (gate {metadata['gate_s']} s)")


def test_a_staged_collection_failing_its_audit_is_not_published(sample: Sample) -> None:
    before, served = sample.readers(), sample.served()
    force = {"ops": {"milvus__media_vectors": {"config": {"force_rebuild": True}}}}
    staged = materialize(dg.AssetSelection.assets(MEDIA).without_checks(), sample.lake, force, instance=sample.instance)
    name = staged.get_asset_materialization_events()[0].materialization.metadata["staged_version"].value
    milvus = sample.milvus()
    with milvus.connected():  # a real defect in the staged collection: entities gone
        milvus.client.delete(name, filter="id in [1, 2, 3]")
        milvus.flush(name)
    audited = materialize(dg.AssetSelection.checks_for_assets(MEDIA), sample.lake, instance=sample.instance,
                          raise_on_error=False)
    assert not audited.success or any(not e.passed for e in audited.get_asset_check_evaluations())
    stopped = _release(sample)
    assert not stopped.success
    message = _failure(stopped)
    print(f"\nstopped: {message[:400]}")
    assert "release stopped" in message and f"{MEDIA}:entity_count_matches_source FAILED" in message
    assert sample.readers() == before and sample.served() == served  # readers saw nothing of it
    with milvus.connected():
        assert milvus.has_collection(name)  # there to inspect


def test_a_staged_agentdb_file_missing_a_table_is_not_published(sample: Sample) -> None:
    before, served = sample.readers(), sample.served()
    shorter = {"ops": {"agentdb": {"config": {"recent_steps_per_user": 3}}}}  # other rows: a new staged file
    staged = materialize(dg.AssetSelection.assets("agentdb").without_checks(), sample.lake, shorter,
                         instance=sample.instance)
    name = staged.get_asset_materialization_events()[0].materialization.metadata["staged_version"].value
    path = sample.lake / "agentdb.versions" / name
    with sqlite3.connect(path) as db:  # a real defect: AgentDB's experiences table is gone
        db.execute("DROP TABLE learning_experiences")
    audited = materialize(dg.AssetSelection.checks_for_assets("agentdb"), sample.lake, instance=sample.instance,
                          raise_on_error=False)
    assert any(not e.passed for e in audited.get_asset_check_evaluations())
    stopped = _release(sample)
    assert not stopped.success and "agentdb:" in _failure(stopped), _failure(stopped)[:1000]
    assert sample.readers() == before and sample.served() == served and path.exists()  # there to inspect
    # the served rows staged again (the served file, reused) and audited: the release may go on later
    assert materialize("agentdb", sample.lake, instance=sample.instance).success


def test_a_staged_graph_missing_a_node_is_not_published(sample: Sample) -> None:
    before, served = sample.readers(), sample.served()
    force = {"ops": {"graph": {"config": {"force_reload": True}}}}
    staged = materialize(dg.AssetSelection.assets("graph").without_checks(), sample.lake, force,
                         instance=sample.instance)
    slot = staged.get_asset_materialization_events()[0].materialization.metadata["staged_version"].value
    assert slot != served["graph"]
    with dg.build_resources({"neo4j": local_neo4j()}) as resources:  # a real defect: a User node gone
        resources.neo4j.client.write(f"MATCH (u:{graph_slots.label('User', slot)}) WITH u ORDER BY u.id LIMIT 1 "
                                     "DETACH DELETE u")
        assert sample.readers() == before  # readers match the served slot's public labels
        audited = materialize(dg.AssetSelection.checks_for_assets("graph"), sample.lake, instance=sample.instance,
                              raise_on_error=False)
        assert any(not e.passed for e in audited.get_asset_check_evaluations())
        stopped = _release(sample)
        assert not stopped.success
        message = _failure(stopped)
        print(f"\nstopped: {message[:400]}")
        assert "graph:node_counts_match_sources FAILED" in message, message[:1000]
        assert sample.readers() == before and sample.served() == served
        assert slot in graph_slots.existing(resources.neo4j.client)  # there to inspect
    # the served slot staged again (reused) and audited: the release may go on later; the damaged stage is dropped
    restaged = materialize("graph", sample.lake, instance=sample.instance)
    metadata = restaged.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["staged_version"].value == served["graph"] and metadata["dropped_slots"].value == [slot]


def test_a_check_that_failed_in_an_earlier_run_blocks_a_later_release(sample: Sample) -> None:
    """movies' unique key fails on its latest materialization (the file was damaged, then restored); a run of the
    stores and `release` alone must not publish."""
    path = sample.lake / "movies.parquet"
    original = path.read_bytes()
    movies = pl.read_parquet(path)
    pl.concat([movies, movies.head(1)]).write_parquet(path)
    checked = materialize(dg.AssetSelection.checks_for_assets("movies"), sample.lake, instance=sample.instance,
                          raise_on_error=False)
    assert any(not e.passed for e in checked.get_asset_check_evaluations())
    path.write_bytes(original)
    before = sample.served()
    stores = dg.AssetSelection.assets(MEDIA, "release")
    run = materialize(stores.without_checks(), sample.lake, instance=sample.instance, raise_on_error=False)
    assert not run.success
    message = _failure(run)
    assert "movies:unique_key FAILED" in message, message[:1000]
    assert sample.served() == before
    # the check passes again on the restored file: the release may go
    assert materialize(dg.AssetSelection.checks_for_assets("movies"), sample.lake, instance=sample.instance).success
    assert materialize(dg.AssetSelection.checks_for_assets(MEDIA), sample.lake, instance=sample.instance).success
    assert _release(sample).success


def test_a_lake_file_edited_outside_dagster_blocks_naming_it(sample: Sample) -> None:
    path = sample.lake / "ratings.parquet"
    original = path.read_bytes()
    pl.read_parquet(path).write_parquet(path, compression="snappy")  # same rows, other bytes
    try:
        before = sample.served()
        run = _release(sample)
        assert not run.success
        message = _failure(run)
        assert f"{path} (ratings) was changed outside Dagster" in message, message[:1000]
        assert sample.served() == before
    finally:
        path.write_bytes(original)


KILL_AFTER_FIRST_SWITCH = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import dagster as dg
    import tv5_assets.release.assets as release_assets
    from tv5_assets_tests.harness import materialize

    publish = release_assets.publish
    def dying(*args, **kwargs):  # SIGKILL between the first and the second store's switch
        return publish(*args, **kwargs, after_switch=lambda store: os.kill(os.getpid(), signal.SIGKILL))
    release_assets.publish = dying
    with dg.DagsterInstance.from_config(sys.argv[2]) as instance:
        materialize("release", Path(sys.argv[1]), instance=instance)
""")


def test_a_publish_killed_between_two_stores_is_finished_by_the_next_run(sample: Sample) -> None:
    force = {"ops": {**{op: {"config": {"force_rebuild": True}} for op in ("milvus__media_vectors",
                                                                             "milvus__user_vectors")},
                     "graph": {"config": {"force_reload": True}},
                     "agentdb": {"config": {"recent_steps_per_user": 3}}}}  # other rows: a new AgentDB file
    assert materialize(dg.AssetSelection.assets(MEDIA, "milvus/user_vectors", "graph", "agentdb"), sample.lake, force,
                       instance=sample.instance).success
    first = sample.registry.served_id()
    before = sample.served()
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_FIRST_SWITCH, str(sample.lake), str(sample.home)],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                            timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    journal = sample.registry.journal()
    assert journal is not None and sample.registry.served_id() == first
    half = sample.served()
    moved = [s for s in half if half[s] != before[s]]
    assert moved == [MEDIA], half  # one store switched, the next not yet: a mixed state, recorded in the journal
    again = _release(sample)
    assert again.success
    recovered = again.get_asset_materialization_events()[0].materialization.metadata["recovered"].value
    assert recovered == f"forward to {journal['release_id']}"
    served = sample.registry.served_id()
    assert served == journal["release_id"] and sample.registry.journal() is None
    assert sample.served() == {s: e["version"] for s, e in sample.registry.manifest(served)["stores"].items()}
    assert set(sample.release_ids().values()) == {served}
    print(f"\nkilled after switching {moved}; the next run recovered {recovered}")


def test_rollback_switches_every_store_back(sample: Sample) -> None:
    registry = sample.registry
    current, previous = registry.served_id(), registry.previous_id()
    assert previous is not None and previous != current
    # the previous release's AgentDB file is shelved (compressed) until it is served again
    versions = sample.lake / "agentdb.versions"
    kept = registry.manifest(previous)["stores"]["agentdb"]["version"]
    assert kept != registry.manifest(current)["stores"]["agentdb"]["version"]
    assert not (versions / kept).exists() and (versions / "shelf" / f"{kept}.tar.zst").is_file()
    job = defs.resolve_job_def("rollback")
    result = job.execute_in_process(instance=sample.instance, resources=lake_resources(sample.lake))
    assert result.success
    assert registry.served_id() == previous
    expected = {s: e["version"] for s, e in registry.manifest(previous)["stores"].items()}
    assert expected["graph"] != registry.manifest(current)["stores"]["graph"]["version"]
    assert sample.served() == expected  # the graph too: its previous slot was kept
    assert set(sample.release_ids().values()) == {previous}
    assert (versions / kept).is_file() and not (versions / "shelf" / f"{kept}.tar.zst").exists()  # restored
    rolled_from = registry.manifest(current)["stores"]["agentdb"]["version"]
    assert (versions / "shelf" / f"{rolled_from}.tar.zst").is_file()  # kept, shelved: it can be served again
    assert current in registry.retained_ids()  # rolled back from: kept, can be served again
