"""Readiness: a service counts as up only when it answers a real request, not when its port opens
(Bolt listens before the password is in place; Milvus's proxy accepts before its coordinators run)."""

from __future__ import annotations

import time

from tv5_assets.local_services.errors import FatalProbeError
from tv5_assets.local_services.processes import is_alive
from tv5_assets.local_services.settings import Neo4jConnection, ServiceSettings


def check_neo4j(connection: Neo4jConnection, timeout: float = 5.0) -> None:
    """Raise unless Bolt answers `RETURN 1` with these credentials."""
    import neo4j

    # a session, not execute_query: the latter retries with back-off and logs every attempt
    with neo4j.GraphDatabase.driver(connection.uri, auth=connection.auth, connection_timeout=timeout) as driver:
        with driver.session() as session:
            if session.run("RETURN 1 AS ok").single()["ok"] != 1:
                raise RuntimeError("RETURN 1 did not return 1")


def _import_pymilvus():
    """pymilvus runs `dotenv.load_dotenv()` when first imported: the `.env` found from the working directory
    lands in os.environ, where it would beat the `.env` these settings were read from (a test's private
    one, say). Undo what that import added."""
    import os
    import sys

    if "pymilvus" in sys.modules:
        return sys.modules["pymilvus"]
    before = set(os.environ)
    import pymilvus

    for key in set(os.environ) - before:
        del os.environ[key]
    return pymilvus


def check_milvus(uri: str, timeout: float = 5.0) -> None:
    """Raise unless the Milvus server answers `list_collections()`."""
    MilvusClient = _import_pymilvus().MilvusClient  # noqa: N806

    client = MilvusClient(uri=uri, timeout=timeout)
    try:
        client.list_collections()
    finally:
        client.close()


def neo4j_answers(connection: Neo4jConnection, timeout: float = 5.0) -> bool:
    """True if Bolt answers with these credentials (False without a password)."""
    if not connection.password:
        return False
    try:
        check_neo4j(connection, timeout)
        return True
    except Exception:  # noqa: BLE001 - "does not answer" whatever the reason
        return False


def milvus_answers(uri: str, timeout: float = 5.0) -> bool:
    """True if the Milvus server at `uri` answers."""
    try:
        check_milvus(uri, timeout)
        return True
    except Exception:  # noqa: BLE001
        return False


def postgres_answers(settings: ServiceSettings, timeout: float = 5.0) -> bool:
    """True if the local PostgreSQL accepts DAGSTER_POSTGRES_USER's password over TCP (SELECT 1)."""
    from tv5_assets.local_services import postgres_server

    try:
        postgres_server.check(settings, timeout)
        return True
    except Exception:  # noqa: BLE001
        return False


def _local_check(name: str, settings: ServiceSettings, pid: int | None) -> None:
    if name == "neo4j":
        check_neo4j(Neo4jConnection(settings.local_bolt_uri(), "neo4j", settings.neo4j_password))
    elif name == "milvus":
        check_milvus(f"http://127.0.0.1:{settings.milvus_port}")
    elif name == "postgres":
        from tv5_assets.local_services import postgres_server

        postgres_server.check(settings)
    else:
        from tv5_assets.local_services import dagster_stack

        dagster_stack.check(name, settings, pid)


def wait_ready(name: str, settings: ServiceSettings, timeout: float, pid: int | None = None) -> str | None:
    """Poll the local service until it answers (None) or why it does not: its process exited, Neo4j or
    Postgres refuses the password or the code server cannot load the code (waiting cannot help), or
    `timeout` seconds passed."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        if pid is not None and not is_alive(pid):
            return f"process {pid} exited"
        try:
            _local_check(name, settings, pid)
            return None
        except FatalProbeError as error:
            return str(error)
        except Exception as error:  # noqa: BLE001 - any failure means "not ready yet"
            last = f"{type(error).__name__}: {error}"
            if "Unauthorized" in last or "authentication failure" in last:
                return f"neo4j rejects the password (NEO4J_PASSWORD differs from the server's): {last}"
        if time.monotonic() > deadline:
            return f"no answer after {timeout:.0f} s: {last}"
        time.sleep(0.5)
