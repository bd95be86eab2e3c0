"""Shelving kept versions (core.shelf) and the AgentDB pointer's use of it: compressed, restored byte for byte,
safe to repeat after a kill at any point, and marked with the release id it is served for."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from tv5_assets.agentdb import marks
from tv5_assets.core import shelf
from tv5_assets.core.lake import DataLake
from tv5_assets.release.pointers import AgentDBLink


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _store(path: Path) -> Path:
    """A folder shaped like a Neo4j store: record files of repeated structure, a sparse one, a nested folder."""
    rng = np.random.default_rng(7)
    (path / "databases" / "neo4j").mkdir(parents=True)
    (path / "transactions" / "neo4j").mkdir(parents=True)
    records = np.repeat(rng.integers(0, 2**20, 50_000, dtype=np.int64), 4)
    (path / "databases" / "neo4j" / "neostore.relationshipstore.db").write_bytes(records.tobytes())
    (path / "transactions" / "neo4j" / "neostore.transaction.db.0").write_bytes(bytes(1 << 20))
    (path / "databases" / "neo4j" / "empty").write_bytes(b"")
    return path


def test_a_folder_is_shelved_smaller_and_restored_byte_for_byte(tmp_path: Path) -> None:
    home = _store(tmp_path / "home")
    before = _tree(home)
    size = sum((home / name).stat().st_size for name in before)
    archive = shelf.shelve(home)
    assert archive == tmp_path / "home.tar.zst" and not home.exists() and shelf.is_shelved(home)
    assert archive.stat().st_size < size / 2
    assert shelf.shelve(home) == archive  # again: nothing to do
    shelf.restore(home)
    assert _tree(home) == before and not archive.exists()
    assert shelf.restore(home) == home  # again: nothing to do


def test_a_shelve_killed_after_its_rename_is_finished_and_a_partial_archive_is_redone(tmp_path: Path) -> None:
    home = _store(tmp_path / "home")
    before = _tree(home)
    archive = shelf.shelve(home)
    shelf.restore(home)
    # killed mid-write: a partial archive, the original whole; the next shelve writes the archive again
    shelf.archive_of(home).with_name("home.tar.zst.partial").write_bytes(b"\x28\xb5\x2f")
    shelf.shelve(home)
    shelf.restore(home)
    assert _tree(home) == before
    # killed after the rename, before the original was removed: both there; restore keeps the original
    shelf.shelve(home)
    archive_bytes = archive.read_bytes()
    shelf.restore(home)
    archive.write_bytes(archive_bytes)
    shelf.restore(home)
    assert _tree(home) == before and not archive.exists()


def test_nothing_to_shelve_or_restore_is_an_error_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing to shelve"):
        shelf.shelve(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="neither there nor shelved"):
        shelf.restore(tmp_path / "absent")


def _agentdb_file(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE learning_sessions (id TEXT PRIMARY KEY, metadata TEXT)")
        db.executemany("INSERT INTO learning_sessions VALUES (?, ?)", [(f"user-{i}", "{}") for i in range(rows)])


def test_the_agentdb_link_marks_shelves_and_restores_versions(tmp_path: Path) -> None:
    lake = DataLake(base_dir=str(tmp_path))
    link = AgentDBLink(lake)
    first, second = "agentdb.1111111111111111.db", "agentdb.2222222222222222.db"
    _agentdb_file(tmp_path / "agentdb.versions" / first, 100)
    _agentdb_file(tmp_path / "agentdb.versions" / second, 200)
    assert link.release_of() is None
    link.switch(first, "r1")
    assert (link.served(), link.release_of()) == (first, "r1")
    link.switch(second, "r2")
    assert (link.served(), link.release_of()) == (second, "r2")
    assert not link.shelve(second)  # the served file is never shelved
    assert link.shelve(first) and not (tmp_path / "agentdb.versions" / first).exists() and link.exists(first)
    link.switch(first, "r1")  # a rollback: restored, marked again
    assert (link.served(), link.release_of()) == (first, "r1")
    with sqlite3.connect(tmp_path / "agentdb.db") as db:
        assert db.execute("SELECT count(*) FROM learning_sessions").fetchone()[0] == 100
    assert marks.release_of(tmp_path / "agentdb.versions" / second) == "r2"
    assert link.shelve(second)
    link.discard(second)
    assert not link.exists(second) and not list((tmp_path / "agentdb.versions" / "shelf").iterdir())


def test_a_file_staged_again_beside_its_archive_leaves_no_archive_once_served(tmp_path: Path) -> None:
    """The asset writes a shelved version's file again when the same rows come back; serving it drops the archive."""
    lake = DataLake(base_dir=str(tmp_path))
    link = AgentDBLink(lake)
    first, second = "agentdb.1111111111111111.db", "agentdb.2222222222222222.db"
    for name in (first, second):
        _agentdb_file(tmp_path / "agentdb.versions" / name, 10)
    link.switch(first, "r1")
    link.switch(second, "r2")
    assert link.shelve(first)
    _agentdb_file(tmp_path / "agentdb.versions" / first, 10)  # staged again: the same rows
    link.switch(first, "r3")
    assert (link.served(), link.release_of()) == (first, "r3")
    assert not (tmp_path / "agentdb.versions" / "shelf" / f"{first}.tar.zst").exists()


def _record_file(path: Path, pages: int, tail: int) -> Path:
    """A Neo4j-like record file: 41-byte records (a flag, two running pointers, a small value, a timestamp) packed
    199 to an 8 KiB page with the page's last 33 bytes padding, then `tail` bytes of a partial page."""
    rng = np.random.default_rng(11)
    count = pages * 199
    ids = np.arange(count, dtype=">u4")
    fields = [np.ones((count, 1), np.uint8), (ids - 1).view(np.uint8).reshape(count, 4),
              (ids + 1).view(np.uint8).reshape(count, 4), np.zeros((count, 8), np.uint8),
              rng.integers(1, 11, (count, 1), dtype=np.uint8),
              (1_500_000_000 + rng.integers(0, 10**8, count)).astype(">i8").view(np.uint8).reshape(count, 8),
              np.zeros((count, 15), np.uint8)]
    records = np.hstack(fields).reshape(pages, 199 * 41)
    grid = np.hstack([records, np.zeros((pages, 33), np.uint8)])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(grid.tobytes() + rng.integers(0, 256, tail, dtype=np.uint8).tobytes())
    return path


@pytest.mark.parametrize("pages", [0, 1, 5, shelf.CHUNK_PAGES + 3])
def test_a_transposition_is_undone_exactly_for_any_whole_pages(pages: int) -> None:
    block = np.random.default_rng(pages).integers(0, 256, pages * 8192, dtype=np.uint8).tobytes()
    layout = shelf.Records(41)
    moved = shelf.transpose(block, layout).tobytes()
    assert len(moved) == len(block) and (pages == 0 or moved != block)
    assert shelf.transpose(moved, layout, inverse=True).tobytes() == block


def test_record_files_are_shelved_transposed_smaller_and_restored_byte_for_byte(tmp_path: Path) -> None:
    layouts = {"neostore.propertystore.db": shelf.Records(41)}
    sizes = {}
    for transposed in (False, True):
        home = tmp_path / f"home-{transposed}"
        # more than one transposed chunk, a partial last page; a file shorter than a page; a file not in `layouts`
        _record_file(home / "databases" / "neostore.propertystore.db", shelf.CHUNK_PAGES + 7, 1000)
        _record_file(home / "databases" / "small" / "neostore.propertystore.db", 0, 500)
        _record_file(home / "databases" / "neostore.relationshipstore.db", 40, 0)
        before = _tree(home)
        sizes[transposed] = shelf.shelve(home, records=layouts if transposed else None).stat().st_size
        shelf.restore(home)
        assert _tree(home) == before
    assert sizes[True] < sizes[False] * 0.5, sizes
