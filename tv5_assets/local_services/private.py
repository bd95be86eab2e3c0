"""A Neo4j of its own (port, home directory, memory) for tests and benchmarks that must not touch the
shared server: fault tests that SIGKILL it, or loads that need a larger page cache."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tv5_assets.local_services.errors import ServiceError
from tv5_assets.local_services.neo4j_server import LAUNCHER_DIR, java_command
from tv5_assets.local_services.probes import neo4j_answers
from tv5_assets.local_services.processes import port_busy
from tv5_assets.local_services.settings import Neo4jConnection, ServiceSettings


class PrivateNeo4j:
    """Same launcher and password as the shared server; a child of this process, so `kill()` is a real
    crash (SIGKILL, no checkpoint) and `start()` again runs crash recovery on the same home."""

    def __init__(self, home: Path, port: int = 7688, heap: str = "512m", pagecache: str = "256m",
                 tx_memory: str = "512m", password: str | None = None, java_opts: tuple[str, ...] = (),
                 gc: str = "G1", settings: dict[str, str] | None = None) -> None:
        self.home = Path(home).resolve()  # the JVM runs in services/neo4j: a relative home would land there
        self.port, self.heap, self.pagecache, self.tx_memory = port, heap, pagecache, tx_memory
        self.java_opts, self.gc = java_opts, gc
        self.extra_settings = dict(settings or {})  # Neo4j settings (a conf file the launcher loads)
        self.password = password or ServiceSettings().neo4j_password or "private-neo4j-password"
        self.process: subprocess.Popen | None = None

    @property
    def settings(self) -> Neo4jConnection:
        return Neo4jConnection(uri=f"bolt://127.0.0.1:{self.port}", user="neo4j", password=self.password)

    @property
    def log_path(self) -> Path:
        return self.home / "launcher.log"

    def start(self, timeout: float = 180) -> Neo4jConnection:
        """Start the JVM and wait until Bolt answers with the password."""
        if self.process is not None and self.process.poll() is None:
            return self.settings
        if port_busy(self.port):
            raise ServiceError(f"port 127.0.0.1:{self.port} is already in use: pick another for a private Neo4j")
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "NEO4J_PASSWORD": self.password, "NEO4J_BOLT_PORT": str(self.port),
               "NEO4J_PAGECACHE": self.pagecache, "NEO4J_TX_MEMORY": self.tx_memory}
        if self.extra_settings:
            conf = self.home / "tv5-settings.conf"
            conf.write_text("".join(f"{k}={v}\n" for k, v in self.extra_settings.items()))
            env["NEO4J_CONF_FILE"] = str(conf)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(java_command(self.home, self.heap, self.java_opts, self.gc),
                                            cwd=LAUNCHER_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
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
