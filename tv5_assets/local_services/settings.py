"""Where the local services live and how they are tuned: one settings class for every reader.

Why pydantic-settings: the same precedence as the old bash script (environment first, then `.env` at
the repo root, then the default; an empty value counts as unset) without a hand-written parser. The
`.env` file itself is read with python-dotenv, the parser pydantic-settings uses, so `export KEY=v`,
quotes and comments mean the same everywhere.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = ROOT / ".env"
STATE_DIR = ROOT / "data" / "services"  # pid files, logs, the start/stop lock
SERVICES = ("neo4j", "milvus")  # `all`: the stores the asset graph writes (what scripts/test and materialize need)
DAGSTER_PROCESSES = ("dagster-code-server", "dagster-webserver", "dagster-daemon")
# `team`, in start order (stopped in reverse): Dagster's Postgres, the stores, then the three Dagster processes
TEAM = ("postgres", *SERVICES, *DAGSTER_PROCESSES)
_SERVER_SCHEMES = ("http://", "https://", "tcp://", "grpc://")


@dataclass(frozen=True)
class Neo4jConnection:
    """What a Bolt client needs to reach a Neo4j."""

    uri: str
    user: str
    password: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)


class ServiceSettings(BaseSettings):
    """The tunables of `scripts/services` (the field name upper-cased is the variable; environment, then .env)."""

    model_config = SettingsConfigDict(env_file=ENV_FILE, env_file_encoding="utf-8", env_ignore_empty=True,
                                      case_sensitive=False, extra="ignore")

    neo4j_bolt_port: int = Field(7687, description="Bolt port of the local Neo4j (127.0.0.1 only)")
    neo4j_home_dir: str = Field("data/neo4j", description="its home: store, logs, conf (relative: under the repo)")
    neo4j_heap: str = Field("2g", description="its JVM heap")
    neo4j_pagecache: str = Field("512m", description="its page cache (the sample's store fits; set 3g at ml-25m, "
                                 "whose store is about 2 GB)")
    neo4j_tx_memory: str = Field("1g", description="its transaction memory cap (dbms.memory.transaction.total.max)")
    neo4j_java_opts: str = Field("", description="extra JVM options")
    neo4j_start_timeout: float = Field(180, description="seconds `start` waits for Bolt to answer")
    neo4j_uri: str = Field("", description="clients only; empty: bolt://127.0.0.1:$NEO4J_BOLT_PORT")
    neo4j_user: str = Field("neo4j", description="clients only: the user")
    neo4j_password: str = Field("", description="secret; `start` writes a random one to .env when none is set")
    milvus_port: int = Field(19530, description="port of the local Milvus server (127.0.0.1 only)")
    milvus_data_dir: str = Field("data/milvus-server", description="its data (relative: under the repo)")
    milvus_start_timeout: float = Field(240, description="seconds `start` waits for it to answer")
    milvus_uri: str = Field("", description="clients only (tools, tests); empty: http://127.0.0.1:$MILVUS_PORT; "
                            "the assets read TV5_MILVUS_URI instead")
    postgres_data_dir: str = Field("data/postgres", description="data directory of the local PostgreSQL 15 cluster "
                                   "(relative: under the repo); its unix socket lives there too")
    postgres_os_user: str = Field("postgres", description="OS user that owns and runs the cluster when "
                                  "`scripts/services` runs as root (PostgreSQL refuses root)")
    postgres_bin_dir: str = Field("", description="directory of initdb, postgres and psql; empty: PATH, then the "
                                  "newest `/usr/lib/postgresql/*/bin`")
    postgres_start_timeout: float = Field(60, description="seconds `start` waits for a password login to work")
    dagster_postgres_host: str = Field("127.0.0.1", description="clients only: host of the team instance's "
                                       "Postgres (the local cluster listens on 127.0.0.1 only)")
    dagster_postgres_port: int = Field(5432, description="port of the local PostgreSQL (127.0.0.1 only)")
    dagster_postgres_user: str = Field("dagster", description="its role for the team instance")
    dagster_postgres_password: str = Field("", description="secret; `start` writes a random one to .env when none "
                                           "is set")
    dagster_postgres_db: str = Field("dagster", description="its database for the team instance, owned by the role")
    dagster_team_home: str = Field("data/dagster-team", description="DAGSTER_HOME of `start team`: dagster.yaml, "
                                   "workspace.yaml (relative: under the repo)")
    dagster_code_server_port: int = Field(4266, description="gRPC port of the team's code server (127.0.0.1 only)")
    dagster_webserver_port: int = Field(3000, description="port of the team's webserver (127.0.0.1 only)")
    dagster_start_timeout: float = Field(180, description="seconds `start team` waits for each Dagster process "
                                         "to answer")
    services_stop_timeout: float = Field(60, description="seconds `stop` waits after SIGTERM before SIGKILL")

    @property
    def neo4j_home(self) -> Path:
        return _under_root(self.neo4j_home_dir)

    @property
    def milvus_data(self) -> Path:
        return _under_root(self.milvus_data_dir)

    @property
    def postgres_data(self) -> Path:
        return _under_root(self.postgres_data_dir)

    @property
    def team_home(self) -> Path:
        return _under_root(self.dagster_team_home)

    def port(self, name: str) -> int | None:
        """The TCP port a service answers on (None: the daemon has none)."""
        return {"neo4j": self.neo4j_bolt_port, "milvus": self.milvus_port, "postgres": self.dagster_postgres_port,
                "dagster-code-server": self.dagster_code_server_port,
                "dagster-webserver": self.dagster_webserver_port}.get(name)

    def start_timeout(self, name: str) -> float:
        return {"neo4j": self.neo4j_start_timeout, "milvus": self.milvus_start_timeout,
                "postgres": self.postgres_start_timeout}.get(name, self.dagster_start_timeout)

    def local_bolt_uri(self) -> str:
        """The server this machine runs (what `start` waits for), whatever NEO4J_URI says."""
        return f"bolt://127.0.0.1:{self.neo4j_bolt_port}"

    def neo4j_connection(self) -> Neo4jConnection:
        """NEO4J_URI / NEO4J_USER / NEO4J_PASSWORD, defaulting to the local server."""
        return Neo4jConnection(self.neo4j_uri or self.local_bolt_uri(), self.neo4j_user, self.neo4j_password)

    def milvus_server_uri(self) -> str:
        """MILVUS_URI when it names a server (not a Milvus Lite file), else the local server's."""
        if self.milvus_uri.startswith(_SERVER_SCHEMES):
            return self.milvus_uri
        return f"http://127.0.0.1:{self.milvus_port}"


def _under_root(value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else ROOT / path


def env_file_values(path: Path = ENV_FILE) -> dict[str, str]:
    """The KEY=value pairs of a `.env` file ({} when absent), for handing on to a child's environment."""
    if not path.is_file():
        return {}
    return {key: value for key, value in dotenv_values(path).items() if value is not None}


def _append(path: Path, key: str, value: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(("\n" if text and not text.endswith("\n") else "") + f"{key}={value}\n")


SECRETS = ("neo4j_password", "dagster_postgres_password")  # generated into .env when unset


def ensure_env_file(settings: ServiceSettings, path: Path = ENV_FILE,
                    say: Callable[[str], None] = print) -> ServiceSettings:
    """Give the services their passwords and clients their keys: create `.env` (mode 600) if missing, write a
    random NEO4J_PASSWORD and DAGSTER_POSTGRES_PASSWORD when neither the environment nor the file has one,
    and add NEO4J_URI, NEO4J_USER, MILVUS_URI and DAGSTER_POSTGRES_HOST / _PORT / _USER / _DB when the
    file lacks them (keys already there are kept).

    Returns `settings` with the passwords that the servers will be started with."""
    created = not path.exists()
    if created:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    passwords = {}
    for field in SECRETS:
        if not getattr(settings, field):
            passwords[field] = secrets.token_hex(24)  # hex: never starts with '-', needs no quoting anywhere
            _append(path, field.upper(), passwords[field])
            path.chmod(0o600)
            say(f"generated a random {field.upper()} and wrote it to {path}")
    present = dotenv_values(path)
    for key, value in (("NEO4J_URI", settings.local_bolt_uri()), ("NEO4J_USER", "neo4j"),
                       ("MILVUS_URI", f"http://127.0.0.1:{settings.milvus_port}"),
                       ("DAGSTER_POSTGRES_HOST", settings.dagster_postgres_host),
                       ("DAGSTER_POSTGRES_PORT", str(settings.dagster_postgres_port)),
                       ("DAGSTER_POSTGRES_USER", settings.dagster_postgres_user),
                       ("DAGSTER_POSTGRES_DB", settings.dagster_postgres_db)):
        if present.get(key) is None:
            _append(path, key, value)
    if created:
        say(f"created {path} (gitignored)")
    return settings.model_copy(update=passwords)
