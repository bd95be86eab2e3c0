"""start / stop / restart / status of the local services: the one implementation behind `scripts/services`.

Semantics kept from the original bash script: `start` writes `.env` (password, client keys), builds
the Neo4j launcher when needed, refuses a port some other process holds, and returns only once the
service answers (on failure: the log's tail, and the half-started service stopped); `stop` sends
SIGTERM, waits SERVICES_STOP_TIMEOUT, then SIGKILLs the process group, and kills what is left of the group
once its leader is gone. Starts and stops take a lock (data/services/lock) so two callers never race on the
same pid file.

Names: `neo4j`, `milvus`, `postgres`, `dagster-code-server`, `dagster-webserver`, `dagster-daemon`; `all` is
the stores (neo4j, milvus: what the asset graph and the test suite need, quick to check); `team` is
postgres, neo4j, milvus, then the three Dagster processes on the team instance (dagster_stack.py), started
in that order and stopped in reverse.
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

from tv5_assets.local_services import dagster_stack, milvus_server, neo4j_server, postgres_server
from tv5_assets.local_services.errors import ServiceError
from tv5_assets.local_services.probes import wait_ready
from tv5_assets.local_services.processes import (
    descendants,
    kill_group,
    log_file,
    pid_file,
    port_busy,
    rss_mib,
    running_pid,
    sweep_group,
    wait_gone,
)
from tv5_assets.local_services.settings import (
    DAGSTER_PROCESSES,
    ENV_FILE,
    SERVICES,
    STATE_DIR,
    TEAM,
    ServiceSettings,
    ensure_env_file,
)

LOCK_TIMEOUT_S = 900
NAMES = TEAM  # every service, in start order
_PORT_VARIABLE = {"neo4j": "NEO4J_BOLT_PORT", "milvus": "MILVUS_PORT", "postgres": "DAGSTER_POSTGRES_PORT",
                  "dagster-code-server": "DAGSTER_CODE_SERVER_PORT", "dagster-webserver": "DAGSTER_WEBSERVER_PORT"}
_held_locks: set[Path] = set()


def say(message: str) -> None:
    print(f"services: {message}", flush=True)


def targets(what: str) -> tuple[str, ...]:
    """'all', 'team' or one service name, as a tuple of names in start order."""
    if what == "all":
        return SERVICES
    if what == "team":
        return TEAM
    if what in NAMES:
        return (what,)
    raise ValueError(f"unknown service {what!r}: {', '.join(NAMES)}, all or team")


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
    port: int | None  # None: the daemon, which serves no port
    pid: int | None  # None: not started by this package
    answering: bool
    port_in_use: bool = False  # when pid is None: does some other process hold the port?
    rss_mib: float = 0.0
    reason: str = ""  # when running but not answering: the probe's last error

    def describe(self) -> str:
        where = f"on 127.0.0.1:{self.port}" if self.port is not None else "(heartbeats in the team instance)"
        if self.pid is None:
            if self.port_in_use:
                return (f"{self.name}: not started by this script, but 127.0.0.1:{self.port} is in use by another "
                        "process")
            return f"{self.name}: stopped"
        if self.answering:
            return f"{self.name}: running, answering {where} (pid {self.pid}, RSS {self.rss_mib:.0f} MiB)"
        return f"{self.name}: running (pid {self.pid}) but not answering {where}" + (
            f": {self.reason}" if self.reason else "")


def status(what: str = "all", settings: ServiceSettings | None = None, *,
           state_dir: Path = STATE_DIR) -> list[ServiceStatus]:
    """The state of each asked-for service (a running one is probed for 5 s at most)."""
    settings = settings or ServiceSettings()
    result = []
    for name in targets(what):
        port, pid = settings.port(name), running_pid(name, state_dir)
        if pid is None:
            result.append(ServiceStatus(name, port, None, False, port is not None and port_busy(port)))
            continue
        reason = wait_ready(name, settings, 5, pid)
        result.append(ServiceStatus(name, port, pid, reason is None, rss_mib=rss_mib(pid) if reason is None else 0.0,
                                    reason=reason or ""))
    return result


def start(what: str = "all", settings: ServiceSettings | None = None, *, env_file: Path = ENV_FILE,
          state_dir: Path = STATE_DIR, out: Callable[[str], None] = say) -> None:
    """Start each asked-for service unless it already answers; return once all answer."""
    with exclusive(state_dir):
        settings = ensure_env_file(settings or ServiceSettings(_env_file=env_file), env_file, out)
        _start_all(targets(what), settings, env_file, state_dir, out)


def _start_all(names: tuple[str, ...], settings: ServiceSettings, env_file: Path, state_dir: Path,
               out: Callable[[str], None]) -> None:
    team_env: dict[str, str] | None = None
    for name in names:
        if name in DAGSTER_PROCESSES and team_env is None:
            # after Postgres answers, before any Dagster process (the daemon above all) starts
            team_env = dagster_stack.prepare(settings, env_file, out)
        _start_one(name, settings, state_dir, out, team_env)


def stop(what: str = "all", settings: ServiceSettings | None = None, *, state_dir: Path = STATE_DIR,
         out: Callable[[str], None] = say) -> None:
    """Stop each asked-for service, in reverse start order: SIGTERM, wait, then SIGKILL."""
    with exclusive(state_dir):
        settings = settings or ServiceSettings()
        for name in reversed(targets(what)):
            _stop_one(name, settings, state_dir, out)


def restart(what: str = "all", settings: ServiceSettings | None = None, *, env_file: Path = ENV_FILE,
            state_dir: Path = STATE_DIR, out: Callable[[str], None] = say) -> None:
    """Stop the asked-for services (reverse order), then start them (in order)."""
    with exclusive(state_dir):
        settings = ensure_env_file(settings or ServiceSettings(_env_file=env_file), env_file, out)
        names = targets(what)
        for name in reversed(names):
            _stop_one(name, settings, state_dir, out)
        _start_all(names, settings, env_file, state_dir, out)


def _start_one(name: str, settings: ServiceSettings, state_dir: Path, out: Callable[[str], None],
               team_env: dict[str, str] | None = None) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    log, started = log_file(name, state_dir), None
    pid = running_pid(name, state_dir)
    if pid is not None:
        if wait_ready(name, settings, 30, pid) is None:
            out(f"{name} already running (pid {pid})")
            return
        out(f"{name} (pid {pid}) is running but does not answer yet; waiting")
        timeout = 60.0
        if name == "postgres":  # e.g. a new password in .env: set the role's again
            _bootstrap_postgres(settings, state_dir, pid, timeout)
    else:
        port = settings.port(name)
        if port is not None and port_busy(port):
            raise ServiceError(f"port 127.0.0.1:{port} is already in use by another process (not started by "
                               f"this script); stop it or set {_PORT_VARIABLE[name]}")
        started = time.monotonic()
        with open(log, "a") as handle:
            handle.write(f"==== {dt.datetime.now().astimezone().isoformat(timespec='seconds')} start\n")
        if name == "neo4j":
            neo4j_server.build_launcher(state_dir, out)
            pid = neo4j_server.launch(settings, log)
        elif name == "milvus":
            pid = milvus_server.launch(settings, log)
        elif name == "postgres":
            pid = postgres_server.launch(settings, log, out)
        else:
            if team_env is None:
                raise ServiceError(f"{name}: the team instance is not prepared (start it through start())")
            pid = dagster_stack.launch(name, settings, team_env, log)
        timeout = settings.start_timeout(name)
        pid_file(name, state_dir).write_text(f"{pid}\n")
        out(f"{name} starting (pid {pid}, log {log})")
        if name == "postgres":
            _bootstrap_postgres(settings, state_dir, pid, timeout)
    reason = wait_ready(name, settings, timeout, pid)
    if reason is not None:
        _fail_with_log(name, settings, state_dir, f"{name} did not become ready: {reason}")
    if started is None:
        out(f"{name} ready (pid {pid})")
    else:
        out(f"{name} ready in {time.monotonic() - started:.1f} s (pid {pid}, RSS {rss_mib(pid):.0f} MiB)")


def _bootstrap_postgres(settings: ServiceSettings, state_dir: Path, pid: int, timeout: float) -> None:
    try:
        postgres_server.bootstrap(settings, pid, timeout)
    except ServiceError as error:
        _fail_with_log("postgres", settings, state_dir, str(error))


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
    started, tree = time.monotonic(), descendants(pid)
    try:
        if name in DAGSTER_PROCESSES:
            # the whole group: the code server's gRPC child and its run workers shut down cleanly too
            kill_group(pid, signal.SIGTERM)
        else:  # the launchers stop their own children; PostgreSQL: SIGINT, its "fast" shutdown
            os.kill(pid, postgres_server.STOP_SIGNAL if name == "postgres" else signal.SIGTERM)
    except ProcessLookupError:
        pass
    if not wait_gone(pid, settings.services_stop_timeout):
        out(f"{name} did not stop within {settings.services_stop_timeout:g}s, sending SIGKILL")
        kill_group(pid)  # the service leads its own process group: its children (milvus binary) go too
        wait_gone(pid, 5)
    if left := sweep_group(pid, tree):  # nothing of the service outlives `stop`
        out(f"{name}: killed {len(left)} leftover process(es) of its group: {', '.join(map(str, left))}")
    pid_file(name, state_dir).unlink(missing_ok=True)
    out(f"{name} stopped ({time.monotonic() - started:.1f} s)")
