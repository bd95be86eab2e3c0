"""Writing the AgentDB file: AgentDB creates the schema, Python's sqlite3 bulk-loads the rows, rename publishes.

Why this path: AgentDB's own per-row API (LearningSystem.startSession / submitFeedback, sql.js in WASM)
costs seconds per hundred thousand rows and holds the whole database in memory; SQLite's C library
loads the same rows into the schema AgentDB wrote, at C speed, and AgentDB reads the result back (the
checks prove it through AgentDB's code).

Safety: the new database is built in a temporary file beside the target and renamed over it only when
complete, so a failed run leaves the previous file as it was. rename() swaps the name atomically: a
reader that opened (or, like sql.js, already loaded) the old file keeps reading the old inode, never a
half-written one. A file of 2 GiB or more is never published: sql.js refuses it and AgentDB would then
save an empty database over it.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from tv5_assets.agentdb import rows
from tv5_assets.agentdb.node import NodeRuntime

AGENTDB_MAX_BYTES = 2 * 1024**3  # sql.js (AgentDB's storage) refuses files from here on
BATCH_ROWS = 200_000
LOADED_TABLES = ("learning_sessions", "learning_experiences", "episodes", "episode_embeddings")


class OversizeError(RuntimeError):
    """The built database would be refused (or destroyed) by AgentDB."""


@dataclass(frozen=True)
class Contents:
    """Everything one database holds, as AgentDB's table rows; `vectors` aligned with `episodes.id`."""

    sessions: pl.DataFrame
    experiences: pl.DataFrame
    episodes: pl.DataFrame
    vectors: np.ndarray


@dataclass(frozen=True)
class Written:
    path: Path
    bytes: int
    tables: list[str]
    node_peak_rss_mib: int | None  # the Node process that created the schema


def _batches(frame: pl.DataFrame, columns: list[str]) -> Iterator[tuple]:
    for part in frame.select(columns).iter_slices(BATCH_ROWS):
        yield from part.iter_rows()


def _insert(conn: sqlite3.Connection, table: str, frame: pl.DataFrame, columns: list[str]) -> None:
    marks = ", ".join("?" * len(columns))
    conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", _batches(frame, columns))


def _embedding_rows(ids: np.ndarray, vectors: np.ndarray) -> Iterator[tuple[int, bytes]]:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    width = vectors.shape[1] * 4
    buffer = vectors.tobytes()
    for i, episode_id in enumerate(ids.tolist()):
        yield episode_id, buffer[i * width:(i + 1) * width]


def load_rows(database: Path, contents: Contents) -> None:
    """Bulk-insert `contents` into a database AgentDB created. Indexes are dropped and re-created with
    AgentDB's own DDL (read back from sqlite_master), so the schema stays AgentDB's while the load runs
    without index maintenance."""
    if contents.vectors.shape[0] != contents.episodes.height:
        raise ValueError(f"{contents.vectors.shape[0]} vectors for {contents.episodes.height} vector episodes")
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = OFF")  # a fresh private file: rename gives the atomicity
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -262144")
        marks = ", ".join("?" * len(LOADED_TABLES))
        indexes = conn.execute(f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                               f"AND tbl_name IN ({marks}) ORDER BY name", LOADED_TABLES).fetchall()
        conn.execute("BEGIN")
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        _insert(conn, "learning_sessions", contents.sessions, rows.SESSION_COLUMNS)
        _insert(conn, "learning_experiences", contents.experiences, rows.EXPERIENCE_COLUMNS)
        _insert(conn, "episodes", contents.episodes, rows.EPISODE_COLUMNS)
        conn.executemany("INSERT INTO episode_embeddings (episode_id, embedding) VALUES (?, ?)",
                         _embedding_rows(contents.episodes["id"].to_numpy(), contents.vectors))
        for _, sql in indexes:
            conn.execute(sql)
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = DELETE")
    finally:
        conn.close()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_database(target: Path, contents: Contents, node: NodeRuntime, max_bytes: int = AGENTDB_MAX_BYTES) -> Written:
    """Build the database in a temporary file beside `target` and rename it into place when complete.

    Raises OversizeError (publishing nothing) when the file reaches `max_bytes`.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    tmp = tmp_dir / target.name
    try:
        created = node.create(tmp)
        load_rows(tmp, contents)
        size = tmp.stat().st_size
        if size >= max_bytes:
            raise OversizeError(f"the AgentDB file would be {size:,} bytes, not under {max_bytes:,} (AgentDB's sql.js "
                                f"refuses 2 GiB and more): lower recent_steps_per_user; the previous file is kept")
        _fsync(tmp)
        os.replace(tmp, target)
        _fsync(target.parent)
        return Written(path=target, bytes=size, tables=list(created["tables"]),
                       node_peak_rss_mib=created.get("node_peak_rss_mib"))
    finally:
        tmp.unlink(missing_ok=True)
        tmp_dir.rmdir()
