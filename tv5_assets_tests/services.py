"""What the tests need on top of `tv5_assets.local_services` (which starts, stops and probes the services).

A plain module, not a conftest: import the helpers you need.

- ``neo4j_settings()`` / ``milvus_server_settings()``: how to reach the local servers (the package's
  settings: environment, then the repo's ``.env``).
- ``ensure_neo4j()`` / ``ensure_milvus_server()``: those settings once the service answers, starting it
  through the package if needed.
- ``kill_neo4j()`` (SIGKILL: a crash, no checkpoint) / ``restart_neo4j()`` for fault tests, plus
  ``stop_service()``.
- ``listening_sockets()`` / ``is_loopback()``: parse ``ss -ltnp`` to check that nothing of ours
  listens beyond loopback.
- ``clean_service_environment(monkeypatch)``: unset every variable of the services' settings (scripts/test
  exports the repo's ``.env``), so a test's private settings and ``.env`` are the only source.
- ``shared_tmp_dir()``: a temporary directory other OS users can traverse (PostgreSQL runs as its own
  unprivileged user; pytest's ``tmp_path`` is private to root).
- re-exported from the package: ``PrivateNeo4j``, ``free_port``, ``service_pid``, ``process_tree``,
  ``neo4j_answers``, ``ServiceError``, ``STATE_DIR``.

Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tv5_assets import local_services
from tv5_assets.local_services import STATE_DIR, PrivateNeo4j, ServiceError, free_port, neo4j_answers, process_tree
from tv5_assets.local_services import Neo4jConnection as Neo4jSettings
from tv5_assets.local_services import running_pid as service_pid

__all__ = ["STATE_DIR", "MilvusServerSettings", "Neo4jSettings", "PrivateNeo4j", "ServiceError",
           "clean_service_environment", "ensure_milvus_server", "ensure_neo4j", "free_port", "is_loopback",
           "kill_neo4j", "listening_sockets", "milvus_server_settings", "neo4j_answers", "neo4j_settings",
           "process_tree", "restart_neo4j", "service_pid", "shared_tmp_dir", "stop_service"]


@dataclass(frozen=True)
class MilvusServerSettings:
    uri: str


def neo4j_settings() -> Neo4jSettings:
    """Connection settings of the local Neo4j (password may be '' before the first start)."""
    return local_services.ServiceSettings().neo4j_connection()


def milvus_server_settings() -> MilvusServerSettings:
    """URI of the local Milvus standalone server (MILVUS_URI if it is a server URI, else the port)."""
    return MilvusServerSettings(uri=local_services.ServiceSettings().milvus_server_uri())


def ensure_neo4j() -> Neo4jSettings:
    """Settings of a Neo4j that answers; starts it (and builds the launcher) if needed."""
    settings = neo4j_settings()
    if neo4j_answers(settings):
        return settings
    local_services.start("neo4j")
    settings = neo4j_settings()  # a first start may just have written the password to .env
    if not neo4j_answers(settings, timeout=10):
        raise ServiceError(f"Neo4j started but does not answer at {settings.uri} with the configured password")
    return settings


def ensure_milvus_server() -> MilvusServerSettings:
    """Settings of a Milvus standalone server that answers; starts it if needed."""
    settings = milvus_server_settings()
    if local_services.milvus_answers(settings.uri):
        return settings
    local_services.start("milvus")
    settings = milvus_server_settings()
    if not local_services.milvus_answers(settings.uri, timeout=10):
        raise ServiceError(f"Milvus started but does not answer at {settings.uri}")
    return settings


def kill_neo4j(sig: int = signal.SIGKILL, timeout: float = 60) -> int:
    """Kill the running Neo4j server (default SIGKILL: a crash, no clean shutdown). Returns its pid.

    With SIGTERM the launcher's shutdown hook stops the DBMS cleanly instead.
    """
    pid = service_pid("neo4j")
    if pid is None:
        raise ServiceError("Neo4j is not running (no live pid in data/services/neo4j.pid)")
    os.kill(pid, sig)
    if not local_services.wait_gone(pid, timeout):
        raise ServiceError(f"Neo4j pid {pid} still alive {timeout} s after signal {sig}")
    return pid


def restart_neo4j() -> Neo4jSettings:
    """Start Neo4j again (after kill_neo4j, this includes crash recovery) and wait until it answers."""
    local_services.start("neo4j")
    return ensure_neo4j()


def stop_service(name: str = "all") -> None:
    """Stop cleanly through the package (SIGTERM, wait, SIGKILL)."""
    local_services.stop(name)


def clean_service_environment(monkeypatch) -> None:
    """Unset every variable the services' settings read (the environment would beat a test's `.env`)."""
    for name in local_services.ServiceSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


@contextmanager
def shared_tmp_dir(prefix: str = "tv5-test-") -> Iterator[Path]:
    """A temporary directory under /tmp that PostgreSQL's OS user can traverse (mode 0755), removed after."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        path.chmod(0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- sockets
@dataclass(frozen=True)
class Listener:
    address: str
    port: int
    processes: tuple[tuple[str, int], ...]  # (name, pid)


_USERS = re.compile(r'\("([^"]*)",pid=(\d+)')


def listening_sockets() -> list[Listener]:
    """TCP listeners of this network namespace, from ``ss -ltnpH``."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    result = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        local = parts[3]
        addr, _, port = local.rpartition(":")
        addr = addr.strip("[]").split("%", 1)[0]
        procs = tuple((m.group(1), int(m.group(2))) for m in _USERS.finditer(line))
        result.append(Listener(addr, int(port), procs))
    return result


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1 or an IPv4-mapped loopback (``::ffff:127.0.0.1``); ``*`` / ``0.0.0.0`` / ``::`` are not."""
    if address in ("*", ""):
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback
