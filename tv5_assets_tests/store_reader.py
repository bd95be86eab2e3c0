"""A reader of every serving store, in a process of its own beside the writers: it queries all the time and logs
what it saw, one JSON line per round, so a test can show that no reader ever met an unaudited version.

Each round: "more like this" for three fixed vectors through the Milvus alias (and which collection the alias names),
the Cypher count of RATED in the slot `(:Release)` names, pinned by its slot labels (what a reader that must see one
release per query does), and the same count between the public labels (which a publish moves in one transaction:
a query running while it commits may see both slots, README "Reading the graph"), AgentDB's own stats read
through `data/agentdb.db` (and the file the link names); and the release id each store says it serves (the
collection's `tv5.release_id` property, `(:Release).release_id`, the file's `tv5_releases` row). A failed query is
logged as an error, never hidden.

    python -m tv5_assets_tests.store_reader <milvus uri> <alias> <vectors.npy> <lake> <out.jsonl> <stop file>
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from pymilvus import MilvusClient

from tv5_assets.agentdb.marks import release_of
from tv5_assets.agentdb.node import NodeRuntime
from tv5_assets.graph_store import slots
from tv5_assets.graph_store.resources import Neo4jClient
from tv5_assets.vector_store.marks import RELEASE_PROPERTY
from tv5_assets_tests.services import neo4j_settings

READ_RELEASE = "MATCH (r:Release {key: 'graph'}) RETURN r.slot AS slot, r.release_id AS release_id"
READ_PUBLIC = "RETURN COUNT { (:User)-[:RATED]->(:Media) } AS rated"


def _round(milvus: MilvusClient, alias: str, vectors: np.ndarray, graph: Neo4jClient, node: NodeRuntime,
           link: Path) -> dict:
    seen: dict = {"t": time.time(), "errors": []}
    try:
        seen["milvus_version"] = milvus.describe_alias(alias)["collection_name"]
        properties = milvus.describe_collection(seen["milvus_version"]).get("properties") or {}
        seen["milvus_release"] = properties.get(RELEASE_PROPERTY)
        hits = milvus.search(alias, data=vectors.tolist(), limit=5)
        seen["milvus"] = [[int(h["id"]) for h in query] for query in hits]
    except Exception as error:  # noqa: BLE001 - logged for the test to see
        seen["errors"].append(f"milvus: {error}")
    try:
        [record] = graph.read(READ_RELEASE)
        seen["graph_version"], seen["graph_release"] = record["slot"], record["release_id"]
        user, media = slots.label("User", record["slot"]), slots.label("Media", record["slot"])  # validated names
        seen["graph"] = graph.read(f"RETURN COUNT {{ (:{user})-[:RATED]->(:{media}) }} AS rated")[0]["rated"]
        seen["graph_public"] = graph.read(READ_PUBLIC)[0]["rated"]
    except Exception as error:  # noqa: BLE001
        seen["errors"].append(f"neo4j: {error}")
    try:
        seen["agentdb_version"] = os.readlink(link)
        seen["agentdb_release"] = release_of(link)
        stats = node.stats(link)
        seen["agentdb"] = [stats["sessions"], stats["experiences"]]
    except Exception as error:  # noqa: BLE001
        seen["errors"].append(f"agentdb: {error}")
    return seen


def main(uri: str, alias: str, vectors_file: str, lake: str, out: str, stop: str) -> None:
    vectors = np.load(vectors_file)
    settings = neo4j_settings()
    milvus, node, link = MilvusClient(uri=uri), NodeRuntime.locate(), Path(lake) / "agentdb.db"
    with Neo4jClient(settings.uri, settings.user, settings.password) as graph, open(out, "a") as log:
        while not Path(stop).exists():
            log.write(json.dumps(_round(milvus, alias, vectors, graph, node, link)) + "\n")
            log.flush()
    milvus.close()


if __name__ == "__main__":
    main(*sys.argv[1:7])
