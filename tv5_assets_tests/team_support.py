"""The team stack as the tests share it: one per test session, started with `scripts/services start team`'s own
code (tv5_assets.local_services), private to the session: its own PostgreSQL cluster, Neo4j, Milvus server,
code server, webserver and daemon on free loopback ports, its own .env, state directory, DAGSTER_HOME and data
lake. The developer's services and `.env` are not touched; faults (a killed Neo4j, a restarted Milvus) hit
only this stack's servers.

`team_stack` (session fixture, imported by conftest) yields a `TeamStack`: its URL, its Dagster instance on
Postgres, resources pointing at its servers, and `run_config(lake)` that points a launched run's IO manager,
lake and Milvus at a lake of the test's own.
"""

from __future__ import annotations

import os
import secrets
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pytest

from tv5_assets import local_services as ls
from tv5_assets.local_services.processes import kill_group
from tv5_assets.graph_store.resources import Neo4jResource
from tv5_assets.local_services import dagster_stack
from tv5_assets_tests import services as svc


@dataclass
class TeamStack:
    base: Path
    shared: Path  # under /tmp, traversable by PostgreSQL's OS user
    ports: dict[str, int]
    passwords: dict[str, str]
    instance: dg.DagsterInstance | None = None
    said: list[str] = field(default_factory=list)

    @property
    def state(self) -> Path:
        return self.base / "state"

    @property
    def env_file(self) -> Path:
        return self.base / ".env"

    @property
    def lake(self) -> Path:
        return self.base / "lake"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['web']}"

    @property
    def milvus_uri(self) -> str:
        return f"http://127.0.0.1:{self.ports['milvus']}"

    def settings(self) -> ls.ServiceSettings:
        return ls.ServiceSettings(
            _env_file=self.env_file, dagster_postgres_port=self.ports["pg"], postgres_data_dir=str(self.shared / "pg"),
            dagster_postgres_password=self.passwords["pg"], neo4j_password=self.passwords["neo4j"],
            neo4j_bolt_port=self.ports["bolt"], neo4j_home_dir=str(self.base / "neo4j"), neo4j_heap="768m",
            neo4j_pagecache="128m", neo4j_tx_memory="512m", milvus_port=self.ports["milvus"],
            milvus_data_dir=str(self.base / "milvus"), dagster_team_home=str(self.base / "dagster-team"),
            dagster_code_server_port=self.ports["code"], dagster_webserver_port=self.ports["web"])

    def environment(self) -> dict[str, str]:
        """What the stack's processes run with (for a CLI run beside them: run it in `home`, not the repo)."""
        return dagster_stack.environment(self.settings(), self.env_file)

    @property
    def home(self) -> Path:
        return self.settings().team_home

    def neo4j(self, **overrides: object) -> Neo4jResource:
        return Neo4jResource(**{"uri": f"bolt://127.0.0.1:{self.ports['bolt']}", "user": "neo4j",
                                "password": self.passwords["neo4j"], **overrides})

    def start(self, what: str) -> None:
        ls.start(what, self.settings(), env_file=self.env_file, state_dir=self.state, out=self.said.append)

    def stop(self, what: str) -> None:
        ls.stop(what, self.settings(), state_dir=self.state, out=self.said.append)

    def kill(self, what: str) -> int:
        """SIGKILL a service of the stack (a crash: no clean shutdown); its pid."""
        pid = ls.running_pid(what, self.state)
        assert pid is not None, f"{what} is not running"
        kill_group(pid, signal.SIGKILL)
        assert ls.wait_gone(pid, 30)
        return pid

    def lake_config(self, lake: Path, milvus: dict | None = None) -> dict:
        """Run config that points a launched run at `lake` (Parquet assets, Milvus Lite file) instead of the
        stack's TV5_DATA_DIR; `milvus` overrides the Milvus resource (e.g. a collection prefix)."""
        return {"resources": {"io_manager": {"config": {"base_dir": str(lake)}},
                              "lake": {"config": {"base_dir": str(lake)}},
                              "milvus": {"config": {"uri": self.milvus_uri, **(milvus or {})}}}}


@pytest.fixture(scope="session")
def team_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TeamStack]:
    """The session's private team stack (about 30 s to start on 2 cores)."""
    base = tmp_path_factory.mktemp("team")
    with svc.shared_tmp_dir("tv5-team-") as shared, pytest.MonkeyPatch.context() as patch:
        for name in ls.ServiceSettings.model_fields:  # the environment would beat the stack's own settings
            patch.delenv(name.upper(), raising=False)
        for name in ("TV5_MILVUS_URI", "DAGSTER_HOME", "TV5_INSTANCE", "TV5_COMPUTE_LOG_DIR"):
            patch.delenv(name, raising=False)
        stack = TeamStack(base, shared, {key: ls.free_port() for key in ("pg", "bolt", "milvus", "code", "web")},
                          {"pg": secrets.token_hex(16), "neo4j": secrets.token_hex(16)})
        stack.lake.mkdir()
        patch.setenv("TV5_DATA_DIR", str(stack.lake))
        patch.setenv("TV5_OUTAGE_WAIT_S", os.environ.get("TV5_OUTAGE_WAIT_S", "30"))
        try:
            stack.start("team")
            # what the instance's dagster.yaml reads at run time too (compute logs), for runs made in this process
            for key, value in dagster_stack.instance_variables(stack.settings()).items():
                patch.setenv(key, value)
            with dagster_stack.team_instance(stack.settings()) as instance:
                stack.instance = instance
                yield stack
        finally:
            stack.stop("team")
