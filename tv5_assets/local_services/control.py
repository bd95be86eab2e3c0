"""start / stop / restart / status of the local services: the one implementation behind `scripts/services`.

Semantics kept from the original bash script: `start` writes `.env` (password, client keys), builds
the Neo4j launcher when needed, refuses a port some other process holds, and returns only once the
service answers (on failure: the log's tail, and the half-started service stopped); `stop` sends
SIGTERM, waits SERVICES_STOP_TIMEOUT, then SIGKILLs the process group. Starts and stops take a lock
(data/services/lock) so two callers never race on the same pid file.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tv5_assets.local_services import milvus_server, neo4j_server
from tv5_assets.local_services.errors import ServiceError
from tv5_assets.local_services.probes import wait_ready
from tv5_assets.local_services.processes import (
    kill_group,
    log_file,
    pid_file,
    port_busy,
    rss_mib,
    running_pid,
    wait_gone,
)
from tv5_assets.local_services.settings import ENV_FILE, SERVICES, STATE_DIR, ServiceSettings, ensure_env_file

LOCK_TIMEOUT_S = 900
_PORT_VARIABLE = {"neo4j": "NEO4J_BOLT_PORT", "milvus": "MILVUS_PORT"}
_held_locks: set[Path] = set()


def say(message: str) -> None:
    print(f"services: {message}", flush=True)


def targets(what: str) -> tuple[str, ...]:
    """'all' or one service name, as a tuple of names."""
    if what == "all":
        return SERVICES
    if what in SERVICES:
        return (what,)
    raise ValueError(f"unknown service {what!r}: neo4j, milvus or all")


@contextmanager
def exclusive(state_dir: Path = STATE_DIR, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """One start/stop at a time per state directory (re-entrant within this process)."""
    path = state_dir / "lock"
    if path in _held_locks:
        yield
        return
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:  # not inherited by the services: Python opens fds non-inheritable
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ServiceError(f"another scripts/services is still running (lock {path})") from None
                time.sleep(0.2)
        _held_locks.add(path)
        try:
            yield
        finally:
            _held_locks.discard(path)
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    port: int
    pid: int | None  # None: not started by this package
    answering: bool
    port_in_use: bool = False  # when pid is None: does some other process hold the port?
    rss_mib: float = 0.0

    def describe(self) -> str:
        where = f"127.0.0.1:{self.port}"
        if self.pid is None:
            if self.port_in_use:
                return f"{self.name}: not started by this script, but {where} is in use by another process"
            return f"{self.name}: stopped"
        if self.answering:
            return f"{self.name}: running, answering on {where} (pid {self.pid}, RSS {self.rss_mib:.0f} MiB)"
        return f"{self.name}: running (pid {self.pid}) but not answering on {where}"


def status(what: str = "all", settings: ServiceSettings | None = None, *,
           state_dir: Path = STATE_DIR) -> list[ServiceStatus]:
    """The state of each asked-for service (a running one is probed for 5 s at most)."""
    settings = settings or ServiceSettings()
    result = []
    for name in targets(what):
        port, pid = settings.port(name), running_pid(name, state_dir)
        if pid is None:
            result.append(ServiceStatus(name, port, None, False, port_busy(port)))
            continue
        answering = wait_ready(name, settings, 5, pid) is None
        result.append(ServiceStatus(name, port, pid, answering, rss_mib=rss_mib(pid) if answering else 0.0))
    return result


def start(what: str = "all", settings: ServiceSettings | None = None, *, env_file: Path = ENV_FILE,
          state_dir: Path = STATE_DIR, out: Callable[[str], None] = say) -> None:
    """Start each asked-for service unless it already answers; return once all answer."""
    with exclusive(state_dir):
        settings = ensure_env_file(settings or ServiceSettings(_env_file=env_file), env_file, out)
        for name in targets(what):
            _start_one(name, settings, state_dir, out)


def stop(what: str = "all", settings: ServiceSettings | None = None, *, state_dir: Path = STATE_DIR,
         out: Callable[[str], None] = say) -> None:
    """Stop each asked-for service: SIGTERM, wait, then SIGKILL."""
    with exclusive(state_dir):
        settings = settings or ServiceSettings()
        for name in targets(what):
            _stop_one(name, settings, state_dir, out)


def restart(what: str = "all", settings: ServiceSettings | None = None, *, env_file: Path = ENV_FILE,
            state_dir: Path = STATE_DIR, out: Callable[[str], None] = say) -> None:
    """Stop then start each asked-for service."""
    with exclusive(state_dir):
        settings = ensure_env_file(settings or ServiceSettings(_env_file=env_file), env_file, out)
        for name in targets(what):
            _stop_one(name, settings, state_dir, out)
            _start_one(name, settings, state_dir, out)


def _start_one(name: str, settings: ServiceSettings, state_dir: Path, out: Callable[[str], None]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    log, started = log_file(name, state_dir), None
    pid = running_pid(name, state_dir)
    if pid is not None:
        if wait_ready(name, settings, 30, pid) is None:
            out(f"{name} already running (pid {pid})")
            return
        out(f"{name} (pid {pid}) is running but does not answer yet; waiting")
        timeout = 60.0
    else:
        port = settings.port(name)
        if port_busy(port):
            raise ServiceError(f"port 127.0.0.1:{port} is already in use by another process (not started by "
                               f"this script); stop it or set {_PORT_VARIABLE[name]}")
        started = time.monotonic()
        with open(log, "a") as handle:
            handle.write(f"==== {dt.datetime.now().astimezone().isoformat(timespec='seconds')} start\n")
        if name == "neo4j":
            neo4j_server.build_launcher(state_dir, out)
            pid = neo4j_server.launch(settings, log)
        else:
            pid = milvus_server.launch(settings, log)
        timeout = settings.start_timeout(name)
        pid_file(name, state_dir).write_text(f"{pid}\n")
        out(f"{name} starting (pid {pid}, log {log})")
    reason = wait_ready(name, settings, timeout, pid)
    if reason is not None:
        _fail_with_log(name, settings, state_dir, f"{name} did not become ready: {reason}")
    if started is None:
        out(f"{name} ready (pid {pid})")
    else:
        out(f"{name} ready in {time.monotonic() - started:.1f} s (pid {pid}, RSS {rss_mib(pid):.0f} MiB)")


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _fail_with_log(name: str, settings: ServiceSettings, state_dir: Path, message: str) -> None:
    """Stop what was started (quietly) and raise with the end of its log(s)."""
    log = log_file(name, state_dir)
    parts = [message, f"---- last lines of {log} ----", _tail(log, 40)]
    if name == "milvus":
        stderr_log = settings.milvus_data / "logs" / "milvus-stderr.log"
        parts += [f"---- last lines of {stderr_log} ----", _tail(stderr_log, 15)]
    try:
        _stop_one(name, settings, state_dir, lambda _: None)
    except OSError:
        pass
    raise ServiceError("\n".join(parts))


def _stop_one(name: str, settings: ServiceSettings, state_dir: Path, out: Callable[[str], None]) -> None:
    pid = running_pid(name, state_dir)
    if pid is None:
        pid_file(name, state_dir).unlink(missing_ok=True)
        out(f"{name} not running")
        return
    out(f"stopping {name} (pid {pid})")
    started = time.monotonic()
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    if not wait_gone(pid, settings.services_stop_timeout):
        out(f"{name} did not stop within {settings.services_stop_timeout:g}s, sending SIGKILL")
        kill_group(pid)  # the service leads its own process group: its children (milvus binary) go too
        wait_gone(pid, 5)
    pid_file(name, state_dir).unlink(missing_ok=True)
    out(f"{name} stopped ({time.monotonic() - started:.1f} s)")
