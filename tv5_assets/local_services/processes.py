"""Service processes: spawning them detached, their pid files, and whether a pid is still ours.

Why the marker check: a pid file can outlive its process and the pid be reused by anything, so a
pid counts as the service only while its command line still names the service's entry point.
Why zombies count as gone: a service started in-process (tests, benchmarks) stays our child, and
when another process stops it, /proc keeps it until we reap it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from tv5_assets.local_services.settings import STATE_DIR

MARKERS = {"neo4j": "tv5.Neo4jLauncher", "milvus": "services/milvus/launcher.py", "postgres": "/postgres -D ",
           "dagster-code-server": "code-server start", "dagster-webserver": "dagster-webserver",
           "dagster-daemon": "dagster-daemon run"}
_children: dict[int, subprocess.Popen] = {}  # services this process spawned, reaped through poll()


def pid_file(name: str, state_dir: Path = STATE_DIR) -> Path:
    return state_dir / f"{name}.pid"


def log_file(name: str, state_dir: Path = STATE_DIR) -> Path:
    return state_dir / f"{name}.log"


def spawn(command: list[str], cwd: Path, env: dict[str, str], log: Path, user: tuple[int, int] | None = None) -> int:
    """Start `command` in its own session (no terminal signals, one process group to kill), stdin from
    /dev/null and output appended to `log`, holding none of our descriptors (the start/stop lock).
    `user`: (uid, gid) to run as (PostgreSQL refuses root); its supplementary groups are dropped."""
    ids = {} if user is None else {"user": user[0], "group": user[1], "extra_groups": []}
    with open(log, "ab") as out:
        child = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                                 preexec_fn=_default_stop_signals(), **ids)
    _children[child.pid] = child
    return child.pid


def _default_stop_signals() -> Callable[[], None] | None:
    """A child inherits the signals its parent ignores: a server started from a process that ignores SIGTERM
    (nohup, some job runners) would never stop cleanly, and `stop` would wait its timeout then SIGKILL it.
    When any of SIGTERM, SIGINT, SIGHUP is ignored here, the child resets them before exec (else no hook)."""
    ignored = [s for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP) if signal.getsignal(s) == signal.SIG_IGN]
    if not ignored:
        return None

    def reset() -> None:  # in the forked child, its only thread: the main one
        for number in ignored:
            signal.signal(number, signal.SIG_DFL)

    return reset


def is_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie is dead; one of our own children is reaped here)."""
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _children[pid]
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def running_pid(name: str, state_dir: Path = STATE_DIR) -> int | None:
    """Pid of the running service started by this package (None if not running)."""
    try:
        pid = int(pid_file(name, state_dir).read_text().strip())
    except (OSError, ValueError):
        return None
    if pid <= 0 or not is_alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    return pid if MARKERS[name] in cmdline else None


def wait_gone(pid: int, timeout: float, every_s: float = 0.2) -> bool:
    """Wait up to `timeout` seconds for `pid` to end; True if it did."""
    deadline = time.monotonic() + timeout
    while is_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(every_s)
    return True


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal the service's process group (it leads its own session: children go too), else the pid."""
    try:
        os.killpg(pid, sig)
    except OSError:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def group_members(pgid: int) -> list[int]:
    """Live processes of process group `pgid` (a service's session: what is left once its leader exits)."""
    members = []
    for process in psutil.process_iter(["pid", "status"]):
        try:
            if process.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(process.info["pid"]) == pgid:
                members.append(process.info["pid"])
        except (OSError, psutil.Error):
            pass
    return members


def descendants(pid: int) -> list[psutil.Process]:
    """`pid`'s descendants now, as psutil handles (which recognise a reused pid): PostgreSQL's backends
    leave the postmaster's process group, so its group alone does not find them."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def sweep_group(pgid: int, tree: list[psutil.Process] = (), grace_s: float = 5.0) -> list[int]:
    """After a service's leader exited: give what is left of its process group `pgid` (and of `tree`, its
    descendants from before the stop) `grace_s` to end, then SIGKILL it. Returns the pids that were killed."""
    def left() -> list[int]:
        return sorted(set(group_members(pgid)) | {p.pid for p in tree if _alive(p)})

    deadline = time.monotonic() + grace_s
    while (survivors := left()) and time.monotonic() < deadline:
        time.sleep(0.2)
    if survivors:
        kill_group(pgid)
        for process in tree:
            if _alive(process):
                try:
                    process.kill()
                except psutil.Error:
                    pass
        for pid in survivors:
            wait_gone(pid, 5)
    return survivors


def process_tree(pid: int) -> set[int]:
    """`pid` and all its descendants."""
    try:
        return {pid} | {child.pid for child in psutil.Process(pid).children(recursive=True)}
    except psutil.Error:
        return {pid}


def rss_mib(pid: int) -> float:
    """Resident memory of `pid` and its descendants, MiB (the Milvus launcher's server is a child)."""
    total = 0
    for member in process_tree(pid):
        try:
            total += psutil.Process(member).memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def port_busy(port: int, host: str = "127.0.0.1") -> bool:
    """True if something accepts TCP connections on host:port."""
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def free_port() -> int:
    """A loopback port nothing listens on right now (the OS picks it): for a private server, or for a
    URI that must find nobody answering."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
