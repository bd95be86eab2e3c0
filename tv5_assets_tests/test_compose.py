"""docker-compose.yml, the team stack, checked without a Docker engine by Docker Compose's own loader.

`scripts/compose-check` runs compose-go (the library `docker compose` is built on: the Compose
Specification's schema, interpolation, consistency) on the file with placeholder secrets and prints the
resolved model; these tests read that model. What they cannot check here: that the image builds and
the containers start (no engine on these machines).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CHECK = REPO / "scripts" / "compose-check"
VALIDATOR = REPO / "build" / "compose-check" / "compose-check"  # what scripts/compose-check builds
COMPOSE_FILE = REPO / "docker-compose.yml"
PLACEHOLDER = "compose-check-placeholder"  # the secrets scripts/compose-check gives the file
DAGSTER = ("dagster_code", "dagster_webserver", "dagster_daemon")
REQUIRED = {"postgres", *DAGSTER, "neo4j", "milvus"}
PUBLISHED = {3000, 5432, 7474, 7687, 9091, 19530}
# every service has a health check, the daemon included (`dagster-daemon liveness-check`): none is exempt
WITHOUT_HEALTHCHECK: set[str] = set()
WORKSPACE = "/opt/dagster/workspace.yaml"


def _compose_check(*args: str | Path) -> subprocess.CompletedProcess[str]:
    # the first call on a machine builds the validator (about 10-15 s with the Go module proxy)
    return subprocess.run([str(CHECK), *map(str, args)], capture_output=True, text=True, timeout=300, cwd=REPO)


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    done = _compose_check("--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def services(model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return model["services"]


def test_compose_check_validates_the_file_and_says_what_it_validated() -> None:
    done = _compose_check()
    assert done.returncode == 0, done.stderr
    assert f"{COMPOSE_FILE} is valid (compose-go v2." in done.stdout
    for name in REQUIRED:
        assert f"  {name} " in done.stdout


def test_the_stack_runs_the_stores_postgres_and_a_team_dagster(services: dict[str, dict[str, Any]]) -> None:
    assert REQUIRED <= set(services), f"missing: {REQUIRED - set(services)}"


def test_every_published_port_is_bound_to_loopback(services: dict[str, dict[str, Any]]) -> None:
    published = {(name, port.get("host_ip"), int(port["published"]))
                 for name, service in services.items() for port in service.get("ports", [])}
    assert {port for _, _, port in published} == PUBLISHED
    assert [p for p in published if p[1] != "127.0.0.1"] == []
    assert ("dagster_webserver", "127.0.0.1", 3000) in published
    assert ("postgres", "127.0.0.1", 5432) in published


def test_every_service_has_a_health_check(services: dict[str, dict[str, Any]]) -> None:
    without = {name for name, service in services.items()
               if not service.get("healthcheck", {}).get("test") or service["healthcheck"].get("disable")}
    assert without == WITHOUT_HEALTHCHECK
    assert services["postgres"]["healthcheck"]["test"][1].startswith("pg_isready")
    assert services["dagster_code"]["healthcheck"]["test"][1:] == ["dagster", "api", "grpc-health-check", "-p", "4000"]
    assert "http://localhost:3000/server_info" in " ".join(services["dagster_webserver"]["healthcheck"]["test"])


def test_webserver_and_daemon_run_the_code_servers_image_without_a_build(services: dict[str, dict[str, Any]]) -> None:
    code = services["dagster_code"]
    assert Path(code["build"]["context"]) == REPO
    assert code["build"]["dockerfile"] == "Dockerfile" and (REPO / "Dockerfile").is_file()  # relative to the context
    for name in ("dagster_webserver", "dagster_daemon"):
        assert "build" not in services[name]
        assert services[name]["image"] == code["image"]
        assert services[name]["pull_policy"] == "never"  # a locally built name is never looked up in a registry
        depends = services[name]["depends_on"]
        assert {dep: depends[dep]["condition"] for dep in ("dagster_code", "postgres")} == \
            {"dagster_code": "service_healthy", "postgres": "service_healthy"}
    assert services["dagster_webserver"]["command"] == \
        ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", WORKSPACE]
    assert services["dagster_daemon"]["command"] == ["dagster-daemon", "run", "-w", WORKSPACE]


def test_the_workspace_points_at_the_code_server(services: dict[str, dict[str, Any]]) -> None:
    workspace = yaml.safe_load((REPO / "deploy" / "compose" / "workspace.yaml").read_text())
    assert workspace == {"load_from": [{"grpc_server": {"host": "dagster_code", "port": 4000,
                                                        "location_name": "tv5_assets"}}]}
    command = " ".join(services["dagster_code"]["command"])
    assert "code-server start -h 0.0.0.0 -p 4000 -m tv5_assets.definitions --location-name tv5_assets" in command
    dockerfile = (REPO / "Dockerfile").read_text()
    assert f"COPY deploy/compose/workspace.yaml {WORKSPACE}" in dockerfile


def _env_names(node: Any) -> set[str]:
    """The variables a dagster.yaml reads with `{env: NAME}`."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*map(_env_names, node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*map(_env_names, node)) if node else set()
    return set()


def test_every_dagster_process_gets_what_the_team_instance_reads(services: dict[str, dict[str, Any]]) -> None:
    template = REPO / "tv5_assets" / "platform" / "dagster_team.yaml"
    assert "COPY tv5_assets/platform/dagster_team.yaml ${DAGSTER_HOME}/dagster.yaml" in (REPO / "Dockerfile").read_text()
    if not template.is_file():
        pytest.skip(f"{template} is not there yet")
    wanted = _env_names(yaml.safe_load(template.read_text()))
    assert {"DAGSTER_POSTGRES_HOST", "DAGSTER_POSTGRES_PASSWORD"} <= wanted
    for name in DAGSTER:
        environment = services[name]["environment"]
        assert wanted <= set(environment), f"{name} lacks {wanted - set(environment)}"
        assert environment["DAGSTER_HOME"] == "/opt/dagster/home"
        assert environment["DAGSTER_POSTGRES_HOST"] == "postgres"
        assert environment["DAGSTER_POSTGRES_PORT"] == "5432"  # the port inside the compose network


def test_the_code_server_reaches_the_stores_on_the_compose_network(services: dict[str, dict[str, Any]]) -> None:
    environment = services["dagster_code"]["environment"]
    assert environment["TV5_DATA_DIR"] == "/opt/tv5/data"
    assert environment["TV5_MILVUS_URI"] == "http://milvus:19530"
    assert environment["NEO4J_URI"] == "bolt://neo4j:7687"
    assert environment["TV5_EXECUTOR"] == "in_process"
    assert environment["HF_HUB_OFFLINE"] == "1"
    # the secrets come from the throw-away env file: the checkout's real .env was not read
    assert environment["NEO4J_PASSWORD"] == PLACEHOLDER
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == PLACEHOLDER
    lake = {(v["source"], v["target"]) for v in services["dagster_code"]["volumes"]}
    assert (str(REPO / "data" / "compose" / "lake"), "/opt/tv5/data") in lake


def test_a_missing_postgres_password_is_refused_naming_the_fix(tmp_path: Path, model: dict[str, Any]) -> None:
    env_file = tmp_path / "only-neo4j.env"
    env_file.write_text("NEO4J_PASSWORD=x\n")
    done = subprocess.run([str(VALIDATOR), "-f", str(COMPOSE_FILE), "-env-file", str(env_file)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "required variable DAGSTER_POSTGRES_PASSWORD is missing a value" in done.stderr
    assert "scripts/services start postgres writes a random one to .env" in done.stderr


@pytest.mark.parametrize(("edit", "message"), [
    # a schema error: a key the Compose Specification does not have
    (("  dagster_webserver:\n", "  dagster_webserver:\n    restart_policy: always\n"),
     "services.dagster_webserver.restart_policy"),
    # a consistency error: depends_on names a service the file does not define
    (("      dagster_code:\n        condition: service_healthy\n",
      "      dagster_kode:\n        condition: service_healthy\n"),
     "depends on undefined service"),
])
def test_an_invalid_copy_of_the_file_is_rejected(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    text = COMPOSE_FILE.read_text()
    assert edit[0] in text
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(edit[0], edit[1], 1))
    done = _compose_check(broken)
    assert done.returncode == 1, done.stdout
    assert "is invalid" in done.stderr and message in done.stderr, done.stderr


def test_the_build_context_leaves_secrets_and_machine_state_out() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".env", ".venv", "data", ".git", "**/node_modules", "**/__pycache__"} <= ignored
