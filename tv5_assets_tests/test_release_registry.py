"""The release registry and the journal's recovery rule, on real files: AgentDB's link (`data/agentdb.db`) is a
real pointer moved by real renames; the Milvus and Neo4j pointers are exercised in test_release_gate."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tv5_assets.agentdb import marks
from tv5_assets.core.lake import DataLake
from tv5_assets.core.releases import Registry
from tv5_assets.release.pointers import AgentDBLink
from tv5_assets.release.publish import PublishError, publish, publisher_lock, recover

REPO = Path(__file__).resolve().parents[1]


def _lake(tmp_path: Path, *versions: str) -> DataLake:
    lake = DataLake(base_dir=str(tmp_path))
    folder = lake.path("agentdb.versions")
    folder.mkdir(parents=True)
    for version in versions:  # a SQLite file that names itself (release marks it with the release id)
        with contextlib.closing(sqlite3.connect(folder / version)) as db, db:
            db.execute("CREATE TABLE version (name TEXT)")
            db.execute("INSERT INTO version VALUES (?)", (version,))
    return lake


def _version_in(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT name FROM version").fetchone()[0]


def test_history_retention_and_rollback_keep_what_can_be_served_again(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    for release_id, version in (("r1", "a1"), ("r2", "a2"), ("r3", "a3")):
        registry.save_manifest({"release_id": release_id, "stores": {"agentdb": {"version": version}}})
        registry.mark_served(release_id)
    assert registry.history() == ["r1", "r2", "r3"] and registry.previous_id() == "r2"
    assert registry.retained_ids(keep_previous=1) == ["r2", "r3"]
    assert registry.retained_versions("agentdb") == {"a2", "a3"}
    registry.mark_served("r2")  # a rollback: r3 stays retained (it can be served again)
    assert registry.previous_id() == "r1" and registry.retained_ids(1) == ["r1", "r2", "r3"]
    registry.save_manifest({"release_id": "r4", "stores": {"agentdb": {"version": "a4"}}})
    registry.mark_served("r4")  # a new release after the rollback replaces r3 in the history
    assert registry.history() == ["r1", "r2", "r4"] and registry.previous_id() == "r2"
    registry.forget(["r1"])
    assert registry.history() == ["r2", "r4"] and not (tmp_path / "r1.json").exists()


def test_publish_moves_the_link_reads_it_back_and_clears_the_journal(tmp_path: Path) -> None:
    lake = _lake(tmp_path, "agentdb.aaaa.db", "agentdb.bbbb.db")
    registry, link = Registry.in_lake(tmp_path), AgentDBLink(lake)
    publish(registry, [link], "r1", {"agentdb": "agentdb.aaaa.db"}, print)
    assert link.served() == "agentdb.aaaa.db" and _version_in(tmp_path / "agentdb.db") == "agentdb.aaaa.db"
    assert os.readlink(tmp_path / "agentdb.db") == "agentdb.versions/agentdb.aaaa.db"  # relative: the lake can move
    switched = publish(registry, [link], "r2", {"agentdb": "agentdb.bbbb.db"}, print)
    assert registry.served_id() == "r2" and registry.journal() is None and switched.seconds["agentdb"] >= 0
    assert link.release_of() == "r2"  # read back from the file itself
    assert publish(registry, [link], "r2", {"agentdb": "agentdb.bbbb.db"}, print).seconds == {}  # nothing to move


def test_a_pointer_that_does_not_read_back_fails_the_publish_and_keeps_the_journal(tmp_path: Path) -> None:
    lake = _lake(tmp_path, "agentdb.aaaa.db")
    registry, link = Registry.in_lake(tmp_path), AgentDBLink(lake)

    def tamper(store: str) -> None:  # another hand moves the link right after the switch
        os.replace(tmp_path / "agentdb.db", tmp_path / "moved")

    with pytest.raises(PublishError, match="do not serve r1"):
        publish(registry, [link], "r1", {"agentdb": "agentdb.aaaa.db"}, print, after_switch=tamper)
    assert registry.journal() is not None and registry.served_id() is None


def test_a_store_marked_with_another_release_id_fails_the_publish(tmp_path: Path) -> None:
    lake = _lake(tmp_path, "agentdb.aaaa.db")
    registry, link = Registry.in_lake(tmp_path), AgentDBLink(lake)

    def remark(store: str) -> None:  # the right file is served, but it says another release
        marks.mark_release(tmp_path / "agentdb.versions" / "agentdb.aaaa.db", "r-other")

    with pytest.raises(PublishError, match="'marked': 'r-other'"):
        publish(registry, [link], "r1", {"agentdb": "agentdb.aaaa.db"}, print, after_switch=remark)
    assert registry.journal() is not None and registry.served_id() is None


def test_recovery_goes_forward_when_every_target_exists_and_back_when_one_is_gone(tmp_path: Path) -> None:
    lake = _lake(tmp_path, "agentdb.aaaa.db", "agentdb.bbbb.db")
    registry, link = Registry.in_lake(tmp_path), AgentDBLink(lake)
    publish(registry, [link], "r1", {"agentdb": "agentdb.aaaa.db"}, print)
    killed = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import os, signal, sys
        from tv5_assets.core.lake import DataLake
        from tv5_assets.core.releases import Registry
        from tv5_assets.release.pointers import AgentDBLink
        from tv5_assets.release.publish import publish
        publish(Registry.in_lake(sys.argv[1]), [AgentDBLink(DataLake(base_dir=sys.argv[1]))], "r2",
                {"agentdb": "agentdb.bbbb.db"}, print, after_switch=lambda _: os.kill(os.getpid(), signal.SIGKILL))
    """), str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert registry.journal()["release_id"] == "r2" and registry.served_id() == "r1"  # switched, not recorded
    assert recover(registry, [link], print) == "forward to r2"
    assert registry.served_id() == "r2" and link.served() == "agentdb.bbbb.db" and registry.journal() is None

    # the same crash, but the staged version vanished before the recovery: back to what was served
    registry.write_journal({"release_id": "r3", "previous_release": "r2", "order": ["agentdb"],
                            "from": {"agentdb": "agentdb.bbbb.db"}, "to": {"agentdb": "agentdb.cccc.db"}})
    assert recover(registry, [link], print) == "back to r2"
    assert link.served() == "agentdb.bbbb.db" and registry.served_id() == "r2" and registry.journal() is None


def test_a_version_that_would_not_fit_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    import shutil as disk

    from tv5_assets.core.releases import InsufficientDiskError, ensure_free_space
    assert ensure_free_space(tmp_path / "agentdb.versions", 1 << 20, "a small file") > 1 << 20  # folder not there yet
    free = disk.disk_usage(tmp_path).free
    with pytest.raises(InsufficientDiskError, match=r"staging the AgentDB file x\.db needs about .* MiB in .*only"):
        ensure_free_space(tmp_path / "agentdb.versions", free, "the AgentDB file x.db")


def test_a_second_publisher_waits_for_the_first_to_finish(tmp_path: Path) -> None:
    registry = Registry.in_lake(tmp_path)
    registry.root.mkdir(parents=True)
    # another process holds the lock file as publisher_lock takes it (an exclusive flock; no imports: a quick start)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import fcntl, sys, time
        with open(sys.argv[1], "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            print("held", flush=True)
            time.sleep(2)
    """), str(registry.root / "publish.lock")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    said: list[str] = []
    started = time.monotonic()
    with publisher_lock(registry, said.append):
        waited = time.monotonic() - started  # the first held it 2 s from "held" on
    holder.wait(timeout=30)
    assert said == ["another publish or rollback is running: waiting for it"] and waited > 1.5, waited
    with pytest.raises(TimeoutError, match="stayed held"), publisher_lock(registry, print):
        with publisher_lock(Registry.in_lake(tmp_path), print, wait_s=0.2):
            pass
