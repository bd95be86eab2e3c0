"""Benchmark: staging, auditing, publishing and rolling back the graph at ml-25m shape, with a reader polling.

Run: `flock /tmp/tv5-bench.lock python -m benchmarks.graph_release [--slice N]`.
Issue 25's figures for the graph, on the project's local Neo4j (`scripts/services`, as on the main job's defaults):
1. **Import path** (the asset's at >= 1M relationships): `import_graph` stages the release as a store of its own,
   audited on its own server: import, audit-server start, schema, counts (seconds each); then the graph checks'
   queries on that server (the audit's own seconds).
2. **Publish** by swap (`GraphSlot.switch`: public labels on the stage's server, live server stopped, stores moved,
   started) and **rollback** (the kept store swapped back), each timed, while a reader thread asks the live
   server for one title every 50 ms: its longest run of failed reads is the reader-visible downtime. Between
   the two, the replaced store is shelved (zstd, as `release` does with the previous release's store) and a
   second stage is imported so that three versions are on disk (served, shelved previous, staged); the rollback
   restores the shelved store first (timed apart), then swaps it in.
3. **Online path publish** at ml-25m's node counts: the nodes staged as a slot in the live database (no
   relationships: a publish moves labels on nodes only), then the publish transaction and the one back, each
   timed with the reader running: the window in which a reader may see both releases is that commit.
4. **Disk**: the live store, the previous release's shelved store and a staged one (three versions) against one
   release's store (the live store's own folders).
Peak memory: this process and each Neo4j JVM (RSS, sampled).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path

import dagster as dg
import psutil

from benchmarks.common import BENCH_DIR, ml25m_tables, report
from benchmarks.neo4j_load import stand_ins, user_slice
from tv5_assets import local_services
from tv5_assets.core import shelf
from tv5_assets.core.settings import Settings
from tv5_assets.graph_store import batches, cypher, model, rules, slots, stages
from tv5_assets.graph_store.loader import create_schema, import_graph, live_counts, time_explanation
from tv5_assets.graph_store.resources import Neo4jClient, Neo4jResource, project_local_server
from tv5_assets.graph_store.rows import graph_rows
from tv5_assets.release.pointers import GraphSlot

STAGES = BENCH_DIR / "neo4j-release-stages"


class Reader(threading.Thread):
    """Asks the live server for one Media title every `every_s`; records each answer's time and outcome."""

    def __init__(self, connection, every_s: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.connection, self.every_s, self.stop_at = connection, every_s, threading.Event()
        self.reads: list[tuple[float, bool, object]] = []

    def run(self) -> None:
        with Neo4jClient(self.connection.uri, self.connection.user, self.connection.password, max_retries=0,
                         connection_timeout_s=1) as client:
            while not self.stop_at.is_set():
                at = time.perf_counter()
                try:
                    answer = client.read("MATCH (m:Media {id: 1}) OPTIONAL MATCH (r:Release {key: 'graph'}) "
                                         "RETURN m.title AS title, r.slot AS slot")
                    self.reads.append((at, True, tuple(answer[0].values()) if answer else None))
                except Exception:  # noqa: BLE001 - a failed read is the figure
                    self.reads.append((at, False, None))
                time.sleep(self.every_s)

    def downtime(self, start: float, end: float) -> tuple[float, int, set]:
        """Longest run of failed reads between start and end (seconds), reads in it, and the answers seen."""
        window = [r for r in self.reads if start <= r[0] <= end + 30]
        longest, run_start = 0.0, None
        for at, ok, _ in window:
            if not ok and run_start is None:
                run_start = at
            if ok and run_start is not None:
                longest, run_start = max(longest, at - run_start), None
        return longest, len(window), {answer for _, ok, answer in window if ok}


class Peak(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peaks: dict[str, float] = {}
        self.stop_at = threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self.stop_at.is_set():
            samples = {"this process": me.memory_info().rss}
            for p in psutil.process_iter(["cmdline", "memory_info"]):
                line = " ".join(p.info["cmdline"] or [])
                if "tv5.Neo4jLauncher" in line:
                    samples["audit server" if "-stages" in line else "live server"] = p.info["memory_info"].rss
            for k, v in samples.items():
                self.peaks[k] = max(self.peaks.get(k, 0), v / 2**30)
            time.sleep(0.5)


def du(path: Path) -> int:
    """Bytes under `path` (a folder or one file)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def audit(client: Neo4jClient, slot: str, tables: dict, expected: dict[str, int]) -> dict[str, float]:
    """The graph checks' queries on `slot` (what the asset checks run), timed."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    loaded = live_counts(client, slot)
    assert rules.counts_match("node", list(expected), expected, loaded).passed, loaded
    seconds["counts"] = time.perf_counter() - started
    started = time.perf_counter()
    assert rules.schema_online(client.read(cypher.SHOW_SCHEMA), slot).passed
    seconds["schema"] = time.perf_counter() - started
    started = time.perf_counter()
    lazy = {k: v.lazy() for k, v in tables.items()}
    keys = rules.endpoint_keys(lazy["movies"], lazy["ratings"], lazy["genome"], lazy["availability"])
    relationship_counts = {s.type: client.read(cypher.count_relationships(s, slot))[0] for s in model.RELATIONSHIPS}
    missing = {s.label: client.read(cypher.missing_nodes(s, slot), {"keys": keys[s.label]})[0] for s in model.NODES}
    assert rules.endpoints_correct(relationship_counts, missing).passed
    seconds["endpoints"] = time.perf_counter() - started
    started = time.perf_counter()
    seed = client.read(cypher.explanation_seed(slot))[0]
    found, _ = time_explanation(client, {"media_id": seed["media_id"], "platform": "Netflix", "min_rating": 4.0,
                                         "max_users": 1000, "limit": 10}, slot=slot)
    seconds["explanation"] = time.perf_counter() - started
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slice", type=int, default=0, help="only the first N ratings, whole users (0: all)")
    args = parser.parse_args()
    tables = ml25m_tables()
    ratings = user_slice(tables["ratings"], args.slice) if args.slice else tables["ratings"]
    demographics, availability = stand_ins(ratings, tables["movies"])
    rows = graph_rows(tables["movies"], ratings, tables["genome"], demographics, availability)
    sources = {"movies": tables["movies"], "ratings": ratings, "genome": tables["genome"],
               "demographics": demographics, "availability": availability}
    expected = {s.label: rows.counts()[s.label] for s in model.NODES}
    version = rows.fingerprint(salt=cypher.statements_digest())

    local_services.start("neo4j")
    connection = local_services.ServiceSettings().neo4j_connection()
    resource = Neo4jResource(uri=connection.uri, user=connection.user, password=connection.password,
                             **project_local_server(Settings(neo4j_uri=connection.uri)))
    server = resource.local_server()
    root = stages.stages_root(resource.local_home)
    peak = Peak()
    peak.start()
    figures: list[tuple[str, str]] = [("rows", ", ".join(f"{k} {v:,}" for k, v in rows.counts().items()))]

    with dg.build_resources({"neo4j": resource}) as built:
        neo4j = built.neo4j
        client = neo4j.client
        pointer = GraphSlot(neo4j)
        # a served release to replace (the first run of this benchmark serves one afterwards in any case)
        if slots.served(client) is None:
            first = import_graph(client, server, rows, version + "-first", root, resource.password, force=True)
            pointer.switch(first.slot, "bench-first")
        served = slots.served(client)
        reader = Reader(connection)
        reader.start()

        staged = import_graph(client, server, rows, version, root, resource.password, force=True)
        stage = stages.Stage(root, staged.slot)
        figures.append(("import stage (import, audit server start, schema, counts)",
                        ", ".join(f"{k} {v:.1f} s" for k, v in staged.seconds.items())))
        connection_staged = stage.serve(resource.password, print)
        with Neo4jClient(connection_staged.uri, connection_staged.user, connection_staged.password) as audit_client:
            audit_s = audit(audit_client, staged.slot, sources, expected)
        figures.append(("audit on the stage's server (the graph checks' queries)",
                        ", ".join(f"{k} {v:.1f} s" for k, v in audit_s.items())
                        + f"; total {sum(audit_s.values()):.1f} s"))

        started = time.perf_counter()
        pointer.switch(staged.slot, "bench-publish")
        publish_s = time.perf_counter() - started
        swaps = [(started, started + publish_s)]
        down, reads, answers = reader.downtime(started, started + publish_s)
        figures.append(("publish (swap): switch time, reader-visible downtime",
                        f"{publish_s:.1f} s; longest failed-read run {down:.1f} s over {reads} reads; "
                        f"answers {sorted(map(str, answers))}"))

        # the previous release's store shelved, as `release` does after a publish
        kept = stages.Stage(root, served["slot"])
        before_shelf = du(kept.home)
        started = time.perf_counter()
        assert pointer.shelve(served["slot"])
        shelve_s = time.perf_counter() - started
        shelved = du(shelf.archive_of(kept.home))
        figures.append(("shelving the previous release's store (zstd level 3)",
                        f"{before_shelf / 2**30:.2f} GiB -> {shelved / 2**30:.2f} GiB in {shelve_s:.1f} s"))

        # three versions present: the served one, the previous release's shelved store, and a new stage
        another = import_graph(client, server, rows, version, root, resource.password, force=True)
        stages.Stage(root, another.slot).stop()
        one = du(server.home / "data" / "databases" / "neo4j") + du(server.home / "data" / "transactions" / "neo4j")
        three = one + du(kept.dir) + du(stages.Stage(root, another.slot).dir)  # this run's three, not leftovers
        figures.append(("disk: three versions (served, shelved previous, staged) vs one release's store",
                        f"{three / 2**30:.2f} GiB vs {one / 2**30:.2f} GiB: {three / max(one, 1):.2f}x"))

        started = time.perf_counter()
        shelf.restore(kept.home)  # what the rollback's switch does first (before the live server stops)
        restore_s = time.perf_counter() - started
        started = time.perf_counter()
        pointer.switch(served["slot"], "bench-rollback")
        rollback_s = time.perf_counter() - started
        swaps.append((started, started + rollback_s))
        down, reads, answers = reader.downtime(started, started + rollback_s)
        figures.append(("rollback (restore the shelved store, swap back): time, reader-visible downtime",
                        f"restore {restore_s:.1f} s + swap {rollback_s:.1f} s = {restore_s + rollback_s:.1f} s; "
                        f"longest failed-read run {down:.1f} s over {reads} reads"))
        for leftover in (another.slot, staged.slot):
            stages.Stage(root, leftover).remove()

        # the online path's publish at ml-25m node counts: nodes staged as a slot in the live database
        slot = slots.new_slot(version)
        create_schema(client, slot)
        client.write(cypher.START_LOAD, {"key": slots.marker_key(slot), "version": "bench-nodes", "phase": "nodes"})
        started = time.perf_counter()
        for spec in model.NODES:
            frame = rows.nodes[spec.label]
            client.write_batches(cypher.create_nodes(spec, slot), batches.node_batches(frame, spec, 50_000),
                                 f":{spec.label}", frame.height)
        nodes_s = time.perf_counter() - started
        publish_online, back_online = [], []
        for _ in range(2):
            started = time.perf_counter()
            slots.publish(client, slot, "bench-nodes", "bench-online")
            publish_online.append(time.perf_counter() - started)
            started = time.perf_counter()
            slots.publish(client, served["slot"], served["version"], "bench-online-back")
            back_online.append(time.perf_counter() - started)
        figures.append(("online slot: nodes staged (no relationships)", f"{sum(expected.values()):,} nodes in "
                        f"{nodes_s:.1f} s"))
        figures.append(("online publish transaction (the mixed-read window), and back",
                        f"{min(publish_online):.2f} s (runs {', '.join(f'{x:.2f}' for x in publish_online)}); "
                        f"back {min(back_online):.2f} s"))
        reader.stop_at.set()
        reader.join()
        failed = [at for at, ok, _ in reader.reads if not ok]
        during = [at for at in failed if any(start <= at <= end for start, end in swaps)]
        figures.append(("reader", f"{len(reader.reads)} reads, {len(failed)} failed, {len(during)} of them during "
                                  "the two swaps"))
        slots.drop(client, slot)
        assert slots.served(client)["slot"] == served["slot"] and live_counts(client)["RATED"] == rows.counts()["RATED"]
    peak.stop_at.set()
    peak.join()
    figures.append(("peak RSS", ", ".join(f"{k} {v:.2f} GiB" for k, v in peak.peaks.items())))
    figures.append(("load average at the end", " ".join(f"{x:.1f}" for x in os.getloadavg())))
    report(figures)


if __name__ == "__main__":
    main()
