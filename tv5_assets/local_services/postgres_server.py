"""The project's own PostgreSQL cluster (Debian's PostgreSQL 15 binaries), for the team's Dagster instance.

- `prepare`: the data directory (`POSTGRES_DATA_DIR`) owned by an unprivileged OS user (`POSTGRES_OS_USER`,
  Debian's `postgres`, when we run as root: PostgreSQL refuses to run as root; ourselves otherwise), an
  `initdb` the first time only (UTF-8, C.UTF-8), and the project's pg_hba.conf: `peer` on the unix socket
  for the cluster's superuser (the OS user), `scram-sha-256` passwords over TCP from 127.0.0.1, nothing else.
- `launch`: the postmaster itself in the foreground of its own session (so the pid file names it and
  `stop` can signal it), `listen_addresses=127.0.0.1` on `DAGSTER_POSTGRES_PORT`, its unix socket in the
  data directory (not /var/run), logs to data/services/postgres.log.
- `bootstrap`: once the socket answers, the role `DAGSTER_POSTGRES_USER` (created, else its password set
  to `DAGSTER_POSTGRES_PASSWORD`: .env stays the one source of the password) and the database
  `DAGSTER_POSTGRES_DB` it owns. Idempotent: a start on an initialised cluster only starts it.
- `check`: readiness is a real login with the password over TCP (`SELECT 1` through psycopg2).

`stop` sends SIGINT (PostgreSQL's "fast" shutdown: ends the sessions, checkpoints, exits), not SIGTERM
("smart": waits for every client to disconnect, which a running daemon never does).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tv5_assets.local_services.errors import FatalProbeError, ServiceError
from tv5_assets.local_services.processes import is_alive, spawn
from tv5_assets.local_services.settings import ServiceSettings

STOP_SIGNAL = signal.SIGINT  # fast shutdown
SOCKET_PATH_MAX = 107  # sun_path: the socket's path must fit
HBA = """\
# tv5-assets (tv5_assets/local_services/postgres_server.py): the cluster's OS user on the unix socket in the
# data directory, password logins (scram-sha-256) over TCP from 127.0.0.1 only; the server listens nowhere else.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 peer
host    all       all   127.0.0.1/32  scram-sha-256
"""


class AuthenticationFailed(FatalProbeError):
    """The server rejects the role's password: waiting cannot help."""


def bin_dir(settings: ServiceSettings) -> Path:
    """Where initdb, postgres and psql are: POSTGRES_BIN_DIR, else the real directory of `postgres` on
    PATH, else the newest /usr/lib/postgresql/*/bin."""
    candidates = [Path(settings.postgres_bin_dir)] if settings.postgres_bin_dir else []
    if not candidates:
        found = shutil.which("postgres")
        if found:
            candidates.append(Path(found).resolve().parent)  # Debian puts symlinks on PATH
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                          key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
        candidates += versions
    for directory in candidates:
        if all((directory / tool).is_file() for tool in ("initdb", "postgres", "psql")):
            return directory
    raise ServiceError("PostgreSQL binaries (initdb, postgres, psql) not found"
                       + (f" in POSTGRES_BIN_DIR={settings.postgres_bin_dir}" if settings.postgres_bin_dir else
                          " on PATH or in /usr/lib/postgresql/*/bin")
                       + ": install them (Debian: apt-get install postgresql) or set POSTGRES_BIN_DIR")


def os_user(settings: ServiceSettings) -> pwd.struct_passwd:
    """The OS user that owns and runs the cluster: POSTGRES_OS_USER when we are root, else ourselves."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    try:
        user = pwd.getpwnam(settings.postgres_os_user)
    except KeyError:
        raise ServiceError(
            f"OS user {settings.postgres_os_user!r} does not exist: PostgreSQL refuses to run as root, so the "
            "cluster runs as an unprivileged user. Debian's postgresql package creates `postgres`; or create "
            f"one (`useradd --system --user-group --no-create-home {settings.postgres_os_user}`) or set "
            "POSTGRES_OS_USER to an existing unprivileged user") from None
    if user.pw_uid == 0:
        raise ServiceError(f"POSTGRES_OS_USER={settings.postgres_os_user} is root: PostgreSQL refuses to run as "
                           "root; name an unprivileged user")
    return user


def _as(user: pwd.struct_passwd) -> tuple[int, int] | None:
    return (user.pw_uid, user.pw_gid) if os.geteuid() == 0 else None


def _env(user: pwd.struct_passwd, directory: Path) -> dict[str, str]:
    return {"PATH": f"{directory}:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": user.pw_dir,
            "USER": user.pw_name, "LOGNAME": user.pw_name, "TZ": os.environ.get("TZ", "UTC")}


def _run(command: list[str], user: pwd.struct_passwd, directory: Path, cwd: Path, *, stdin: str | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess:
    ids = {} if _as(user) is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    return subprocess.run(command, cwd=cwd, env=_env(user, directory), input=stdin, capture_output=True,
                          text=True, timeout=timeout, check=False, **ids)


def prepare(settings: ServiceSettings, say: Callable[[str], None]) -> None:
    """The data directory, owned by the OS user, initialised once (initdb), with the project's pg_hba.conf."""
    data, directory, user = settings.postgres_data, bin_dir(settings), os_user(settings)
    socket_path = data / f".s.PGSQL.{settings.dagster_postgres_port}"
    if len(str(socket_path)) > SOCKET_PATH_MAX:
        raise ServiceError(f"POSTGRES_DATA_DIR is too deep for a unix socket ({socket_path}: "
                           f"{len(str(socket_path))} > {SOCKET_PATH_MAX} bytes): choose a shorter path")
    data.mkdir(parents=True, exist_ok=True)
    if _as(user) is not None:
        os.chown(data, user.pw_uid, user.pw_gid)
    data.chmod(0o700)
    # the OS user must be able to reach it: every parent traversable (pytest's 0700 tmp dirs are not)
    reach = _run(["test", "-w", str(data), "-a", "-x", str(data)], user, directory, Path("/"))
    if reach.returncode != 0:
        raise ServiceError(f"OS user {user.pw_name!r} cannot reach {data}: a parent directory is not traversable "
                           "for it (chmod o+x the parents, or choose another POSTGRES_DATA_DIR)")
    if (data / "PG_VERSION").is_file():
        return
    if any(data.iterdir()):
        raise ServiceError(f"{data} is neither empty nor a PostgreSQL cluster (no PG_VERSION): move it away or "
                           "choose another POSTGRES_DATA_DIR")
    say(f"initialising a PostgreSQL cluster in {data} (owner: OS user {user.pw_name})")
    done = _run([str(directory / "initdb"), "-D", str(data), "--encoding=UTF8", "--locale=C.UTF-8",
                 "--auth-local=peer", "--auth-host=scram-sha-256", "--no-instructions"], user, directory, data)
    if done.returncode != 0:
        raise ServiceError(f"initdb failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    hba = data / "pg_hba.conf"
    hba.write_text(HBA)
    if _as(user) is not None:
        os.chown(hba, user.pw_uid, user.pw_gid)
    hba.chmod(0o600)


def command(settings: ServiceSettings) -> list[str]:
    """The postmaster's command line: network settings given here, so they follow the settings on each start."""
    data = settings.postgres_data
    return [str(bin_dir(settings) / "postgres"), "-D", str(data),
            "-c", "listen_addresses=127.0.0.1", "-c", f"port={settings.dagster_postgres_port}",
            "-c", f"unix_socket_directories={data}", "-c", "unix_socket_permissions=0700",
            "-c", "password_encryption=scram-sha-256", "-c", "log_destination=stderr", "-c", "logging_collector=off"]


def launch(settings: ServiceSettings, log: Path, say: Callable[[str], None]) -> int:
    """Initialise if needed, start the postmaster in the background (as the OS user); returns its pid."""
    prepare(settings, say)
    user = os_user(settings)
    return spawn(command(settings), settings.postgres_data, _env(user, bin_dir(settings)), log, _as(user))


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"  # standard_conforming_strings is on: backslashes are literal


def _identifier(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def bootstrap(settings: ServiceSettings, pid: int | None, timeout: float) -> None:
    """Wait until the unix socket answers the superuser, then make the role (with the password) and its database."""
    if not settings.dagster_postgres_password:
        raise ServiceError("DAGSTER_POSTGRES_PASSWORD is empty (start writes a random one to .env)")
    data, directory, user = settings.postgres_data, bin_dir(settings), os_user(settings)
    psql = [str(directory / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(data),
            "-p", str(settings.dagster_postgres_port), "-U", user.pw_name, "-d", "postgres"]
    deadline, last = time.monotonic() + timeout, ""
    while True:
        ping = _run([*psql, "-c", "SELECT 1"], user, directory, data, timeout=30)
        if ping.returncode == 0:
            break
        last = ping.stderr.strip()
        if pid is not None and not is_alive(pid):
            raise ServiceError(f"postgres exited before its socket answered: {last}")
        if time.monotonic() > deadline:
            raise ServiceError(f"postgres's socket did not answer within {timeout:.0f} s: {last}")
        time.sleep(0.3)
    role, db = settings.dagster_postgres_user, settings.dagster_postgres_db
    sql = (f"SELECT 'CREATE ROLE {_identifier(role)}' WHERE NOT EXISTS "
           f"(SELECT FROM pg_roles WHERE rolname = {_literal(role)})\\gexec\n"
           f"ALTER ROLE {_identifier(role)} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
           f"PASSWORD {_literal(settings.dagster_postgres_password)};\n"
           f"SELECT 'CREATE DATABASE {_identifier(db)} OWNER {_identifier(role)}' WHERE NOT EXISTS "
           f"(SELECT FROM pg_database WHERE datname = {_literal(db)})\\gexec\n"
           f"ALTER DATABASE {_identifier(db)} OWNER TO {_identifier(role)};\n")
    done = _run([*psql, "-f", "-"], user, directory, data, stdin=sql, timeout=60)
    if done.returncode != 0:  # the statements are not echoed: the password stays out of the message
        raise ServiceError(f"could not create the role {role!r} and database {db!r}: {done.stderr.strip()}")


def check(settings: ServiceSettings, timeout: float = 5.0) -> None:
    """Raise unless a password login over TCP to 127.0.0.1 answers `SELECT 1`."""
    import psycopg2

    try:
        connection = psycopg2.connect(host="127.0.0.1", port=settings.dagster_postgres_port,
                                      user=settings.dagster_postgres_user,
                                      password=settings.dagster_postgres_password or None,
                                      dbname=settings.dagster_postgres_db, connect_timeout=max(1, int(timeout)))
    except psycopg2.OperationalError as error:
        if "password authentication failed" in str(error):
            raise AuthenticationFailed(
                f"postgres rejects {settings.dagster_postgres_user!r}'s password (DAGSTER_POSTGRES_PASSWORD "
                "differs from the server's: `scripts/services start postgres` sets it again)") from None
        raise
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            if cursor.fetchone() != (1,):
                raise RuntimeError("SELECT 1 did not return 1")
    finally:
        connection.close()
