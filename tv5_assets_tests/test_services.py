"""The local services package (`tv5_assets.local_services`, behind `scripts/services`): its settings and
`.env` handling, start / status / stop of private instances of the real servers (own port, data and
state directories: the shared servers are not touched), the CLI's lines and exit codes, and the shared
servers themselves: Neo4j over Bolt with auth, the Milvus standalone server, loopback only. PostgreSQL
(the team instance's database) is only ever started privately here. The team stack: test_team_stack.py.

The shared servers are started when they are not running and left running.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest

from tv5_assets import local_services as ls
from tv5_assets.local_services import dagster_stack, postgres_server
from tv5_assets_tests import services as svc

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No service variable in the environment (scripts/test exports .env's)."""
    svc.clean_service_environment(monkeypatch)
    return monkeypatch


# ------------------------------------------------------------------ settings and .env (no server)
def test_settings_come_from_the_environment_then_env_file_then_defaults(tmp_path: Path, clean_env) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("export NEO4J_HEAP='3g'\nMILVUS_PORT=\"19999\"\nNEO4J_PAGECACHE=\n# NEO4J_TX_MEMORY=9g\n"
                        "SOMETHING_ELSE=x\nNEO4J_HOME_DIR=data/elsewhere\n")
    settings = ls.ServiceSettings(_env_file=env_file)
    assert (settings.neo4j_heap, settings.milvus_port) == ("3g", 19999)  # export prefix and quotes
    assert (settings.neo4j_pagecache, settings.neo4j_tx_memory) == ("512m", "1g")  # empty / commented: default
    assert settings.neo4j_home == ls.ROOT / "data" / "elsewhere"  # relative: under the repo root
    assert settings.services_stop_timeout == 60 and settings.neo4j_bolt_port == 7687

    clean_env.setenv("NEO4J_HEAP", "4g")
    clean_env.setenv("MILVUS_PORT", "")  # empty counts as unset, as in the bash script
    clean_env.setenv("NEO4J_HOME_DIR", str(tmp_path / "home"))
    settings = ls.ServiceSettings(_env_file=env_file)
    assert (settings.neo4j_heap, settings.milvus_port, settings.neo4j_home) == ("4g", 19999, tmp_path / "home")
    assert settings.neo4j_connection() == ls.Neo4jConnection("bolt://127.0.0.1:7687", "neo4j", "")
    assert settings.milvus_server_uri() == "http://127.0.0.1:19999"
    assert ls.env_file_values(env_file)["NEO4J_HEAP"] == "3g" and ls.env_file_values(tmp_path / "none") == {}


_POSTGRES_KEYS = {"DAGSTER_POSTGRES_HOST": "127.0.0.1", "DAGSTER_POSTGRES_PORT": "5432",
                  "DAGSTER_POSTGRES_USER": "dagster", "DAGSTER_POSTGRES_DB": "dagster"}


def test_env_file_gets_random_passwords_and_only_missing_keys(tmp_path: Path, clean_env) -> None:
    env_file, said = tmp_path / ".env", []
    settings = ls.ensure_env_file(ls.ServiceSettings(_env_file=env_file), env_file, said.append)
    password, pg_password = settings.neo4j_password, settings.dagster_postgres_password
    for secret in (password, pg_password):
        assert len(secret) == 48 and int(secret, 16) >= 0
    assert password != pg_password
    assert ls.env_file_values(env_file) == {"NEO4J_PASSWORD": password, "DAGSTER_POSTGRES_PASSWORD": pg_password,
                                            "NEO4J_URI": "bolt://127.0.0.1:7687", "NEO4J_USER": "neo4j",
                                            "MILVUS_URI": "http://127.0.0.1:19530", **_POSTGRES_KEYS}
    assert env_file.stat().st_mode & 0o777 == 0o600
    assert said == [f"generated a random NEO4J_PASSWORD and wrote it to {env_file}",
                    f"generated a random DAGSTER_POSTGRES_PASSWORD and wrote it to {env_file}",
                    f"created {env_file} (gitignored)"]
    before, said = env_file.read_text(), []
    again = ls.ensure_env_file(ls.ServiceSettings(_env_file=env_file), env_file, said.append)
    assert (again.neo4j_password, again.dagster_postgres_password) == (password, pg_password)
    assert env_file.read_text() == before and said == []

    # keys already there are kept (even empty ones); a password from the environment is not written
    other = tmp_path / "other.env"
    other.write_text("NEO4J_USER=someone\nMILVUS_URI=\nNEO4J_URI=bolt://db.example:7687\nDAGSTER_POSTGRES_HOST=db\n"
                     "DAGSTER_POSTGRES_DB=")  # no final newline
    clean_env.setenv("NEO4J_PASSWORD", "from-the-environment")
    clean_env.setenv("DAGSTER_POSTGRES_PASSWORD", "pg-from-the-environment")
    clean_env.setenv("NEO4J_BOLT_PORT", "7700")
    clean_env.setenv("DAGSTER_POSTGRES_PORT", "55432")
    settings = ls.ensure_env_file(ls.ServiceSettings(_env_file=other), other, said.append)
    assert settings.neo4j_password == "from-the-environment" and said == []
    assert settings.dagster_postgres_password == "pg-from-the-environment"
    assert ls.env_file_values(other) == {"NEO4J_USER": "someone", "MILVUS_URI": "",
                                         "NEO4J_URI": "bolt://db.example:7687", "DAGSTER_POSTGRES_HOST": "db",
                                         "DAGSTER_POSTGRES_DB": "", "DAGSTER_POSTGRES_PORT": "55432",
                                         "DAGSTER_POSTGRES_USER": "dagster"}
    missing = tmp_path / "missing.env"
    missing.write_text("NEO4J_PASSWORD=x\n")
    ls.ensure_env_file(ls.ServiceSettings(_env_file=missing), missing, said.append)
    assert ls.env_file_values(missing)["NEO4J_URI"] == "bolt://127.0.0.1:7700"


def test_targets_all_is_the_stores_and_team_is_the_whole_stack_in_start_order() -> None:
    assert ls.targets("all") == ("neo4j", "milvus")
    assert ls.targets("team") == ("postgres", "neo4j", "milvus", "dagster-code-server", "dagster-webserver",
                                  "dagster-daemon")
    assert ls.targets("postgres") == ("postgres",)
    with pytest.raises(ValueError, match="unknown service 'nosuch'"):
        ls.targets("nosuch")


def test_the_team_processes_get_the_stack_s_environment_with_absolute_paths(tmp_path: Path, clean_env) -> None:
    """.env under the environment, the servers the stack runs fixed, relative paths anchored at the repo
    (the processes run in DAGSTER_HOME, where Dagster would otherwise load a .env over the environment)."""
    env_file = tmp_path / ".env"
    env_file.write_text("TV5_DATA_DIR=lake\nTV5_EXECUTOR=multiprocess\nTV5_MILVUS_URI=data/milvus.db\nFROM_FILE=1\n"
                        "NEO4J_URI=bolt://elsewhere:7687\nTV5_MOVIELENS_SOURCE=tv5_assets\n")
    clean_env.setenv("TV5_EXECUTOR", "in_process")  # the environment beats .env
    for name in ("TV5_DATA_DIR", "TV5_MILVUS_URI", "TV5_MOVIELENS_SOURCE", "TV5_LANDING_DIR", "TV5_MODEL_CACHE",
                 "XDG_CACHE_HOME", "HF_HUB_OFFLINE", "DAGSTER_HOME", "TV5_INSTANCE", "TV5_COMPUTE_LOG_DIR"):
        clean_env.delenv(name, raising=False)
    settings = ls.ServiceSettings(_env_file=env_file, milvus_port=19999, neo4j_bolt_port=7777, neo4j_password="n",
                                  dagster_postgres_password="p", dagster_postgres_port=55432,
                                  dagster_team_home=str(tmp_path / "home"))
    env = dagster_stack.environment(settings, env_file)
    assert env["FROM_FILE"] == "1" and env["TV5_EXECUTOR"] == "in_process" and env["HF_HUB_OFFLINE"] == "1"
    assert env["TV5_DATA_DIR"] == str(ls.ROOT / "lake")
    assert env["TV5_MOVIELENS_SOURCE"] == str(ls.ROOT / "tv5_assets")  # an existing directory: anchored
    assert (env["TV5_MILVUS_URI"], env["NEO4J_URI"], env["NEO4J_PASSWORD"]) == (
        "http://127.0.0.1:19999", "bolt://127.0.0.1:7777", "n")
    assert (env["DAGSTER_HOME"], env["TV5_INSTANCE"]) == (str(tmp_path / "home"), "team")
    assert env["TV5_COMPUTE_LOG_DIR"] == str(tmp_path / "dagster-compute-logs")
    assert {k: env[k] for k in _POSTGRES_KEYS} == {**_POSTGRES_KEYS, "DAGSTER_POSTGRES_PORT": "55432"}
    assert env["DAGSTER_POSTGRES_PASSWORD"] == "p"
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(ls.ROOT)


def test_start_refuses_a_port_held_by_another_process(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        settings = ls.ServiceSettings(_env_file=tmp_path / ".env", milvus_port=port, neo4j_password="unused",
                                      dagster_postgres_password="unused")
        state = tmp_path / "state"
        [before] = ls.status("milvus", settings, state_dir=state)
        assert before.describe() == (f"milvus: not started by this script, but 127.0.0.1:{port} is in use by "
                                     "another process")
        with pytest.raises(ls.ServiceError, match=f"port 127.0.0.1:{port} is already in use.*set MILVUS_PORT"):
            ls.start("milvus", settings, env_file=tmp_path / ".env", state_dir=state, out=lambda _: None)
    assert ls.status("milvus", settings, state_dir=state)[0].describe() == "milvus: stopped"


# ------------------------------------------------------------------ private instances of the real servers
def _start_status_stop(name: str, settings: ls.ServiceSettings, tmp_path: Path) -> list[str]:
    """start, start again, status, stop, status through the package; returns what it said."""
    state, said = tmp_path / "state", []
    (tmp_path / ".env").touch()  # so that `start` has no file to create (and say so)
    try:
        ls.start(name, settings, env_file=tmp_path / ".env", state_dir=state, out=said.append)
        [running] = ls.status(name, settings, state_dir=state)
        assert running.answering and running.pid == ls.running_pid(name, state), said
        assert running.describe().startswith(f"{name}: running, answering on 127.0.0.1:{settings.port(name)} "
                                             f"(pid {running.pid}, RSS ")
        assert (state / f"{name}.pid").read_text().strip() == str(running.pid)
        ls.start(name, settings, env_file=tmp_path / ".env", state_dir=state, out=said.append)
        assert said[-1] == f"{name} already running (pid {running.pid})"
        ls.stop(name, settings, state_dir=state, out=said.append)
        assert not ls.is_alive(running.pid) and not (state / f"{name}.pid").exists()
        [stopped] = ls.status(name, settings, state_dir=state)
        assert (stopped.pid, stopped.answering, stopped.describe()) == (None, False, f"{name}: stopped")
        ls.stop(name, settings, state_dir=state, out=said.append)
        assert said[-1] == f"{name} not running"
    finally:
        ls.stop(name, settings, state_dir=state, out=lambda _: None)
    assert said[0].startswith(f"{name} starting (pid ") and said[1].startswith(f"{name} ready in ")
    assert said[3] == f"stopping {name} (pid {running.pid})" and said[4].startswith(f"{name} stopped (")
    return said


@pytest.mark.milvus_server
def test_a_private_milvus_starts_answers_and_stops(tmp_path: Path) -> None:
    """Its components live in the launcher's own network namespace, so they do not clash with the shared
    server's. (Milvus 2.3.5 also writes /run/milvus/standalone.pid, whatever its data directory, and
    removes it on stop; it ignores a failed lock on it, so two servers run side by side.)"""
    settings = ls.ServiceSettings(_env_file=tmp_path / ".env", milvus_port=ls.free_port(), neo4j_password="unused",
                                  dagster_postgres_password="unused", milvus_data_dir=str(tmp_path / "milvus"))
    try:
        _start_status_stop("milvus", settings, tmp_path)
        assert (tmp_path / "milvus" / "logs").is_dir()  # its data directory, not the shared server's
        assert "MILVUS_URI=http://127.0.0.1:" in (tmp_path / ".env").read_text()
    finally:
        shutil.rmtree(tmp_path / "milvus", ignore_errors=True)  # ~400 MB: the launcher copies the binary there


@pytest.mark.neo4j
@pytest.mark.extended  # the team stack starts and stops a private Neo4j in CI
def test_a_private_neo4j_starts_with_the_password_and_tunables_and_stops(tmp_path: Path) -> None:
    settings = ls.ServiceSettings(_env_file=tmp_path / ".env", neo4j_bolt_port=ls.free_port(),
                                  neo4j_home_dir=str(tmp_path / "home"), neo4j_password="private-password",
                                  dagster_postgres_password="unused",
                                  neo4j_heap="384m", neo4j_pagecache="64m", neo4j_tx_memory="128m",
                                  neo4j_java_opts="-XX:TieredStopAtLevel=1")
    state, said = tmp_path / "state", []
    try:
        ls.start("neo4j", settings, env_file=tmp_path / ".env", state_dir=state, out=said.append)
        pid = ls.running_pid("neo4j", state)
        command = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        assert b"-Xmx384m" in command and b"-XX:TieredStopAtLevel=1" in command
        assert command[-1] == str(tmp_path / "home").encode()
        connection = ls.Neo4jConnection(settings.local_bolt_uri(), "neo4j", "private-password")
        assert ls.neo4j_answers(connection)
        assert not ls.neo4j_answers(ls.Neo4jConnection(connection.uri, "neo4j", "wrong"))
    finally:
        ls.stop("neo4j", settings, state_dir=state, out=said.append)
    assert said[-1].startswith("neo4j stopped (") and not ls.is_alive(pid)
    assert "NEO4J_PASSWORD" not in (tmp_path / ".env").read_text()  # given, so not generated


# ------------------------------------------------------------------ a private PostgreSQL
@pytest.fixture
def pg_dir() -> Path:
    """A data directory's parent that PostgreSQL's OS user can traverse (pytest's tmp_path is root's only)."""
    with svc.shared_tmp_dir("tv5-pg-") as path:
        yield path


def _login(settings: ls.ServiceSettings, password: str, user: str | None = None):
    import psycopg2

    return psycopg2.connect(host="127.0.0.1", port=settings.dagster_postgres_port, connect_timeout=5,
                            user=user or settings.dagster_postgres_user, password=password,
                            dbname=settings.dagster_postgres_db)


def test_a_private_postgres_initialises_answers_with_the_env_password_and_keeps_its_data(
        tmp_path: Path, pg_dir: Path, clean_env) -> None:
    import psycopg2

    env_file, state, port, said = tmp_path / ".env", tmp_path / "state", ls.free_port(), []

    def settings() -> ls.ServiceSettings:  # environment (cleaned), then this .env: what the CLI would read
        return ls.ServiceSettings(_env_file=env_file, dagster_postgres_port=port,
                                  postgres_data_dir=str(pg_dir / "data"))

    try:
        ls.start("postgres", settings(), env_file=env_file, state_dir=state, out=said.append)
        values = ls.env_file_values(env_file)
        password = values["DAGSTER_POSTGRES_PASSWORD"]
        assert len(password) == 48
        assert {k: values[k] for k in _POSTGRES_KEYS} == {**_POSTGRES_KEYS, "DAGSTER_POSTGRES_PORT": str(port)}
        assert f"initialising a PostgreSQL cluster in {pg_dir / 'data'} (owner: OS user " in "\n".join(said)
        assert said[-2].startswith("postgres starting (pid ") and said[-1].startswith("postgres ready in ")
        [running] = ls.status("postgres", settings(), state_dir=state)
        assert running.answering and running.describe().startswith(
            f"postgres: running, answering on 127.0.0.1:{port} (pid {running.pid}, RSS ")
        pid = running.pid

        # a real login over TCP with the password from .env; the role owns its database and is no superuser
        with _login(settings(), password) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT current_user, rolsuper, pg_get_userbyid(datdba), inet_server_addr()::text "
                           "FROM pg_roles, pg_database WHERE rolname = current_user AND datname = current_database()")
            assert cursor.fetchone() == ("dagster", False, "dagster", "127.0.0.1/32")
            cursor.execute("CREATE TABLE kept (id int PRIMARY KEY, what text)")
            cursor.execute("INSERT INTO kept VALUES (1, 'survives a restart')")
        connection.close()
        for user, wrong in (("dagster", password + "x"), ("dagster", ""), ("postgres", "postgres")):
            with pytest.raises(psycopg2.OperationalError, match="password authentication failed|no password"):
                _login(settings(), wrong, user).close()
        assert not ls.postgres_answers(settings().model_copy(update={"dagster_postgres_password": "wrong"}))

        # as an unprivileged OS user, on loopback only, its socket in the data directory (not /var/run)
        owner = psutil.Process(pid).username()
        assert owner != "root" and owner == postgres_server.os_user(settings()).pw_name
        assert (pg_dir / "data" / f".s.PGSQL.{port}").is_socket()
        if shutil.which("ss"):
            tree = svc.process_tree(pid)
            mine = [l for l in svc.listening_sockets() if any(p in tree for _, p in l.processes)]
            assert {l.port for l in mine} == {port} and all(svc.is_loopback(l.address) for l in mine), mine
        hba = (pg_dir / "data" / "pg_hba.conf").read_text()
        assert "127.0.0.1/32  scram-sha-256" in hba and "trust" not in hba.replace("# ", "")

        # start again: a no-op
        ls.start("postgres", settings(), env_file=env_file, state_dir=state, out=said.append)
        assert said[-1] == f"postgres already running (pid {pid})" and ls.running_pid("postgres", state) == pid
        backends = svc.process_tree(pid) - {pid}
        assert backends  # checkpointer, walwriter, ...: they leave the postmaster's process group

        ls.stop("postgres", settings(), state_dir=state, out=said.append)
        assert said[-2] == f"stopping postgres (pid {pid})" and said[-1].startswith("postgres stopped (")
        assert not any(ls.is_alive(p) for p in backends | {pid})
        assert ls.status("postgres", settings(), state_dir=state)[0].describe() == "postgres: stopped"
        assert not ls.postgres_answers(settings(), timeout=2)

        # start after stop: no new initdb, same password, the table is still there
        said.clear()
        ls.start("postgres", settings(), env_file=env_file, state_dir=state, out=said.append)
        assert not any("initialising" in line for line in said) and said[-1].startswith("postgres ready in ")
        assert ls.env_file_values(env_file)["DAGSTER_POSTGRES_PASSWORD"] == password
        with _login(settings(), password) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT what FROM kept WHERE id = 1")
            assert cursor.fetchone() == ("survives a restart",)
        connection.close()
    finally:
        ls.stop("postgres", settings(), state_dir=state, out=lambda _: None)


def test_postgres_takes_a_new_env_password_on_start(tmp_path: Path, pg_dir: Path, clean_env) -> None:
    """The password in .env is the one source: a start on a running cluster whose role has another one sets it."""
    env_file, state = tmp_path / ".env", tmp_path / "state"
    env_file.write_text("DAGSTER_POSTGRES_PASSWORD=first-password\nNEO4J_PASSWORD=unused\n")
    port = ls.free_port()

    def settings() -> ls.ServiceSettings:
        return ls.ServiceSettings(_env_file=env_file, dagster_postgres_port=port, postgres_data_dir=str(pg_dir / "d"))

    said: list[str] = []
    try:
        ls.start("postgres", settings(), env_file=env_file, state_dir=state, out=said.append)
        pid = ls.running_pid("postgres", state)
        env_file.write_text(env_file.read_text().replace("first-password", "second-password"))
        [state_now] = ls.status("postgres", settings(), state_dir=state)
        assert not state_now.answering and state_now.pid == pid
        ls.start("postgres", settings(), env_file=env_file, state_dir=state, out=said.append)
        assert said[-2:] == [f"postgres (pid {pid}) is running but does not answer yet; waiting",
                             f"postgres ready (pid {pid})"]
        _login(settings(), "second-password").close()
    finally:
        ls.stop("postgres", settings(), state_dir=state, out=lambda _: None)


@pytest.mark.skipif(os.geteuid() != 0, reason="as a normal user the cluster runs as that user")
def test_postgres_names_a_missing_os_user(tmp_path: Path, pg_dir: Path) -> None:
    settings = ls.ServiceSettings(_env_file=tmp_path / ".env", dagster_postgres_port=ls.free_port(),
                                  postgres_data_dir=str(pg_dir / "d"), postgres_os_user="tv5-no-such-user",
                                  neo4j_password="unused", dagster_postgres_password="unused")
    with pytest.raises(ls.ServiceError, match="OS user 'tv5-no-such-user' does not exist: PostgreSQL refuses to run "
                                              "as root.*POSTGRES_OS_USER"):
        ls.start("postgres", settings, env_file=tmp_path / ".env", state_dir=tmp_path / "state", out=lambda _: None)
    assert ls.running_pid("postgres", tmp_path / "state") is None


@pytest.mark.skipif(os.geteuid() != 0, reason="only root's private tmp dirs are out of the OS user's reach")
def test_postgres_explains_a_data_dir_its_os_user_cannot_reach(tmp_path: Path) -> None:
    settings = ls.ServiceSettings(_env_file=tmp_path / ".env", dagster_postgres_port=ls.free_port(),
                                  postgres_data_dir=str(tmp_path / "pg"),  # under pytest's 0700 directories
                                  neo4j_password="unused", dagster_postgres_password="unused")
    with pytest.raises(ls.ServiceError, match="cannot reach .*a parent directory is not traversable"):
        ls.start("postgres", settings, env_file=tmp_path / ".env", state_dir=tmp_path / "state", out=lambda _: None)


# ------------------------------------------------------------------ the CLI and the shared servers
def test_the_cli_prints_a_line_per_service_and_exits_0_only_if_all_answer(neo4j_server, milvus_server) -> None:
    wrapper = str(REPO / "scripts" / "services")
    for command in ([sys.executable, "-m", ls.CLI_MODULE, "status", "all"], [wrapper, "status"]):
        run = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120)
        assert run.returncode == 0, run
        lines = run.stdout.splitlines()
        assert [line.split(":", 1)[0] for line in lines] == ["neo4j", "milvus"]
        assert all(": running, answering on 127.0.0.1:" in line for line in lines), lines
    bad = subprocess.run([wrapper, "status", "nosuch"], capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


@pytest.mark.neo4j
def test_neo4j_bolt_answers_with_auth(neo4j_server: svc.Neo4jSettings) -> None:
    import neo4j

    assert neo4j_server.uri.startswith("bolt://127.0.0.1:")
    with neo4j.GraphDatabase.driver(neo4j_server.uri, auth=neo4j_server.auth) as driver:
        with driver.session() as session:
            assert session.run("RETURN 1 AS ok").single()["ok"] == 1
            comp = session.run("CALL dbms.components() YIELD name, versions, edition "
                               "RETURN name, versions[0] AS version, edition").single()
    assert comp["edition"] == "community"
    assert comp["version"].startswith("5.26.")


@pytest.mark.neo4j
def test_neo4j_rejects_wrong_password(neo4j_server: svc.Neo4jSettings) -> None:
    import neo4j
    from neo4j.exceptions import AuthError

    wrong = neo4j_server.password + "-wrong"
    with neo4j.GraphDatabase.driver(neo4j_server.uri, auth=(neo4j_server.user, wrong)) as driver:
        with pytest.raises(AuthError):
            driver.verify_connectivity()
    # and no anonymous access either
    with neo4j.GraphDatabase.driver(neo4j_server.uri, auth=None) as driver:
        with pytest.raises((AuthError, neo4j.exceptions.ClientError)):
            with driver.session() as session:
                session.run("RETURN 1").consume()


@pytest.mark.neo4j
@pytest.mark.skipif(os.environ.get("TV5_FAULT_TESTS") != "1",
                    reason="kills the shared local Neo4j: opt in with TV5_FAULT_TESTS=1")
def test_neo4j_committed_data_survives_a_crash(neo4j_server: svc.Neo4jSettings) -> None:
    """SIGKILL (no checkpoint, no clean shutdown) then restart: committed writes are recovered."""
    import neo4j

    marker = f"crash-{uuid.uuid4().hex}"
    with neo4j.GraphDatabase.driver(neo4j_server.uri, auth=neo4j_server.auth) as driver:
        driver.execute_query("CREATE (:Tv5ServicesProbe {marker: $m})", m=marker)
    old_pid = svc.kill_neo4j()
    assert not svc.neo4j_answers(neo4j_server, timeout=2)
    settings = svc.restart_neo4j()
    assert svc.service_pid("neo4j") not in (None, old_pid)
    with neo4j.GraphDatabase.driver(settings.uri, auth=settings.auth) as driver:
        recs, _, _ = driver.execute_query(
            "MATCH (p:Tv5ServicesProbe {marker: $m}) WITH p, count(*) AS n DELETE p RETURN n", m=marker)
    assert [r["n"] for r in recs] == [1]


@pytest.mark.milvus_server
def test_milvus_server_create_insert_index_search(milvus_server: svc.MilvusServerSettings) -> None:
    from pymilvus import DataType, MilvusClient

    assert milvus_server.uri.startswith("http://127.0.0.1:")
    name = f"tv5_services_probe_{uuid.uuid4().hex[:8]}"
    client = MilvusClient(uri=milvus_server.uri)
    try:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("title", DataType.VARCHAR, max_length=128)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=8)
        index = client.prepare_index_params()
        index.add_index(field_name="vec", index_type="HNSW", metric_type="COSINE",
                        params={"M": 8, "efConstruction": 64})
        client.create_collection(name, schema=schema, index_params=index)
        rows = [{"id": i, "title": f"movie {i}", "vec": [float((i * 7 + j * 3) % 11) + 0.5 for j in range(8)]}
                for i in range(200)]
        assert client.insert(name, rows)["insert_count"] == 200
        client.flush(name)
        client.load_collection(name)
        desc = client.describe_index(name, "vec")
        assert desc["index_type"] == "HNSW"
        hits = client.search(name, data=[rows[42]["vec"]], limit=3, output_fields=["title"],
                             search_params={"metric_type": "COSINE", "params": {"ef": 32}})
        top = hits[0][0]
        assert top["distance"] == pytest.approx(1.0, abs=1e-4)
        assert top["entity"]["title"] == f"movie {top['id']}"
        assert rows[top["id"]]["vec"] == rows[42]["vec"]  # an exact duplicate vector or 42 itself
        got = client.query(name, filter="id in [3, 4]", output_fields=["title"])
        assert sorted(r["title"] for r in got) == ["movie 3", "movie 4"]
    finally:
        if client.has_collection(name):
            client.drop_collection(name)
        client.close()


@pytest.mark.neo4j
@pytest.mark.milvus_server
def test_service_ports_listen_on_loopback_only(neo4j_server: svc.Neo4jSettings,
                                               milvus_server: svc.MilvusServerSettings) -> None:
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) not installed")
    ours: dict[int, str] = {}
    for name in ("neo4j", "milvus"):
        pid = svc.service_pid(name)
        assert pid is not None, f"{name} is not running under tv5_assets.local_services"
        for p in svc.process_tree(pid):
            ours[p] = name
    listeners = svc.listening_sockets()
    service_ports = {int(neo4j_server.uri.rsplit(":", 1)[1]), int(milvus_server.uri.rsplit(":", 1)[1])}
    mine = [l for l in listeners
            if l.port in service_ports or any(pid in ours or pname == "milvus" for pname, pid in l.processes)]
    assert {l.port for l in mine} >= service_ports, f"service ports not listening: {listeners}"
    exposed = [l for l in mine if not svc.is_loopback(l.address)]
    assert not exposed, f"listening beyond loopback: {exposed}"
    # Milvus's own components (rootcoord, querynode, etcd, metrics ...) are invisible from here:
    # they live in the launcher's private network namespace; only the forwarder listens.
    assert not [l for l in listeners if any(pname == "milvus" for pname, _ in l.processes)]


def test_is_loopback() -> None:
    assert svc.is_loopback("127.0.0.1")
    assert svc.is_loopback("::1")
    assert svc.is_loopback("::ffff:127.0.0.1")
    for addr in ("*", "0.0.0.0", "::", "192.0.2.2", "fd00::2"):
        assert not svc.is_loopback(addr)
