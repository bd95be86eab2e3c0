"""Graph stages built by the import tool: a store of one slot beside the live server, audited on a Neo4j process of
its own, swapped in by `release`, and kept after it is replaced so a rollback can swap it back.

Why: `neo4j-admin database import full` writes a whole database, and Community serves one, so an imported release
cannot sit in the live database beside the served one (the online load's slots can). It is staged outside instead:

    <stages>/<slot>/home      a DBMS home: data/databases/neo4j and data/transactions/neo4j (the import's output)
    <stages>/<slot>/server.json   pid and Bolt port of its audit server while one runs (loopback only)
    <stages>/<slot>/ready     the load version and counts, written once its schema is online, its counts equal the
                              rows and its load marker says complete: only a ready stage can be published

The audit server is the project's launcher on the stage's home with a port of its own and the live server's
password; the graph's checks query it (`audited_client`). Publishing stops it, gives the slot the public labels
and `(:Release)` there, stops the live server, moves the live store into `<stages>/<served slot>/home` (ready:
the previous release, whole) and the stage's into the live home, and starts the live server: readers see no graph
for that restart, nothing else. A failed start puts the previous store back and starts it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tv5_assets.core.shelf import Records
from tv5_assets.graph_store import model, slots
from tv5_assets.graph_store.offline_import import STORE_DIRS, LocalServer
from tv5_assets.local_services.neo4j_server import LAUNCHER_DIR
from tv5_assets.local_services.neo4j_server import java_command as neo4j_java_command
from tv5_assets.local_services.probes import neo4j_answers
from tv5_assets.local_services.processes import free_port, is_alive, kill_group, spawn, wait_gone
from tv5_assets.local_services.settings import Neo4jConnection

AUDIT_HEAP = "2g"  # as the live server: publishing a stage relabels every node in one transaction
AUDIT_PAGECACHE = "512m"
AUDIT_TX_MEMORY = "1g"
# the audit server's own settings file: no preallocated transaction logs (Neo4j fills a new log file to its rotation
# size, 256 MiB, up front: the stage's system database took 258 MiB of zeros, an eighth of an ml-25m stage)
AUDIT_SETTINGS = {"db.tx_log.preallocate": "false"}

# the record files of Neo4j 5's store (Community's `aligned` format: fixed-size records, none across an 8 KiB page),
# by record size: a kept store is shelved with them transposed (core.shelf), 2.3x smaller than zstd alone at ml-25m
# shape (the relationship store 409 to 169 MiB, the property store 163 to 78 MiB); dynamic stores gain nothing
RECORD_FILES = {"neostore.nodestore.db": Records(15), "neostore.relationshipstore.db": Records(34),
                "neostore.propertystore.db": Records(41), "neostore.relationshipgroupstore.db": Records(25)}

# an imported store's size on disk, with its CSV files beside it while the tool runs (calibrated at ml-25m shape by
# benchmarks.graph_release); the disk check before an import uses it
BYTES_PER_RELATIONSHIP = 160
BYTES_PER_NODE = 400


def estimated_bytes(counts: dict[str, int]) -> int:
    """About how much disk an import stage of `counts` (nodes per label, relationships per type) takes."""
    nodes = sum(counts.get(spec.label, 0) for spec in model.NODES)
    relationships = sum(counts.get(spec.type, 0) for spec in model.RELATIONSHIPS)
    return nodes * BYTES_PER_NODE + relationships * BYTES_PER_RELATIONSHIP


class StageError(RuntimeError):
    """A stage is missing, not ready, or its audit server did not start."""


def stages_root(local_home: str | Path) -> Path:
    """Where the local server's import stages live: beside its home (same file system: moves are renames)."""
    home = Path(local_home)
    return home.parent / f"{home.name}-stages"


def _store_dirs(home: Path, database: str) -> list[Path]:
    return [home / "data" / kind / database for kind in STORE_DIRS]


@dataclass(frozen=True)
class Stage:
    root: Path
    slot: str
    database: str = "neo4j"

    @property
    def dir(self) -> Path:
        if not slots.SLOT.fullmatch(self.slot):
            raise ValueError(f"{self.slot!r} is not a graph slot name")
        return self.root / self.slot

    @property
    def home(self) -> Path:
        return self.dir / "home"

    def built(self) -> bool:
        return all(p.is_dir() for p in _store_dirs(self.home, self.database))

    def ready(self) -> dict | None:
        """The `ready` record (version, counts) of a built stage, else None."""
        try:
            return json.loads((self.dir / "ready").read_text()) if self.built() else None
        except (OSError, ValueError):
            return None

    def mark_ready(self, version: str, counts: dict[str, int]) -> None:
        (self.dir / "ready").write_text(json.dumps({"version": version, "counts": counts}, sort_keys=True))

    # ------------------------------------------------------------------ the audit server
    def _server(self) -> dict | None:
        try:
            record = json.loads((self.dir / "server.json").read_text())
        except (OSError, ValueError):
            return None
        return record if is_alive(int(record["pid"])) else None

    def serve(self, password: str, log: Callable[[str], None], timeout_s: float = 180) -> Neo4jConnection:
        """The stage's audit server (started when none runs): its connection."""
        if not self.built():
            raise StageError(f"graph stage {self.slot} holds no store at {self.home}")
        running = self._server()
        if running is not None:
            connection = Neo4jConnection(f"bolt://127.0.0.1:{running['port']}", "neo4j", password)
            if neo4j_answers(connection, timeout=5):
                return connection
            self.stop()
        port = free_port()
        settings = self.dir / "audit.conf"
        settings.write_text("".join(f"{key}={value}\n" for key, value in AUDIT_SETTINGS.items()))
        env = {**os.environ, "NEO4J_PASSWORD": password, "NEO4J_BOLT_HOST": "127.0.0.1",
               "NEO4J_BOLT_PORT": str(port), "NEO4J_PAGECACHE": AUDIT_PAGECACHE, "NEO4J_TX_MEMORY": AUDIT_TX_MEMORY,
               "NEO4J_CONF_FILE": str(settings.resolve())}
        started = time.perf_counter()
        pid = spawn(neo4j_java_command(self.home.resolve(), AUDIT_HEAP), LAUNCHER_DIR, env, self.dir / "server.log")
        (self.dir / "server.json").write_text(json.dumps({"pid": pid, "port": port}))
        connection = Neo4jConnection(f"bolt://127.0.0.1:{port}", "neo4j", password)
        deadline = time.monotonic() + timeout_s
        while not neo4j_answers(connection, timeout=2):
            if not is_alive(pid) or time.monotonic() > deadline:
                self.stop()
                tail = (self.dir / "server.log").read_text(errors="replace")[-2000:]
                raise StageError(f"the audit server of graph stage {self.slot} did not start: {tail}")
            time.sleep(0.5)
        log(f"graph stage {self.slot}: audit server on 127.0.0.1:{port} in {time.perf_counter() - started:.1f} s")
        return connection

    def stop(self, timeout_s: float = 120) -> None:
        """Stop the audit server (SIGTERM: a clean checkpoint), if one runs."""
        record = self._server()
        if record is not None:
            pid = int(record["pid"])
            kill_group(pid, signal.SIGTERM)
            if not wait_gone(pid, timeout_s):
                kill_group(pid)
        (self.dir / "server.json").unlink(missing_ok=True)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def existing(root: Path) -> dict[str, Stage]:
    """Every stage under `root` (built or not), by slot."""
    if not root.is_dir():
        return {}
    return {p.name: Stage(root, p.name) for p in sorted(root.iterdir()) if p.is_dir() and slots.SLOT.fullmatch(p.name)}


def swap_in(server: LocalServer, stage: Stage, served: dict | None, log: Callable[[str], None]) -> None:
    """Stop the live server, keep its store as the stage of the slot it served (`served`: its `(:Release)` record;
    `<stages>/replaced` when it served none), move `stage`'s store in and start; on any failure put the previous
    store back and start it."""
    if stage.ready() is None:
        raise StageError(f"graph stage {stage.slot} is not ready: it cannot be served")
    stage.stop()
    live = _store_dirs(server.home, server.database)
    served_slot = served["slot"] if served else None
    keep_home = Stage(stage.root, served_slot).home if served_slot else stage.root / "replaced" / "home"
    kept = _store_dirs(keep_home, server.database)
    staged = _store_dirs(stage.home, server.database)
    started = time.perf_counter()
    server.run_control("stop")
    moved: list[tuple[Path, Path]] = []
    try:
        for current, aside in zip(live, kept, strict=True):
            shutil.rmtree(aside, ignore_errors=True)
            if current.exists():
                aside.parent.mkdir(parents=True, exist_ok=True)
                current.rename(aside)
                moved.append((aside, current))
        for new, current in zip(staged, live, strict=True):
            current.parent.mkdir(parents=True, exist_ok=True)
            new.rename(current)
            moved.append((current, new))
        server.run_control("start")
    except BaseException:
        log(f"graph stage {stage.slot}: the swap failed; putting the previous store back")
        try:
            server.run_control("stop")
        except RuntimeError:
            pass
        for source, destination in reversed(moved):
            if source.exists():
                shutil.rmtree(destination, ignore_errors=True)
                source.rename(destination)
        server.run_control("start")
        raise
    if served_slot:  # the previous release, whole: ready to be swapped back
        Stage(stage.root, served_slot).mark_ready(served["version"], {})
    shutil.rmtree(stage.dir, ignore_errors=True)
    log(f"graph stage {stage.slot}: swapped in, the live server restarted in {time.perf_counter() - started:.1f} s")
