"""Milvus Lite's server in a process of its own (no Dagster here).

Milvus Lite 3 is pure Python: opened from a `.db` path, pymilvus asks `milvus_lite.server_manager` for a server
and gets gRPC threads in the calling process, and every request they serve (pk lookups, record (de)coding,
validation, one row at a time) then holds that process's GIL beside the run's own threads: the graph's driver,
AgentDB's writer, polars. A 100,000-rating day's two user collections cost ~20 s of it (docs/days.md, session
22). `install()` (called by the `daily` job's executor, before any resource opens Lite) puts a manager in its
place whose servers are child processes (`python -m tv5_assets.vector_store.hosting <data dir>`), so the same
server runs beside the run, not inside it; a Milvus server URI is untouched. A child costs ~1 s to start (Python
importing pymilvus and milvus_lite), so the step processes of multiprocess runs, which have no threads to share
their GIL with, keep Lite in-process. It replaces the library's module-level manager, the one hook pymilvus
offers for `.db` URIs (it looks the manager up on each connect), rather than copying pymilvus's connection code.

The child opens the data directory (taking Lite's lock), prints `port <n>` once it listens on 127.0.0.1, and
serves until its stdin closes: the parent closes it to stop it, and a parent that dies closes it too, so a
killed run never leaves the lock held. Then it stops the server and closes the database (Lite flushes its
memtable and indexes the new segments), and exits.
"""

from __future__ import annotations

import logging
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass

from milvus_lite import server_manager

READY_PREFIX = "port "
START_TIMEOUT_S = 120.0
STOP_GRACE_S = 5.0
LOG = logging.getLogger(__name__)


@dataclass
class LiteProcess:
    """A running Lite server process and its port on 127.0.0.1."""

    process: subprocess.Popen
    port: int

    def stop(self) -> int:
        """Close its stdin (it stops serving, flushes and closes the database) and wait for it to exit."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        return self.process.wait()


def start(data_dir: str, timeout_s: float = START_TIMEOUT_S) -> LiteProcess | None:
    """Start the server for `data_dir` and wait until it listens; None if it exits first (its lock is held
    elsewhere, or it failed: its stderr is the parent's) or does not listen within `timeout_s`."""
    process = subprocess.Popen([sys.executable, "-m", __name__, data_dir], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([process.stdout], [], [], left)
        line = process.stdout.readline() if ready else ""
        if line.startswith(READY_PREFIX):
            process.stdout.close()
            return LiteProcess(process, int(line[len(READY_PREFIX):]))
        if ready and not line:  # EOF: it exited
            break
    process.kill()
    process.wait()
    return None


class ProcessServerManager(server_manager.ServerManager):
    """`milvus_lite.server_manager.ServerManager` whose servers are child processes (one per data directory)."""

    def start_and_get_uri(self, path: str, args: dict | None = None) -> str | None:
        abs_path = os.path.abspath(path)
        with self._lock:
            if abs_path in self._servers:
                return f"http://127.0.0.1:{self._servers[abs_path].port}"
            served = start(abs_path)
            if served is None:
                return None  # as the in-process manager answers a failed open: pymilvus raises
            self._servers[abs_path] = served
        LOG.info("Milvus Lite server process %d serves %s on port %d", served.process.pid, abs_path, served.port)
        return f"http://127.0.0.1:{served.port}"

    def release_server(self, path: str) -> None:
        with self._lock:
            served = self._servers.pop(os.path.abspath(path), None)
        if served is not None and (code := served.stop()) != 0:
            LOG.warning("Milvus Lite server process %d for %s exited with code %s (its stderr says why)",
                        served.process.pid, path, code)


def install() -> None:
    """Serve every Milvus Lite file this process opens from then on from a child process."""
    if not isinstance(server_manager.server_manager_instance, ProcessServerManager):
        server_manager.server_manager_instance = ProcessServerManager()


def uninstall() -> None:
    """Back to pymilvus's in-process servers (tests that run a day then other work in one process); refused while
    a child serves a file (its resource would ask the wrong manager to stop it)."""
    manager = server_manager.server_manager_instance
    if isinstance(manager, ProcessServerManager):
        if open_files := sorted(manager._servers):  # noqa: SLF001 - our own subclass's state
            raise RuntimeError(f"Milvus Lite still served from child processes for {open_files}")
        server_manager.server_manager_instance = server_manager.ServerManager()


def serve(data_dir: str) -> int:
    """Serve `data_dir` until stdin closes (see the module docstring)."""
    from milvus_lite.adapter.grpc.server import start_server_in_thread

    server, db, port = start_server_in_thread(data_dir=data_dir, host="127.0.0.1", port=0)
    print(f"{READY_PREFIX}{port}", flush=True)
    sys.stdout = sys.stderr  # nothing more goes to the pipe the parent stopped reading
    try:
        sys.stdin.read()  # returns at EOF: the parent closed the pipe, or died
    finally:
        server.stop(grace=STOP_GRACE_S).wait()
        db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(serve(sys.argv[1]))
