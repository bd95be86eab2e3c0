"""Which release an AgentDB file serves: a row in its own table, written by `release` before it moves the link.

Why a table of the project's own (`tv5_releases`), not one of AgentDB's: AgentDB never reads it, so a release row
cannot change what the audited tables say. One row per release that published the file; the latest names the
release it serves (a rollback writes its row again, with the new time).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from pathlib import Path

TABLE = "tv5_releases"


def mark_release(path: Path, release_id: str) -> None:
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db, db:
        db.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (release_id TEXT PRIMARY KEY, published_at TEXT NOT NULL)")
        db.execute(f"INSERT INTO {TABLE} VALUES (?, ?) ON CONFLICT (release_id) DO UPDATE SET "
                   "published_at = excluded.published_at",
                   (release_id, dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")))


def release_of(path: Path) -> str | None:
    """The release id last written to `path`, None when it has none."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        exists = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)).fetchone()
        if not exists:
            return None
        row = db.execute(f"SELECT release_id FROM {TABLE} ORDER BY published_at DESC LIMIT 1").fetchone()
    return row[0] if row else None
