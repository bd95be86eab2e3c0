"""The Dagster instance, chosen by one setting: `TV5_INSTANCE` = `embedded` (default) or `team`.

- `embedded`: SQLite files under `.dagster_home` (scripts/materialize, `dagster dev`, the tests): one person,
  one machine. Its dagster.yaml still queues runs on the stores' pools and monitors and retries runs.
- `team`: run, event and schedule storage on Postgres (`dagster-postgres`), the queued run coordinator,
  run monitoring, run retries and compute logs under the data directory (`dagster_team.yaml`), home in
  `data/dagster-team`, shared by one code server, the webserver and the daemon (`scripts/services start team`).

`prepare_home` writes the kind's dagster.yaml into the home (never over a file someone edited: only a
file that starts with the project's marker, or an empty one, is rewritten) and gives every store pool
its explicit limit, so both instances start guarded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import dagster as dg

from tv5_assets.core.pools import DEFAULT_LIMIT, apply_limits, missing_limits

Kind = Literal["embedded", "team"]
KINDS: tuple[Kind, ...] = ("embedded", "team")
ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = {"embedded": Path(__file__).with_name("dagster_embedded.yaml"),
             "team": Path(__file__).with_name("dagster_team.yaml")}
MARKER = "# tv5-assets:"
# what the team instance reads from the environment (dagster_team.yaml), with the defaults of a local Postgres
TEAM_ENV_DEFAULTS = {"DAGSTER_POSTGRES_HOST": "127.0.0.1", "DAGSTER_POSTGRES_PORT": "5432",
                     "DAGSTER_POSTGRES_USER": "dagster", "DAGSTER_POSTGRES_DB": "dagster"}
TEAM_SECRET = "DAGSTER_POSTGRES_PASSWORD"


def default_home(kind: Kind, root: Path = ROOT) -> Path:
    return root / ".dagster_home" if kind == "embedded" else root / "data" / "dagster-team"


def compute_log_dir(home: Path) -> Path:
    """Where the team instance keeps step logs: under the data directory, beside its home."""
    return home.parent / "dagster-compute-logs"


def write_config(home: Path, kind: Kind) -> bool:
    """Write the kind's dagster.yaml into `home` unless someone else's file is there. True when written."""
    home.mkdir(parents=True, exist_ok=True)
    target, wanted = home / "dagster.yaml", TEMPLATES[kind].read_text()
    current = target.read_text() if target.exists() else ""
    if current == wanted or (current.strip() and not current.startswith(MARKER)):
        return False
    target.write_text(wanted)
    return True


def team_environment(home: Path, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The variables the team instance needs, defaults filled in; fails naming the password when it is unset."""
    environ = dict(os.environ if environ is None else environ)
    values = {key: environ.get(key) or default for key, default in TEAM_ENV_DEFAULTS.items()}
    if not environ.get(TEAM_SECRET):
        raise dg.DagsterInvariantViolationError(
            f"{TEAM_SECRET} is not set: the team instance stores runs in Postgres. `scripts/services start postgres` "
            "starts the local one and writes a random password to .env (docker compose reads the same .env)")
    values[TEAM_SECRET] = environ[TEAM_SECRET]
    values["TV5_COMPUTE_LOG_DIR"] = environ.get("TV5_COMPUTE_LOG_DIR") or str(compute_log_dir(home))
    return values


def prepare_home(kind: Kind, home: Path | None = None, limit: int = DEFAULT_LIMIT) -> Path:
    """Write the instance's dagster.yaml and set every store pool's limit; returns DAGSTER_HOME.

    The team kind needs its Postgres variables in this process's environment (they are set here when
    missing, from `team_environment`)."""
    home = (home or default_home(kind)).resolve()
    write_config(home, kind)
    if kind == "team":
        for key, value in team_environment(home).items():
            os.environ.setdefault(key, value)
        Path(os.environ["TV5_COMPUTE_LOG_DIR"]).mkdir(parents=True, exist_ok=True)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        apply_limits(instance, limit)
        if missing := missing_limits(instance):  # pragma: no cover - set_concurrency_slots failed silently
            raise RuntimeError(f"store pools without a limit after setting them: {missing}")
    return home
