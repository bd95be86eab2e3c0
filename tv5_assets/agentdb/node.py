"""The adapter to AgentDB: runs the project's Node script (services/agentdb/tv5-agentdb.mjs) and AgentDB's CLI.

AgentDB 1.6.1 is an npm package; its Python-free parts (sql.js storage, LearningSystem, ReflexionMemory)
only run under Node. Every read a check relies on goes through here, so the figures are the ones
AgentDB's own code computes. Missing pieces are named: the `node` binary (with where it was looked
for) or the npm package (with the command that installs it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SERVICE_DIR = Path(__file__).resolve().parents[2] / "services" / "agentdb"
SCRIPT = SERVICE_DIR / "tv5-agentdb.mjs"
LOGIC_FILES = (SCRIPT,)  # the script creates the AgentDB file: its code is part of the agentdb asset's version
PINNED_VERSION = "1.6.1"
INSTALL_HINT = "npm ci --ignore-scripts --prefix services/agentdb   (scripts/setup runs it when Node is present)"
TIMEOUT_S = 900


class AgentDBUnavailable(RuntimeError):
    """Node or the agentdb package is missing: nothing about the data can be said."""


class AgentDBError(RuntimeError):
    """AgentDB ran and failed on the database (unreadable, damaged, truncated)."""


@dataclass(frozen=True)
class NodeRuntime:
    """Where `node` and the pinned agentdb package are; `locate()` builds one or names what is missing."""

    node: str
    service_dir: Path

    @classmethod
    def locate(cls, path: str | None = None, service_dir: Path = SERVICE_DIR) -> NodeRuntime:
        """Find `node` on `path` (default: $PATH) and the installed agentdb package, or raise naming the gap."""
        search = path if path is not None else os.environ.get("PATH", "")
        node = shutil.which("node", path=search)
        if node is None:
            raise AgentDBUnavailable(
                f"AgentDB needs Node.js: no `node` binary on PATH ({search or 'empty'}). Install Node 18+ "
                f"(e.g. `apt-get install nodejs npm`), then run: {INSTALL_HINT}")
        manifest = service_dir / "node_modules" / "agentdb" / "package.json"
        if not manifest.is_file():
            raise AgentDBUnavailable(
                f"the npm package agentdb@{PINNED_VERSION} is not installed ({manifest} is missing); run: {INSTALL_HINT}")
        version = json.loads(manifest.read_text())["version"]
        if version != PINNED_VERSION:
            raise AgentDBUnavailable(
                f"agentdb {version} is installed but the project pins {PINNED_VERSION}; run: {INSTALL_HINT}")
        return cls(node=node, service_dir=service_dir)

    @property
    def script(self) -> Path:
        return self.service_dir / SCRIPT.name

    @property
    def cli(self) -> Path:
        return self.service_dir / "node_modules" / "agentdb" / "dist" / "cli" / "agentdb-cli.js"

    def _run(self, args: list[str], what: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([self.node, *args], capture_output=True, text=True, timeout=TIMEOUT_S,
                              cwd=self.service_dir)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            ours = [line for line in lines if line.startswith(f"{SCRIPT.stem}:")]  # the script's own error line
            raise AgentDBError(f"AgentDB {what} failed (exit {done.returncode}): {' | '.join(ours or lines[-3:])}")
        return done

    def call(self, command: str, database: Path, *args: str) -> dict[str, Any]:
        """Run one command of the project's script; its stdout is one JSON document."""
        done = self._run([str(self.script), command, str(Path(database).resolve()), *args], command)
        return json.loads(done.stdout.strip().splitlines()[-1])

    def create(self, database: Path) -> dict[str, Any]:
        """A new, empty database whose schema AgentDB itself wrote (what `agentdb init` loads, plus LearningSystem's)."""
        return self.call("create", database)

    def stats(self, database: Path, session: str | None = None) -> dict[str, Any]:
        """Counts as AgentDB reads them: sessions, experiences, episodes, embeddings (by dimension), integrity."""
        return self.call("stats", database, *(["--session", session] if session else []))

    def search(self, database: Path, queries: np.ndarray, k: int = 5) -> list[dict[str, Any]]:
        """Top-k episodes for each query vector, ranked by AgentDB's ReflexionMemory.retrieveRelevant
        (one Node process, so the database is loaded once for all queries)."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        with tempfile.TemporaryDirectory(prefix="tv5-agentdb-") as tmp:
            query_file = Path(tmp, "queries.f32")
            query_file.write_bytes(queries.tobytes())
            return self.call("search", database, str(query_file), str(queries.shape[1]), str(k))["queries"]

    def cli_stats(self, database: Path) -> dict[str, int]:
        """`agentdb stats <db>` from AgentDB's own CLI, parsed: its Episodes / Embeddings / Skills counts."""
        done = self._run([str(self.cli), "stats", str(Path(database).resolve())], "CLI stats")
        counts = dict(re.findall(r"^\s*(Episodes|Embeddings|Skills|Causal Edges):\s*(\d+)", done.stdout, re.M))
        if "Episodes" not in counts:
            raise AgentDBError(f"AgentDB CLI stats printed no counts: {done.stdout.strip()[-300:]}")
        return {key.lower().replace(" ", "_"): int(value) for key, value in counts.items()}

    def hold(self, database: Path) -> subprocess.Popen[str]:
        """A reader that opens the file now and reads it (through that descriptor) after a line on its stdin."""
        return subprocess.Popen([self.node, str(self.script), "hold", str(Path(database).resolve())],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=self.service_dir)
