"""The team's Dagster without Docker: one code server, the webserver and the daemon on one team instance.

What `scripts/services start team` runs after Postgres, Neo4j and the Milvus server answer (the same shape
as Dagster's own deployment, examples/deploy_docker, with local processes instead of containers):

- `prepare`: DAGSTER_HOME (`DAGSTER_TEAM_HOME`, default data/dagster-team) through
  `tv5_assets.platform.instance.prepare_home("team")` (dagster.yaml on Postgres, every store pool's limit;
  a store pool left without a limit fails the start, `tv5_assets.core.pools.missing_limits`), and a
  workspace.yaml there that points at the code server's gRPC port.
- `dagster-code-server`: `dagster code-server start -h 127.0.0.1 -p $DAGSTER_CODE_SERVER_PORT -m
  tv5_assets.definitions`: a proxy that loads the project in one `dagster api grpc` child (the only
  long-lived process that imports it; the UI's "Reload" restarts that child) and launches the runs. No
  `--heartbeat`: it never shuts itself down when the webserver or the daemon go quiet.
- `dagster-webserver` (`-h 127.0.0.1 -p $DAGSTER_WEBSERVER_PORT -w workspace.yaml`) and `dagster-daemon run
  -w workspace.yaml`: both only talk to the code server over gRPC, never import the project.

Every process has its own session (process group, pid file, log in data/services/), so killing one
(the webserver, say) leaves the others running; `stop` sends SIGTERM to its group, then SIGKILL.

Their environment: `.env`, then this process's environment over it, then what the stack fixes: DAGSTER_HOME,
TV5_INSTANCE=team, the DAGSTER_POSTGRES_* values, the local Neo4j (NEO4J_URI/USER/PASSWORD) and Milvus
server (TV5_MILVUS_URI=http://127.0.0.1:$MILVUS_PORT) that `start team` runs, and unless set otherwise
TV5_EXECUTOR=in_process and HF_HUB_OFFLINE=1.

They run in DAGSTER_HOME, not in the repo: Dagster's CLI loads the `.env` of its working directory *over*
the environment (in the code server and in every run worker), which would let the repo's `.env` override
what the stack fixes (a second stack on other ports, the tests', would reach the first one's Postgres).
So the `.env` values are passed here, with the environment's precedence, and the path settings that are
relative (TV5_DATA_DIR, TV5_LANDING_DIR, TV5_MODEL_CACHE, XDG_CACHE_HOME, a TV5_MOVIELENS_SOURCE
directory) are made absolute against the repo root, where `dagster dev` and the scripts resolve them.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tv5_assets.local_services.errors import FatalProbeError, ServiceError
from tv5_assets.local_services.processes import spawn
from tv5_assets.local_services.settings import ENV_FILE, ROOT, ServiceSettings, env_file_values

LOCATION_NAME = "tv5_assets"
DEFINITIONS_MODULE = "tv5_assets.definitions"
DAEMON_HEARTBEAT_MAX_AGE_S = 120  # the daemons beat every 30 s
TEAM_DEFAULTS = {"TV5_EXECUTOR": "in_process", "HF_HUB_OFFLINE": "1", "TV5_DATA_DIR": "data"}
PATH_SETTINGS = ("TV5_DATA_DIR", "TV5_LANDING_DIR", "TV5_MODEL_CACHE", "XDG_CACHE_HOME")


class CodeLoadFailed(FatalProbeError):
    """The code server runs but could not load the definitions: waiting cannot help."""


def workspace_file(settings: ServiceSettings) -> Path:
    return settings.team_home / "workspace.yaml"


def instance_variables(settings: ServiceSettings) -> dict[str, str]:
    """What the team instance's dagster.yaml reads from the environment (`{env: ...}`)."""
    from tv5_assets.platform.instance import compute_log_dir

    home = settings.team_home.resolve()
    return {"DAGSTER_POSTGRES_HOST": settings.dagster_postgres_host,
            "DAGSTER_POSTGRES_PORT": str(settings.dagster_postgres_port),
            "DAGSTER_POSTGRES_USER": settings.dagster_postgres_user,
            "DAGSTER_POSTGRES_PASSWORD": settings.dagster_postgres_password,
            "DAGSTER_POSTGRES_DB": settings.dagster_postgres_db,
            "TV5_COMPUTE_LOG_DIR": os.environ.get("TV5_COMPUTE_LOG_DIR") or str(compute_log_dir(home))}


def environment(settings: ServiceSettings, env_file: Path = ENV_FILE) -> dict[str, str]:
    """The environment of the three Dagster processes (see the module's docstring)."""
    from tv5_assets.platform.instance import team_environment

    env = {**env_file_values(env_file), **os.environ}
    for key, value in TEAM_DEFAULTS.items():
        env[key] = env.get(key) or value
    for key in PATH_SETTINGS:
        if env.get(key) and not os.path.isabs(env[key]):
            env[key] = str(ROOT / env[key])
    source = env.get("TV5_MOVIELENS_SOURCE", "")
    if source and not os.path.isabs(source) and (ROOT / source).exists():
        env["TV5_MOVIELENS_SOURCE"] = str(ROOT / source)
    home = settings.team_home.resolve()
    env |= instance_variables(settings)
    env |= {"DAGSTER_HOME": str(home), "TV5_INSTANCE": "team",
            "NEO4J_URI": settings.local_bolt_uri(), "NEO4J_USER": "neo4j", "NEO4J_PASSWORD": settings.neo4j_password,
            "TV5_MILVUS_URI": f"http://127.0.0.1:{settings.milvus_port}",
            "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])}
    env |= team_environment(home, env)  # fails naming DAGSTER_POSTGRES_PASSWORD when it is empty
    return env


@contextmanager
def patched_environ(values: dict[str, str]) -> Iterator[None]:
    """`values` in os.environ for the block (the instance's dagster.yaml resolves `{env: ...}` from it)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def team_instance(settings: ServiceSettings):
    """The team instance, opened in this process."""
    import dagster as dg

    with patched_environ(instance_variables(settings)):
        instance = dg.DagsterInstance.from_config(str(settings.team_home.resolve()))
    with instance:
        yield instance


def prepare(settings: ServiceSettings, env_file: Path = ENV_FILE,
            say: Callable[[str], None] = print) -> dict[str, str]:
    """Write the team home (dagster.yaml, the store pools' limits, workspace.yaml) once Postgres answers;
    returns the processes' environment. Fails loudly when a store pool is left without a limit."""
    from tv5_assets.core.pools import STORE_POOLS, missing_limits
    from tv5_assets.local_services import postgres_server
    from tv5_assets.platform.instance import prepare_home

    try:
        postgres_server.check(settings)
    except Exception as error:  # noqa: BLE001
        raise ServiceError(f"the team instance needs Postgres on 127.0.0.1:{settings.dagster_postgres_port}, "
                           f"which does not answer ({error}): `scripts/services start postgres` (or start team)") \
            from None
    try:
        env = environment(settings, env_file)
        home = settings.team_home.resolve()
        with patched_environ(instance_variables(settings)):
            prepare_home("team", home)
        with team_instance(settings) as instance:
            missing = missing_limits(instance)
    except ServiceError:
        raise
    except Exception as error:  # noqa: BLE001 - the instance could not be written or opened
        raise ServiceError(f"could not prepare the team instance in {settings.team_home}: "
                           f"{type(error).__name__}: {error}") from error
    if missing:
        raise ServiceError(f"store pools without a limit on the team instance ({home}): {', '.join(missing)}; "
                           "refusing to start the daemon with unguarded stores (python -m tv5_assets.platform pools "
                           "apply)")
    workspace = workspace_file(settings)
    workspace.write_text(
        "# tv5-assets: written by `scripts/services start team` (tv5_assets/local_services/dagster_stack.py)\n"
        "load_from:\n  - grpc_server:\n      host: 127.0.0.1\n"
        f"      port: {settings.dagster_code_server_port}\n      location_name: {LOCATION_NAME}\n")
    say(f"team instance ready in {home} (Postgres 127.0.0.1:{settings.dagster_postgres_port}/"
        f"{settings.dagster_postgres_db}; store pools limited: {', '.join(STORE_POOLS)})")
    return env


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.is_file():
        raise ServiceError(f"{path} not found: the team stack runs from the project's virtual environment "
                           "(scripts/setup)")
    return str(path)


def command(name: str, settings: ServiceSettings) -> list[str]:
    workspace = str(workspace_file(settings).resolve())
    if name == "dagster-code-server":
        return [_tool("dagster"), "code-server", "start", "-h", "127.0.0.1", "-p",
                str(settings.dagster_code_server_port), "-m", DEFINITIONS_MODULE, "-d", str(ROOT),
                "--location-name", LOCATION_NAME]
    if name == "dagster-webserver":
        return [_tool("dagster-webserver"), "-h", "127.0.0.1", "-p", str(settings.dagster_webserver_port),
                "-w", workspace]
    if name == "dagster-daemon":
        return [_tool("dagster-daemon"), "run", "-w", workspace]
    raise ValueError(name)


def launch(name: str, settings: ServiceSettings, env: dict[str, str], log: Path) -> int:
    """Start one of the three processes in the background (in DAGSTER_HOME: see the module's docstring);
    returns its pid."""
    return spawn(command(name, settings), Path(env["DAGSTER_HOME"]), env, log)


def check(name: str, settings: ServiceSettings, pid: int | None = None, timeout: float = 5.0) -> None:
    """Raise unless the process answers: the code server lists its repository (the definitions loaded), the
    webserver answers GET /server_info, the daemon's every required daemon has beaten since `pid` started."""
    if name == "dagster-code-server":
        from dagster._grpc.client import DagsterGrpcClient
        from dagster._serdes import deserialize_value
        from dagster._utils.error import SerializableErrorInfo

        answer = deserialize_value(DagsterGrpcClient(port=settings.dagster_code_server_port,
                                                     host="127.0.0.1").list_repositories())
        if isinstance(answer, SerializableErrorInfo):
            raise CodeLoadFailed(f"the code server could not load {DEFINITIONS_MODULE}: {answer.to_string()[-3000:]}")
    elif name == "dagster-webserver":
        url = f"http://127.0.0.1:{settings.dagster_webserver_port}/server_info"
        with urllib.request.urlopen(url, timeout=timeout) as response:
            info = json.loads(response.read())
        if "dagster_webserver_version" not in info:
            raise RuntimeError(f"unexpected /server_info: {info}")
    elif name == "dagster-daemon":
        import psutil

        since = max(psutil.Process(pid).create_time() if pid else 0.0, time.time() - DAEMON_HEARTBEAT_MAX_AGE_S)
        with team_instance(settings) as instance:
            required = instance.get_required_daemon_types()
            beats = instance.get_daemon_heartbeats()
        missing = [kind for kind in required if kind not in beats or beats[kind].timestamp < since]
        if missing:
            raise RuntimeError(f"no recent heartbeat from {', '.join(missing)}")
    else:
        raise ValueError(name)
