"""Nothing unaudited is read: a reader process queries every store all the time (the local Milvus server, the
local Neo4j, AgentDB) while one staged version per store with a real defect is stopped by the gate, and then a good
release is published. The reader only ever meets the first release's versions, then the second's.

Milvus Lite admits one process at a time, so a reader beside a writer needs the server (test_release_gate shows
the same gate on Lite). About two minutes: `-m matrix`, outside CI.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from tv5_assets.core.pools import apply_limits
from tv5_assets.core.releases import Registry
from tv5_assets.graph_store import slots
from tv5_assets.release.pointers import GraphSlot, MilvusAlias
from tv5_assets_tests.harness import SMALL_SAMPLE, local_neo4j, materialize, release_config
from tv5_assets_tests.milvus_support import drop_everything, make_resource

pytestmark = [pytest.mark.neo4j, pytest.mark.milvus_server, pytest.mark.matrix]
REPO = Path(__file__).resolve().parents[1]
MEDIA = "milvus/media_vectors"
VERSION_OF = {"milvus": MEDIA, "graph": "graph", "agentdb": "agentdb"}


def _staged(result: dg.ExecuteInProcessResult, key: str) -> str:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key]
    return str(event.materialization.metadata["staged_version"].value)


def _stopped(lake: Path, instance: dg.DagsterInstance, milvus, names: str) -> str:
    result = materialize("release", lake, instance=instance, raise_on_error=False, milvus=milvus)
    assert not result.success
    message = " ".join(str(e.event_specific_data.error.message) for e in result.get_step_failure_events())
    assert "release stopped" in message and names in message, message[:1500]
    return message


def _rounds(path: Path, least: int, timeout_s: float = 120) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        rounds = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        if len(rounds) >= least or time.monotonic() > deadline:
            return rounds
        time.sleep(0.5)


def test_a_reader_querying_all_the_time_never_meets_an_unaudited_version(tmp_path: Path, neo4j_server) -> None:
    lake, home = tmp_path / "lake", tmp_path / "home"
    lake.mkdir()
    home.mkdir()
    milvus = make_resource("server", lake)
    out, stop = tmp_path / "reader.jsonl", tmp_path / "stop"
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        apply_limits(instance)
        assert materialize("*", lake, release_config(**SMALL_SAMPLE), instance=instance, milvus=milvus).success
        registry = Registry.in_lake(lake)
        first_id = registry.served_id()
        first = registry.manifest(first_id)["stores"]
        np.save(tmp_path / "vectors.npy", np.asarray(
            pl.read_parquet(lake / "content_vectors.parquet").head(3)["vector"].to_list(), np.float32))
        reader = subprocess.Popen(
            [sys.executable, "-m", "tv5_assets_tests.store_reader", milvus.uri, milvus.alias_name("media_vectors"),
             str(tmp_path / "vectors.npy"), str(lake), str(out), str(stop)],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE, text=True)
        try:
            assert len(_rounds(out, 2)) >= 2, "the reader never answered"
            defective = {}
            # Milvus: a staged collection whose vectors no longer answer for their ids (each entity holds the next
            # one's vector, as a mis-aligned join would write): its ANN recall against the source fails
            force = {"ops": {"milvus__media_vectors": {"config": {"force_rebuild": True}}}}
            staged = materialize(dg.AssetSelection.assets(MEDIA).without_checks(), lake, force, instance=instance,
                                 milvus=milvus)
            defective["milvus"] = _staged(staged, MEDIA)
            with milvus.connected():
                rows = milvus.client.query(defective["milvus"], filter="id >= 0", output_fields=["*"], limit=16_384)
                shifted = [{**row, "vector": rows[(i + 1) % len(rows)]["vector"]} for i, row in enumerate(rows)]
                milvus.client.upsert(defective["milvus"], shifted)
                milvus.flush(defective["milvus"])
                assert milvus.count(defective["milvus"]) == len(rows)  # nothing missing: only the vectors are wrong
            materialize(dg.AssetSelection.checks_for_assets(MEDIA), lake, instance=instance, raise_on_error=False,
                        milvus=milvus)
            _stopped(lake, instance, milvus, f"{MEDIA}:recall_at_10 FAILED")
            with milvus.connected():
                assert MilvusAlias(MEDIA, milvus).exists(defective["milvus"])  # left to inspect
            # Neo4j: a staged slot missing a User node
            staged = materialize(dg.AssetSelection.assets("graph").without_checks(), lake,
                                 {"ops": {"graph": {"config": {"force_reload": True}}}}, instance=instance,
                                 milvus=milvus)
            defective["graph"] = _staged(staged, "graph")
            with dg.build_resources({"neo4j": local_neo4j()}) as resources:
                resources.neo4j.client.write(f"MATCH (u:{slots.label('User', defective['graph'])}) WITH u "
                                             "ORDER BY u.id LIMIT 1 DETACH DELETE u")
            materialize(dg.AssetSelection.checks_for_assets("graph"), lake, instance=instance, raise_on_error=False,
                        milvus=milvus)
            _stopped(lake, instance, milvus, "graph:node_counts_match_sources FAILED")
            with dg.build_resources({"neo4j": local_neo4j()}) as resources:
                assert GraphSlot(resources.neo4j).exists(defective["graph"])  # left to inspect
            # AgentDB: a staged file missing a table
            staged = materialize(dg.AssetSelection.assets("agentdb").without_checks(), lake,
                                 {"ops": {"agentdb": {"config": {"recent_steps_per_user": 3}}}}, instance=instance,
                                 milvus=milvus)
            defective["agentdb"] = _staged(staged, "agentdb")
            with sqlite3.connect(lake / "agentdb.versions" / defective["agentdb"]) as db:
                db.execute("DROP TABLE learning_experiences")
            materialize(dg.AssetSelection.checks_for_assets("agentdb"), lake, instance=instance,
                        raise_on_error=False, milvus=milvus)
            _stopped(lake, instance, milvus, "agentdb:")
            assert (lake / "agentdb.versions" / defective["agentdb"]).is_file()  # left to inspect
            stopped_rounds = len(_rounds(out, 0))
            assert registry.manifest(registry.served_id())["stores"] == first

            # a good release: every store staged again, audited, published together
            good = {"ops": {"milvus__media_vectors": {"config": {"force_rebuild": True}},
                            "graph": {"config": {"force_reload": True}},
                            "agentdb": {"config": {"recent_steps_per_user": 5}}}}
            assert materialize(dg.AssetSelection.assets(MEDIA, "graph", "agentdb"), lake, good, instance=instance,
                               milvus=milvus).success
            published_at = time.time()
            assert materialize("release", lake, instance=instance, milvus=milvus).success
            released_at = time.time()
            second_id = registry.served_id()
            second = registry.manifest(second_id)["stores"]
            assert all(second[VERSION_OF[s]]["version"] != first[VERSION_OF[s]]["version"] for s in VERSION_OF)
            _rounds(out, len(_rounds(out, 0)) + 2)
        finally:
            stop.touch()
            _, errors = reader.communicate(timeout=120)
            drop_everything(milvus)
    rounds = _rounds(out, 0)
    assert reader.returncode == 0, errors[-2000:]
    assert [r["errors"] for r in rounds if r["errors"]] == [], "the reader met an error"
    for store, key in VERSION_OF.items():
        seen = [Path(r[f"{store}_version"]).name for r in rounds]
        versions = {first[key]["version"], second[key]["version"]}
        assert set(seen) <= versions and defective[store] not in seen, (store, set(seen), defective[store])
        assert all(v == first[key]["version"] for v, r in zip(seen, rounds, strict=True) if r["t"] < published_at)
        answers = {v: {json.dumps(r[store]) for r, w in zip(rounds, seen, strict=True) if w == v} for v in versions}
        # what the store itself says it serves: the first release's id, then the second's, matching the versions
        said = {(Path(r[f"{store}_version"]).name, r[f"{store}_release"]) for r in rounds}
        assert said <= {(first[key]["version"], first_id), (second[key]["version"], second_id)}, (store, said)
        assert all(len(a) <= 1 for a in answers.values()), (store, answers)  # one answer per version, never a mix
        print(f"\n{store}: {len(rounds)} reads; versions seen in order: "
              f"{[v for i, v in enumerate(seen) if i == 0 or seen[i - 1] != v]}; answers per version {answers}; "
              f"release ids the store reported {sorted({r[f'{store}_release'] for r in rounds})}")
    print(f"{stopped_rounds} reads during the three stopped releases, all on the first release")
    # the public labels: a query running while the publish transaction commits may count across both slots (the
    # online path's guarantee); it did so only inside the release step, never before it or after
    pinned = {r["graph_version"]: r["graph"] for r in rounds}
    mixed = [r for r in rounds if r["graph_public"] != pinned[r["graph_version"]]]
    assert all(published_at <= r["t"] <= released_at for r in mixed), [(r["t"], r["graph_public"]) for r in mixed]
    print(f"graph, public labels: {len(mixed)} of {len(rounds)} reads counted across both slots, all within the "
          f"release step ({released_at - published_at:.1f} s): {sorted({r['graph_public'] for r in mixed})}")
