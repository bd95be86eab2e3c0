"""The project's local real services (Neo4j over Bolt, the Milvus standalone server, PostgreSQL for the team's
Dagster instance, and the team's Dagster itself: code server, webserver, daemon), without Docker.

The one implementation of start / stop / restart / status (`python -m tv5_assets.local_services`,
wrapped by `scripts/services`), of their settings (environment, then `.env`, then defaults) and of
their readiness probes; tests and benchmarks import it instead of keeping their own copies.
"""

from __future__ import annotations

from tv5_assets.local_services.control import ServiceStatus, exclusive, restart, start, status, stop, targets
from tv5_assets.local_services.errors import FatalProbeError, ServiceError
from tv5_assets.local_services.neo4j_server import DEPENDENCIES as NEO4J_JARS
from tv5_assets.local_services.neo4j_server import java_command as neo4j_java_command
from tv5_assets.local_services.private import PrivateNeo4j
from tv5_assets.local_services.probes import milvus_answers, neo4j_answers, postgres_answers, wait_ready
from tv5_assets.local_services.processes import (
                                                 free_port,
                                                 group_members,
                                                 is_alive,
                                                 process_tree,
                                                 running_pid,
                                                 wait_gone,
)
from tv5_assets.local_services.settings import (
                                                ENV_FILE,
                                                DAGSTER_PROCESSES,
                                                ROOT,
                                                SERVICES,
                                                STATE_DIR,
                                                TEAM,
                                                Neo4jConnection,
                                                ServiceSettings,
                                                ensure_env_file,
                                                env_file_values,
)

CLI_MODULE = "tv5_assets.local_services"  # `python -m` this to control the services from another process

__all__ = [
    "CLI_MODULE", "DAGSTER_PROCESSES", "ENV_FILE", "NEO4J_JARS", "ROOT", "SERVICES", "STATE_DIR", "TEAM",
    "FatalProbeError", "Neo4jConnection", "PrivateNeo4j", "ServiceError", "ServiceSettings", "ServiceStatus",
    "ensure_env_file", "env_file_values", "exclusive", "free_port", "group_members", "is_alive", "milvus_answers",
    "neo4j_answers", "neo4j_java_command", "postgres_answers", "process_tree", "restart", "running_pid", "start",
    "status", "stop", "targets", "wait_gone", "wait_ready",
]
