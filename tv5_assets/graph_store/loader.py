"""Loading the graph into a release slot (see `slots`): exact, safe to re-run, never touching what readers see.

Order: mark the slot's load incomplete, clear the slot (should its random name meet a leftover; a served slot is
refused), create the constraints and indexes, CREATE the nodes under the slot's labels, then CREATE the
relationships with both endpoints found through the slot's uniqueness constraints' indexes, compare the slot's
counts with the rows, and only then mark the load complete. A load that stops anywhere (crash, kill, error)
leaves `complete = false`; the next run loads a new slot and the clean-up drops the half one, so it ends with
exactly the same graph as an uninterrupted one. Publishing the slot is `release`'s move (`slots.publish`), not the
load's.

Locks: Neo4j 5 takes the locks a new relationship needs at commit, in sorted order, and on a
dense node (more than 50 relationships: every popular film, most users) only at the insertion
point of its chain, not on the whole node. Relationship batches are cut on start-node boundaries
(one user's ratings in one transaction), so transactions in flight together never share a start
node; they do share end nodes (a film rated by 80,000 users), which the sorted, insertion-point
locking lets them write concurrently. `concurrency` transactions run at once (the resource's
`write_concurrency`, two by default: while one commits, the next executes). A deadlock, should one
occur, aborts one transaction with a transient error; it wrote nothing and is retried.

`client` is anything with the `Neo4jClient` methods (run, read, write, write_all, write_batches, log).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tv5_assets.core.releases import ensure_free_space
from tv5_assets.graph_store import batches, cypher, model, offline_import, slots, stages
from tv5_assets.graph_store.offline_import import LocalServer
from tv5_assets.graph_store.resources import Neo4jClient
from tv5_assets.graph_store.rows import GraphRows


class GraphClient(Protocol):
    def run(self, query: str, parameters: dict[str, Any] | None = None) -> Any: ...
    def read(self, query: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...
    def write(self, query: str, parameters: dict[str, Any] | None = None) -> Any: ...
    def write_all(self, statements: list[tuple[str, dict[str, Any]]]) -> Any: ...
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
    slot: str = ""  # the slot holding the load: in the live database (online) or a stage of its own (import)
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


def read_load_state(client: GraphClient, slot: str | None = None) -> LoadState | None:
    """The load marker of `slot` (None: of the served slot), or None if there is no such load."""
    slot = slot or slots.served_slot(client)
    if slot is None:
        return None
    records = client.read(cypher.READ_LOAD_STATE, {"key": slots.marker_key(slot)})
    if not records:
        return None
    r = records[0]
    return LoadState(bool(r["complete"]), r["version"], r["phase"], json.loads(r["counts"] or "{}"),
                     r["started_at"], r["finished_at"])


def live_counts(client: GraphClient, slot: str | None = None) -> dict[str, int]:
    """Nodes per label and relationships per type of `slot` (None: what readers are served), counted now."""
    counts = {spec.label: client.read(cypher.count_nodes(spec, slot))[0]["n"] for spec in model.NODES}
    for spec in model.RELATIONSHIPS:
        counts[spec.type] = client.read(cypher.count_relationships(spec, slot))[0]["total"]
    return counts


def time_explanation(client: GraphClient, parameters: dict[str, Any], runs: int = 3,
                     slot: str | None = None) -> tuple[list[dict], list[float]]:
    """Run the explanation query `runs` times (at least once): (its records, each run's milliseconds).

    The check and the benchmark time it the same way; the first run may be cold, hence several."""
    found: list[dict] = []
    latencies: list[float] = []
    for _ in range(max(runs, 1)):
        started = time.perf_counter()
        found = client.read(cypher.explanation(slot), parameters)
        latencies.append(1000 * (time.perf_counter() - started))
    return found, latencies


def create_schema(client: GraphClient, slot: str | None = None, timeout_s: int = 600) -> None:
    """Constraints and indexes, public and of `slot` (idempotent), then wait until all of them are online."""
    for statement in cypher.schema_statements(slot):
        client.run(statement)
    client.run(cypher.AWAIT_INDEXES, {"timeout_s": timeout_s})


def _set_phase(client: GraphClient, slot: str, phase: str) -> None:
    client.write(cypher.SET_PHASE, {"key": slots.marker_key(slot), "phase": phase})


def complete_slot(client: GraphClient, expected: dict[str, int], version: str) -> tuple[str, dict[str, int]] | None:
    """A slot holding a complete load of `version` with exactly `expected` (the served one first), else None.

    All three are needed: the marker says complete, its version is `version`, and the slot's counts equal the
    rows' counts (a slot edited by hand since is not reused)."""
    served = slots.served_slot(client)
    for slot in sorted(slots.existing(client), key=lambda s: s != served):
        state = read_load_state(client, slot)
        if state is not None and state.complete and state.version == version:
            counts = live_counts(client, slot)
            if counts == expected:
                client.log(f"graph slot {slot} already holds the complete load {version}: nothing to load")
                return slot, counts
            client.log(f"graph slot {slot} marked complete for {version} but its counts differ ({counts})")
    return None


def _verify_and_finish(client: GraphClient, report: LoadReport, expected: dict[str, int]) -> None:
    report.counts = live_counts(client, report.slot)
    if report.counts != expected:
        differences = {k: {"expected": v, "loaded": report.counts.get(k)} for k, v in expected.items()
                       if report.counts.get(k) != v}
        raise GraphLoadError(f"graph slot {report.slot} does not hold exactly the given rows (load left "
                             f"incomplete): {differences}")
    client.write(cypher.FINISH_LOAD, {"key": slots.marker_key(report.slot), "phase": "complete",
                                      "counts": json.dumps(report.counts, sort_keys=True)})


def import_graph(client: GraphClient, server: LocalServer, rows: GraphRows, version: str, root: Path,
                 password: str, force: bool = False) -> LoadReport:
    """Stage `rows` with the offline import tool as a store of its own (see `stages`), audited on its own server.

    Same graph as `load_graph`: the same nodes under a slot's labels, relationships, schema and complete marker,
    verified on the stage's audit server (left running for the checks); the live server is not touched. A no-op when
    the live database or a ready stage already holds a complete load of `version`."""
    expected = rows.counts()
    if not force:
        if (found := complete_slot(client, expected, version)) is not None:
            return LoadReport(version, True, found[1], slot=found[0])
        for stage in stages.existing(root).values():
            if (ready := stage.ready()) and ready["version"] == version and ready["counts"] == expected:
                client.log(f"graph stage {stage.slot} already holds the complete load {version}: nothing to import")
                return LoadReport(version, True, expected, slot=stage.slot)
    report = LoadReport(version, False, {}, slot=slots.new_slot(version))
    stage = stages.Stage(root, report.slot)
    ensure_free_space(root, stages.estimated_bytes(expected), f"the graph stage {report.slot}")
    t0 = time.perf_counter()
    offline_import.build_staged_store(server, rows, stage.dir, client.log, report.slot)
    report.seconds["import"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    connection = stage.serve(password, client.log)
    report.seconds["audit_server_start"] = time.perf_counter() - t1
    with Neo4jClient(connection.uri, connection.user, connection.password, log=client.log) as staged:
        staged.write(cypher.START_LOAD, {"key": slots.marker_key(report.slot), "version": version,
                                         "phase": "imported"})
        t2 = time.perf_counter()
        create_schema(staged, report.slot)
        report.seconds["schema"] = time.perf_counter() - t2
        _verify_and_finish(staged, report, expected)
    stage.mark_ready(version, report.counts)
    report.seconds["total"] = time.perf_counter() - t0
    report.rows_per_s["RATED"] = expected["RATED"] / max(report.seconds["import"], 1e-9)
    return report


def load_graph(client: GraphClient, rows: GraphRows, version: str, batch_rows: int = 50_000,
               clear_batch_rows: int = slots.DROP_BATCH_ROWS, force: bool = False, concurrency: int = 2) -> LoadReport:
    """Stage `rows` online (any server) in a new slot, beside the served graph; a no-op when a slot already holds a
    complete load of `version` (see `complete_slot`)."""
    expected = rows.counts()
    if not force and (found := complete_slot(client, expected, version)) is not None:
        create_schema(client, found[0])  # idempotent: an index dropped since is back before the audits
        return LoadReport(version, True, found[1], slot=found[0])
    report = LoadReport(version, False, {}, slot=slots.new_slot(version))
    t0 = time.perf_counter()
    client.write(cypher.START_LOAD, {"key": slots.marker_key(report.slot), "version": version, "phase": "clearing"})
    slots.clear(client, report.slot, clear_batch_rows)
    report.seconds["clear"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    create_schema(client, report.slot)
    report.seconds["schema"] = time.perf_counter() - t1

    _set_phase(client, report.slot, "nodes")
    for spec in model.NODES:
        frame = rows.nodes[spec.label]
        stats = client.write_batches(cypher.create_nodes(spec, report.slot),
                                     batches.node_batches(frame, spec, batch_rows), f":{spec.label} nodes",
                                     frame.height)
        _record(report, spec.label, stats)

    for spec in model.RELATIONSHIPS:
        _set_phase(client, report.slot, f"relationships:{spec.type}")
        frame = rows.relationships[spec.type]
        stats = client.write_batches(cypher.create_relationships(spec, report.slot),
                                     batches.relationship_batches(frame, spec, batch_rows),
                                     f":{spec.type} relationships", frame.height, concurrency=concurrency)
        _record(report, spec.type, stats)

    _verify_and_finish(client, report, expected)
    report.seconds["total"] = time.perf_counter() - t0
    return report


def discard_slots(client: GraphClient, keep: set[str], batch_rows: int, log: Callable[[str], None],
                  only: set[str] | None = None, stage_root: Path | None = None) -> list[str]:
    """Drop the slots neither served nor in `keep` (killed loads, stages never published, releases beyond the
    retention; `only`: just those), in the live database and under `stage_root`, and nodes a publish left with no
    label (or a store a swap replaced that served no slot); returns the dropped slots."""
    served = slots.served_slot(client)
    staged = stages.existing(stage_root) if stage_root else {}

    def doomed(slot: str) -> bool:
        return slot != served and slot not in keep and (only is None or slot in only)

    dropped = []
    for slot in sorted(s for s in slots.existing(client) if doomed(s)):
        log(f"graph: dropping slot {slot}: neither served, retained by a release, nor the latest stage")
        slots.drop(client, slot, batch_rows)
        dropped.append(slot)
    for slot in sorted(s for s in staged if doomed(s)):
        log(f"graph: removing stage {slot}: neither served, retained by a release, nor the latest stage")
        staged[slot].remove()
        dropped.append(slot)
    if only is None:
        slots.drop_unlabelled(client, batch_rows)
        if stage_root:
            shutil.rmtree(stage_root / "replaced", ignore_errors=True)
    return dropped


def _record(report: LoadReport, name: str, stats: Any) -> None:
    report.seconds[name] = stats.seconds
    report.rows_per_s[name] = stats.rows_per_s
    report.retries += stats.retries
