"""The project's real local services for tests: Neo4j (Bolt) and the Milvus standalone server.

A plain module, not a conftest: import the helpers you need.

- ``neo4j_settings()``: NEO4J_URI / NEO4J_USER / NEO4J_PASSWORD from the environment, falling back
  to the repo's ``.env`` (written by ``scripts/services start``).
- ``ensure_neo4j()`` / ``ensure_milvus_server()``: return the connection settings if the service
  answers a real request, else start it with ``scripts/services start <name>`` (which builds the
  Neo4j launcher if needed and waits until the service answers) and return them.
- ``kill_neo4j()`` (SIGKILL: a crash, no checkpoint) / ``restart_neo4j()`` for fault tests, plus
  ``stop_service()``.
- ``PrivateNeo4j``: a separate instance (own port, home, memory) for crash tests and large loads.
- ``listening_sockets()`` / ``is_loopback()``: parse ``ss -ltnp`` to check that nothing of ours
  listens beyond loopback.

Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVICES_SCRIPT = REPO / "scripts" / "services"
STATE_DIR = REPO / "data" / "services"
DOTENV = REPO / ".env"

_PID_MARKERS = {"neo4j": "tv5.Neo4jLauncher", "milvus": "services/milvus/launcher.py"}


class ServiceError(RuntimeError):
    """A local service could not be started or does not answer."""


@dataclass(frozen=True)
class Neo4jSettings:
    uri: str
    user: str
    password: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)


@dataclass(frozen=True)
class MilvusServerSettings:
    uri: str


def read_dotenv(path: Path = DOTENV) -> dict[str, str]:
    """KEY=VALUE lines of ``.env`` (``export`` prefixes, quotes and comments handled)."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if not m:
            continue
        key, val = m.group(1), m.group(2).strip()
        if len(val) >= 2 and val[0] == val[-1] and val[0] in "\"'":
            val = val[1:-1]
        values[key] = val
    return values


def _setting(name: str, default: str | None = None) -> str | None:
    val = os.environ.get(name)
    if val:
        return val
    return read_dotenv().get(name) or default


def neo4j_settings() -> Neo4jSettings:
    """Connection settings of the local Neo4j (password may be '' before the first start)."""
    port = _setting("NEO4J_BOLT_PORT", "7687")
    return Neo4jSettings(
        uri=_setting("NEO4J_URI", f"bolt://127.0.0.1:{port}") or "",
        user=_setting("NEO4J_USER", "neo4j") or "neo4j",
        password=_setting("NEO4J_PASSWORD", "") or "",
    )


def milvus_server_settings() -> MilvusServerSettings:
    """URI of the local Milvus standalone server (MILVUS_URI if it is an http URI, else the port)."""
    uri = _setting("MILVUS_URI")
    if uri and uri.startswith(("http://", "https://", "tcp://", "grpc://")):
        return MilvusServerSettings(uri=uri)
    return MilvusServerSettings(uri=f"http://127.0.0.1:{_setting('MILVUS_PORT', '19530')}")


# --------------------------------------------------------------------------- probes
def neo4j_answers(settings: Neo4jSettings | None = None, timeout: float = 5.0) -> bool:
    """True if Bolt answers ``RETURN 1`` with these credentials."""
    import neo4j

    settings = settings or neo4j_settings()
    if not settings.password:
        return False
    try:
        with neo4j.GraphDatabase.driver(settings.uri, auth=settings.auth, connection_timeout=timeout) as driver:
            with driver.session() as session:
                return session.run("RETURN 1 AS ok").single()["ok"] == 1
    except Exception:  # noqa: BLE001 - "does not answer" whatever the reason
        return False


def milvus_answers(settings: MilvusServerSettings | None = None, timeout: float = 5.0) -> bool:
    """True if the Milvus server answers ``list_collections()``."""
    from pymilvus import MilvusClient

    settings = settings or milvus_server_settings()
    try:
        client = MilvusClient(uri=settings.uri, timeout=timeout)
    except Exception:  # noqa: BLE001
        return False
    try:
        client.list_collections()
        return True
    except Exception:  # noqa: BLE001
        return False
    finally:
        try:
            client.close()
        except Exception:  # noqa: BLE001
            pass


# --------------------------------------------------------------------------- control
def run_services(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``scripts/services ARGS``; raise ServiceError (with its output) if it fails."""
    proc = subprocess.run(
        [str(SERVICES_SCRIPT), *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False,
    )
    if proc.returncode != 0:
        raise ServiceError(
            f"scripts/services {' '.join(args)} failed (exit {proc.returncode})\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )
    return proc


def ensure_neo4j(timeout: float = 600) -> Neo4jSettings:
    """Settings of a Neo4j that answers; starts it (and builds the launcher) if needed."""
    settings = neo4j_settings()
    if neo4j_answers(settings):
        return settings
    run_services("start", "neo4j", timeout=timeout)
    settings = neo4j_settings()  # a first start may just have written the password to .env
    if not neo4j_answers(settings, timeout=10):
        raise ServiceError(f"Neo4j started but does not answer at {settings.uri} with the configured password")
    return settings


def ensure_milvus_server(timeout: float = 600) -> MilvusServerSettings:
    """Settings of a Milvus standalone server that answers; starts it if needed."""
    settings = milvus_server_settings()
    if milvus_answers(settings):
        return settings
    run_services("start", "milvus", timeout=timeout)
    settings = milvus_server_settings()
    if not milvus_answers(settings, timeout=10):
        raise ServiceError(f"Milvus started but does not answer at {settings.uri}")
    return settings


def service_pid(name: str) -> int | None:
    """Pid of the running service process started by scripts/services (None if not running)."""
    try:
        pid = int((STATE_DIR / f"{name}.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError):
        return None
    return pid if _PID_MARKERS[name] in cmdline else None


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a child of ours (not the case for scripts/services) would linger as a zombie
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    return False


def kill_neo4j(sig: int = signal.SIGKILL, timeout: float = 60) -> int:
    """Kill the running Neo4j server (default SIGKILL: a crash, no clean shutdown). Returns its pid.

    With SIGTERM the launcher's shutdown hook stops the DBMS cleanly instead.
    """
    pid = service_pid("neo4j")
    if pid is None:
        raise ServiceError("Neo4j is not running (no live pid in data/services/neo4j.pid)")
    os.kill(pid, sig)
    if not _wait_gone(pid, timeout):
        raise ServiceError(f"Neo4j pid {pid} still alive {timeout} s after signal {sig}")
    return pid


def restart_neo4j(timeout: float = 600) -> Neo4jSettings:
    """Start Neo4j again (after kill_neo4j, this includes crash recovery) and wait until it answers."""
    run_services("start", "neo4j", timeout=timeout)
    return ensure_neo4j(timeout=timeout)


def stop_service(name: str = "all", timeout: float = 180) -> None:
    """Stop cleanly through scripts/services (SIGTERM, wait, SIGKILL)."""
    run_services("stop", name, timeout=timeout)


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


def process_tree(pid: int) -> set[int]:
    """pid and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = set(), [pid]
    while todo:
        p = todo.pop()
        if p not in tree:
            tree.add(p)
            todo.extend(children.get(p, []))
    return tree


# --------------------------------------------------------------------------- private Neo4j instances
NEO4J_LAUNCHER_DIR = REPO / "services" / "neo4j"


def neo4j_java_command(home: Path, heap: str = "512m", java_opts: tuple[str, ...] = (), gc: str = "G1") -> list[str]:
    """The JVM command line of the project's launcher (the same flags as scripts/services uses).

    `gc`: "G1" (the default, as in scripts/services: short pauses for queries) or "Parallel" (the
    bulk-load profile of the benchmarks: more throughput, with the heap committed up front)."""
    if gc not in ("G1", "Parallel"):
        raise ValueError(f"gc must be 'G1' or 'Parallel', got {gc!r}")
    heap_flags = [f"-Xmx{heap}"] + ([f"-Xms{heap}"] if gc == "Parallel" else [])
    classes = NEO4J_LAUNCHER_DIR / "target" / "classes"
    if not (classes / "tv5" / "Neo4jLauncher.class").exists():
        raise ServiceError(f"the Neo4j launcher is not built ({classes}): run `scripts/services start neo4j` once")
    return [
        "java", *heap_flags, f"-XX:+Use{gc}GC", "-XX:-OmitStackTraceInFastThrow", "-XX:+ExitOnOutOfMemoryError",
        "-Djdk.nio.maxCachedBufferSize=1024", "-Dio.netty.tryReflectionSetAccessible=true",
        "-Dlog4j2.disable.jmx=true", "--add-opens=java.base/java.nio=ALL-UNNAMED",
        "--add-opens=java.base/java.io=ALL-UNNAMED", "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
        "--add-opens=java.base/java.lang=ALL-UNNAMED", *java_opts,
        "-cp", f"{classes}:{NEO4J_LAUNCHER_DIR / 'target' / 'dependency'}/*", "tv5.Neo4jLauncher", str(home),
    ]


def free_port() -> int:
    """A loopback port nothing listens on right now (the OS picks it): for a private server, or for a
    URI that must find nobody answering."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateNeo4j:
    """A Neo4j of its own (port, home directory, memory) for tests and benchmarks that must not touch
    the shared server on 7687: fault tests that SIGKILL it, or loads that need a larger page cache.

    Same launcher and password as the shared one; a child of this process, so `kill()` is a real crash
    (SIGKILL, no checkpoint) and `start()` again runs crash recovery on the same home.
    """

    def __init__(self, home: Path, port: int = 7688, heap: str = "512m", pagecache: str = "256m",
                 tx_memory: str = "512m", password: str | None = None, java_opts: tuple[str, ...] = (),
                 gc: str = "G1", settings: dict[str, str] | None = None) -> None:
        self.home = Path(home).resolve()  # the JVM runs in services/neo4j: a relative home would land there
        self.port, self.heap, self.pagecache, self.tx_memory = port, heap, pagecache, tx_memory
        self.java_opts, self.gc = java_opts, gc
        self.extra_settings = dict(settings or {})  # Neo4j settings (a conf file the launcher loads)
        self.password = password or neo4j_settings().password or "private-neo4j-password"
        self.process: subprocess.Popen | None = None

    @property
    def settings(self) -> Neo4jSettings:
        return Neo4jSettings(uri=f"bolt://127.0.0.1:{self.port}", user="neo4j", password=self.password)

    @property
    def log_path(self) -> Path:
        return self.home / "launcher.log"

    def start(self, timeout: float = 180) -> Neo4jSettings:
        """Start the JVM and wait until Bolt answers with the password."""
        if self.process is not None and self.process.poll() is None:
            return self.settings
        import socket

        with socket.socket() as probe:
            probe.settimeout(1)
            if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                raise ServiceError(f"port 127.0.0.1:{self.port} is already in use: pick another for a private Neo4j")
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "NEO4J_PASSWORD": self.password, "NEO4J_BOLT_PORT": str(self.port),
               "NEO4J_PAGECACHE": self.pagecache, "NEO4J_TX_MEMORY": self.tx_memory}
        if self.extra_settings:
            conf = self.home / "tv5-settings.conf"
            conf.write_text("".join(f"{k}={v}\n" for k, v in self.extra_settings.items()))
            env["NEO4J_CONF_FILE"] = str(conf)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(neo4j_java_command(self.home, self.heap, self.java_opts, self.gc),
                                            cwd=NEO4J_LAUNCHER_DIR,
                                            env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceError(f"private Neo4j exited with {self.process.returncode}; log {self.log_path}:\n"
                                   + self.log_path.read_text(errors="replace")[-3000:])
            if neo4j_answers(self.settings, timeout=2):
                return self.settings
            time.sleep(0.5)
        self.kill()
        raise ServiceError(f"private Neo4j on port {self.port} did not answer within {timeout:.0f} s "
                           f"(log {self.log_path})")

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 60) -> None:
        """Signal the JVM (SIGKILL: a crash) and reap it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self.process = None

    def stop(self, timeout: float = 60) -> None:
        """Clean shutdown (SIGTERM: the launcher's hook checkpoints and closes the DBMS)."""
        self.kill(signal.SIGTERM, timeout)

    def __enter__(self) -> PrivateNeo4j:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
