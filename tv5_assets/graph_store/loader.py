"""Loading the graph: a full rebuild into a cleared database, exact and safe to re-run.

Order: mark the load incomplete, clear the graph (relationships, then nodes, in batched inner
transactions), create the constraints and indexes, CREATE the nodes, then CREATE the
relationships with both endpoints found through the uniqueness constraints' indexes, compare the
counts with the rows, and only then mark the load complete. A load that stops anywhere (crash,
kill, error) leaves `complete = false`; the next run starts again from the clear, so it ends with
exactly the same graph as an uninterrupted one.

Locks: Neo4j 5 takes the locks a new relationship needs at commit, in sorted order, and on a
dense node (more than 50 relationships: every popular film, most users) only at the insertion
point of its chain, not on the whole node. Relationship batches are cut on start-node boundaries
(one user's ratings in one transaction), so transactions in flight together never share a start
node; they do share end nodes (a film rated by 80,000 users), which the sorted, insertion-point
locking lets them write concurrently. `concurrency` transactions run at once (the resource's
`write_concurrency`, two by default: while one commits, the next executes). A deadlock, should one
occur, aborts one transaction with a transient error; it wrote nothing and is retried.

`client` is anything with the `Neo4jClient` methods (run, read, write, write_batches, log).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tv5_assets.graph_store import batches, cypher, model, offline_import
from tv5_assets.graph_store.offline_import import LocalServer
from tv5_assets.graph_store.rows import GraphRows


class GraphClient(Protocol):
    def run(self, query: str, parameters: dict[str, Any] | None = None) -> Any: ...
    def read(self, query: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...
    def write(self, query: str, parameters: dict[str, Any] | None = None) -> Any: ...
    def write_batches(self, query: str, batches: Any, what: str, total_rows: int, concurrency: int = 1) -> Any: ...
    def log(self, message: str) -> None: ...
    def verify(self, retries: int | None = None) -> Any: ...


class GraphLoadError(RuntimeError):
    """The graph did not end up holding exactly the rows it was given."""


@dataclass
class LoadReport:
    version: str
    skipped: bool
    counts: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)  # per phase and per label / type
    rows_per_s: dict[str, float] = field(default_factory=dict)  # per label / type
    retries: int = 0


@dataclass(frozen=True)
class LoadState:
    complete: bool
    version: str | None
    phase: str | None
    counts: dict[str, int]
    started_at: str | None
    finished_at: str | None


def read_load_state(client: GraphClient) -> LoadState | None:
    """The load marker, or None if the database has never been loaded."""
    records = client.read(cypher.READ_LOAD_STATE, {"key": model.LOAD_STATE_KEY})
    if not records:
        return None
    r = records[0]
    return LoadState(bool(r["complete"]), r["version"], r["phase"], json.loads(r["counts"] or "{}"),
                     r["started_at"], r["finished_at"])


def live_counts(client: GraphClient) -> dict[str, int]:
    """Nodes per label and relationships per type, as the database counts them now."""
    counts = {spec.label: client.read(cypher.count_nodes(spec))[0]["n"] for spec in model.NODES}
    for spec in model.RELATIONSHIPS:
        counts[spec.type] = client.read(cypher.count_relationships(spec))[0]["total"]
    return counts


def time_explanation(client: GraphClient, parameters: dict[str, Any], runs: int = 3) -> tuple[list[dict], list[float]]:
    """Run the explanation query `runs` times (at least once): (its records, each run's milliseconds).

    The check and the benchmark time it the same way; the first run may be cold, hence several."""
    found: list[dict] = []
    latencies: list[float] = []
    for _ in range(max(runs, 1)):
        started = time.perf_counter()
        found = client.read(cypher.EXPLANATION, parameters)
        latencies.append(1000 * (time.perf_counter() - started))
    return found, latencies


def clear_graph(client: GraphClient, batch_rows: int) -> None:
    """Delete every relationship, then every node but the load marker, in inner transactions."""
    client.run(cypher.CLEAR_RELATIONSHIPS, {"batch_rows": batch_rows})
    client.run(cypher.CLEAR_NODES, {"batch_rows": batch_rows})


def create_schema(client: GraphClient, timeout_s: int = 600) -> None:
    """Constraints and indexes (idempotent), then wait until all of them are online."""
    for statement in cypher.schema_statements():
        client.run(statement)
    client.run(cypher.AWAIT_INDEXES, {"timeout_s": timeout_s})


def _set_phase(client: GraphClient, phase: str) -> None:
    client.write(cypher.SET_PHASE, {"key": model.LOAD_STATE_KEY, "phase": phase})


def _already_loaded(client: GraphClient, expected: dict[str, int], version: str) -> dict[str, int] | None:
    """The live counts when the graph holds a complete load of `version` with exactly `expected`, else None.

    All three are needed: the marker says complete, its version is `version`, and the live counts equal
    the rows' counts (a graph edited by hand since is rebuilt)."""
    state = read_load_state(client)
    if state is not None and state.complete and state.version == version:
        counts = live_counts(client)
        if counts == expected:
            client.log(f"graph already holds the complete load {version}: nothing to do")
            return counts
        client.log(f"graph marked complete for {version} but its counts differ ({counts}): rebuilding")
    return None


def _verify_and_finish(client: GraphClient, report: LoadReport, expected: dict[str, int]) -> None:
    report.counts = live_counts(client)
    if report.counts != expected:
        differences = {k: {"expected": v, "loaded": report.counts.get(k)} for k, v in expected.items()
                       if report.counts.get(k) != v}
        raise GraphLoadError(f"the graph does not hold exactly the given rows (load left incomplete): {differences}")
    client.write(cypher.FINISH_LOAD, {"key": model.LOAD_STATE_KEY, "phase": "complete",
                                      "counts": json.dumps(report.counts, sort_keys=True)})


def import_graph(client: GraphClient, server: LocalServer, rows: GraphRows, version: str, work: Path,
                 force: bool = False) -> LoadReport:
    """Rebuild the local server's graph with the offline import tool (see `offline_import`).

    Same outcome as `load_graph`: the same nodes, relationships, schema and complete marker; a no-op on a
    complete load of `version`. The previous graph stays served until the swap, and is restored when the
    new one does not verify. A crash after the swap leaves the marker incomplete (set before the counts
    are compared), so the next run rebuilds."""
    expected = rows.counts()
    if not force and (counts := _already_loaded(client, expected, version)) is not None:
        return LoadReport(version, True, counts)
    report = LoadReport(version, False, {})
    t0 = time.perf_counter()
    staging = offline_import.build_staged_store(server, rows, work, client.log)
    report.seconds["import"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    offline_import.swap_in(server, staging, client.log)
    report.seconds["swap"] = time.perf_counter() - t1
    try:
        client.verify()
        client.write(cypher.START_LOAD, {"key": model.LOAD_STATE_KEY, "version": version, "phase": "imported"})
        t2 = time.perf_counter()
        create_schema(client)
        report.seconds["schema"] = time.perf_counter() - t2
        _verify_and_finish(client, report, expected)
    except BaseException:
        if offline_import.restore_previous(server, client.log):
            client.verify()
        raise
    offline_import.drop_previous(server)
    shutil.rmtree(work, ignore_errors=True)
    report.seconds["total"] = time.perf_counter() - t0
    report.rows_per_s["RATED"] = expected["RATED"] / max(report.seconds["import"], 1e-9)
    return report


def load_graph(client: GraphClient, rows: GraphRows, version: str, batch_rows: int = 50_000,
               clear_batch_rows: int = 100_000, force: bool = False, concurrency: int = 2) -> LoadReport:
    """Rebuild the graph from `rows` online (any server); a no-op when it already holds a complete load of
    `version` (see `_already_loaded`)."""
    expected = rows.counts()
    if not force and (counts := _already_loaded(client, expected, version)) is not None:
        return LoadReport(version, True, counts)

    report = LoadReport(version, False, {})
    t0 = time.perf_counter()
    client.write(cypher.START_LOAD, {"key": model.LOAD_STATE_KEY, "version": version, "phase": "clearing"})
    clear_graph(client, clear_batch_rows)
    report.seconds["clear"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    create_schema(client)
    report.seconds["schema"] = time.perf_counter() - t1

    _set_phase(client, "nodes")
    for spec in model.NODES:
        frame = rows.nodes[spec.label]
        stats = client.write_batches(cypher.create_nodes(spec), batches.node_batches(frame, spec, batch_rows),
                                     f":{spec.label} nodes", frame.height)
        _record(report, spec.label, stats)

    for spec in model.RELATIONSHIPS:
        _set_phase(client, f"relationships:{spec.type}")
        frame = rows.relationships[spec.type]
        stats = client.write_batches(cypher.create_relationships(spec),
                                     batches.relationship_batches(frame, spec, batch_rows),
                                     f":{spec.type} relationships", frame.height, concurrency=concurrency)
        _record(report, spec.type, stats)

    _verify_and_finish(client, report, expected)
    report.seconds["total"] = time.perf_counter() - t0
    return report


def _record(report: LoadReport, name: str, stats: Any) -> None:
    report.seconds[name] = stats.seconds
    report.rows_per_s[name] = stats.rows_per_s
    report.retries += stats.retries
