"""What readers follow in each store, and how `release` moves it: one pointer per store.

Milvus: the collection's alias (one atomic alias change). AgentDB: the `data/agentdb.db` symbolic link (a new link
renamed over it: readers opening the path get the old file or the new one, never a mix). Neo4j: the graph's
release slot (see graph_store.slots). Each pointer says what it serves, whether a version still exists, and
switches to one.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tv5_assets.agentdb.assets import FILE_NAME, VERSIONS_DIR, served_version
from tv5_assets.core.lake import DataLake
from tv5_assets.graph_store import cypher, model
from tv5_assets.graph_store.resources import Neo4jResource
from tv5_assets.vector_store.resources import MilvusResource


class Pointer(Protocol):
    store: str

    def served(self) -> str | None: ...
    def exists(self, version: str) -> bool: ...
    def switch(self, version: str) -> None: ...
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

    def exists(self, version: str) -> bool:
        return self.milvus.has_collection(version)

    def switch(self, version: str) -> None:
        self.milvus.ensure_searchable(version)  # a retained version is kept loaded; make sure before readers come
        self.milvus.point_alias(self.alias, version)

    def discard(self, version: str) -> None:
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

    def served(self) -> str | None:
        return served_version(self.lake)

    def exists(self, version: str) -> bool:
        return self.lake.path(VERSIONS_DIR, version).is_file()

    def switch(self, version: str) -> None:
        self.link.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mktemp(prefix=f".{FILE_NAME}.", suffix=".link", dir=self.link.parent))
        os.symlink(Path(VERSIONS_DIR) / version, tmp)  # relative: the lake can move
        os.replace(tmp, self.link)
        directory = os.open(self.link.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def discard(self, version: str) -> None:
        if self.served() != version:
            self.lake.path(VERSIONS_DIR, version).unlink(missing_ok=True)


@dataclass
class GraphInPlace:
    """`graph`, loaded in place by its asset (not staged yet): the pointer is the load marker's version, which only
    the asset moves. `switch` cannot move it; it fails when the graph does not already hold the version."""

    neo4j: Neo4jResource
    store: str = "graph"

    def served(self) -> str | None:
        records = self.neo4j.read(cypher.READ_LOAD_STATE, {"key": model.LOAD_STATE_KEY})
        return records[0]["version"] if records and records[0]["complete"] else None

    def exists(self, version: str) -> bool:
        return self.served() == version

    def switch(self, version: str) -> None:
        if self.served() != version:
            raise RuntimeError(f"the graph holds load {self.served()}, not {version}, and is loaded in place: "
                               "re-materialize `graph`")

    def discard(self, version: str) -> None:
        """Nothing to drop: the graph keeps one version."""
