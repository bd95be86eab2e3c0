"""What readers follow in each store, and how `release` moves it: one pointer per store.

Milvus: the collection's alias (one atomic alias change). AgentDB: the `data/agentdb.db` symbolic link (a new link
renamed over it: readers opening the path get the old file or the new one, never a mix). Neo4j: the graph's
release slot, the public labels moved in one transaction (graph_store.slots), or an import stage swapped in
(graph_store.stages). Each pointer says what it serves,
whether a version still exists, and switches to one, after marking that version with the release id (a Milvus
collection property, a row in the AgentDB file, the graph's `(:Release)` node): `release_of` reads that mark back
from what readers are served. A retained version that is not served is shelved (core.shelf: compressed beside
it) where that is possible without unloading it, and restored before it is served again.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tv5_assets.agentdb import marks as agentdb_marks
from tv5_assets.agentdb.assets import FILE_NAME, VERSIONS_DIR, served_version
from tv5_assets.core import shelf
from tv5_assets.core.lake import DataLake
from tv5_assets.graph_store import slots, stages
from tv5_assets.graph_store.loader import LoadState, read_load_state
from tv5_assets.graph_store.resources import Neo4jClient, Neo4jResource
from tv5_assets.vector_store import marks as milvus_marks
from tv5_assets.vector_store.resources import MilvusResource

SHELF = "shelf"  # AgentDB's shelved versions: a folder of its own, which the asset's clean-up leaves alone


class Pointer(Protocol):
    store: str

    def served(self) -> str | None: ...
    def release_of(self) -> str | None: ...
    def exists(self, version: str) -> bool: ...
    def switch(self, version: str, release_id: str = "") -> None: ...
    def shelve(self, version: str) -> bool: ...
    def discard(self, version: str) -> None: ...


@dataclass
class MilvusAlias:
    """`milvus/<alias>`: the alias readers search."""

    store: str
    milvus: MilvusResource

    @property
    def alias(self) -> str:
        return self.milvus.alias_name(self.store.split("/")[-1])

    def served(self) -> str | None:
        return self.milvus.alias_target(self.alias)

    def release_of(self) -> str | None:
        served = self.served()
        return milvus_marks.release_of(self.milvus, served) if served else None

    def exists(self, version: str) -> bool:
        return self.milvus.has_collection(version)

    def switch(self, version: str, release_id: str = "") -> None:
        self.milvus.ensure_searchable(version)  # a retained version is kept loaded; make sure before readers come
        if release_id:
            milvus_marks.mark_release(self.milvus, version, release_id)
        self.milvus.point_alias(self.alias, version)

    def shelve(self, version: str) -> bool:
        return False  # kept loaded: moving the alias back must never meet an unloaded collection

    def discard(self, version: str) -> None:
        # never the served one: Milvus 2.5.5+ refuses to drop a collection an alias names, 2.3.5 drops it and
        # leaves the alias dangling
        if self.served() != version and self.exists(version):
            self.milvus.drop_collection(version)


@dataclass
class AgentDBLink:
    """`agentdb`: the `data/agentdb.db` link into `data/agentdb.versions/`."""

    lake: DataLake
    store: str = "agentdb"

    @property
    def link(self) -> Path:
        return self.lake.path(FILE_NAME)

    def _file(self, version: str) -> Path:
        return self.lake.path(VERSIONS_DIR, version)

    @property
    def _shelf(self) -> Path:
        return self.lake.path(VERSIONS_DIR, SHELF)

    def served(self) -> str | None:
        return served_version(self.lake)

    def release_of(self) -> str | None:
        served = self.served()
        return agentdb_marks.release_of(self._file(served)) if served and self._file(served).is_file() else None

    def exists(self, version: str) -> bool:
        return self._file(version).is_file() or shelf.is_shelved(self._file(version), self._shelf)

    def switch(self, version: str, release_id: str = "") -> None:
        if not self._file(version).is_file() or shelf.is_shelved(self._file(version), self._shelf):
            shelf.restore(self._file(version), self._shelf)  # a file staged again beside its archive: archive gone
        if release_id:
            agentdb_marks.mark_release(self._file(version), release_id)
        self.link.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mktemp(prefix=f".{FILE_NAME}.", suffix=".link", dir=self.link.parent))
        os.symlink(Path(VERSIONS_DIR) / version, tmp)  # relative: the lake can move
        os.replace(tmp, self.link)
        shelf.fsync(self.link.parent)

    def shelve(self, version: str) -> bool:
        if self.served() == version or not self._file(version).is_file():
            return False
        shelf.shelve(self._file(version), self._shelf)
        return True

    def discard(self, version: str) -> None:
        if self.served() != version:
            self._file(version).unlink(missing_ok=True)
            shelf.discard(self._file(version), self._shelf)


@dataclass
class GraphSlot:
    """`graph`: the slot carrying the public labels, named by `(:Release {key: 'graph'})`; a slot in the live database
    (online load) is served by one relabelling transaction, an import stage by a store swap (graph_store.stages)."""

    neo4j: Neo4jResource
    store: str = "graph"

    def _stage(self, version: str) -> stages.Stage | None:
        return stages.Stage(stages.stages_root(self.neo4j.local_home), version) if self.neo4j.local_home else None

    def _in_live(self, version: str) -> LoadState | None:
        state = read_load_state(self.neo4j.client, version)
        return state if state is not None and state.complete else None

    def served(self) -> str | None:
        return slots.served_slot(self.neo4j.client)

    def release_of(self) -> str | None:
        record = slots.served(self.neo4j.client)
        return (record.get("release_id") or None) if record else None

    def exists(self, version: str) -> bool:
        stage = self._stage(version)
        if self._in_live(version) is not None:
            return True
        return stage is not None and (stage.ready() is not None
                                      or ((stage.dir / "ready").is_file() and shelf.is_shelved(stage.home)))

    def switch(self, version: str, release_id: str = "") -> None:
        client = self.neo4j.client
        if (state := self._in_live(version)) is not None:
            slots.publish(client, version, state.version or "", release_id)
            return
        stage, server = self._stage(version), self.neo4j.local_server()
        if stage is not None and shelf.is_shelved(stage.home):  # restored, or its archive dropped when built
            started = time.perf_counter()
            shelf.restore(stage.home)
            client.log(f"graph stage {version}: restored from its shelf in {time.perf_counter() - started:.1f} s")
        ready = stage.ready() if stage is not None else None
        if ready is None or server is None:
            raise RuntimeError(f"graph slot {version} holds no complete load, live or staged: it cannot be served")
        connection = stage.serve(self.neo4j.password, client.log)
        with Neo4jClient(connection.uri, connection.user, connection.password) as staged:
            slots.publish(staged, version, ready.get("version") or "", release_id)
        stages.swap_in(server, stage, slots.served(client), client.log)
        client.verify()

    def shelve(self, version: str) -> bool:
        """Compress a kept import stage (its audit server stopped); a slot in the live database stays as it is."""
        stage = self._stage(version)
        if self.served() == version or stage is None or stage.ready() is None:
            return False
        stage.stop()
        shelf.shelve(stage.home, records=stages.RECORD_FILES)
        return True

    def discard(self, version: str) -> None:
        if self.served() == version:
            return
        if version in slots.existing(self.neo4j.client):
            slots.drop(self.neo4j.client, version)
        if (stage := self._stage(version)) is not None and stage.dir.exists():
            stage.remove()
