"""Neo4j over Bolt: the driver's life-cycle, retries on transient failures, and batched writes.

`Neo4jClient` is plain Python (the loader, tests and benchmarks use it directly); `Neo4jResource`
is its Dagster face: the client is created in `setup_for_execution` (failing there, with the URI
named, when the server does not answer) and closed in `teardown_after_execution`.

Retries: a statement or a write batch that fails with a transient error (deadlock, leader switch,
`ServiceUnavailable`, `SessionExpired`) is retried with exponential back-off, up to `max_retries`
times. A commit whose outcome is unknown (`IncompleteCommit`: the connection dropped during COMMIT)
is never retried, because a retried CREATE could duplicate rows; the load fails instead and the
next run rebuilds the graph from a cleared state.
"""

from __future__ import annotations

import logging
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import neo4j
from neo4j.exceptions import IncompleteCommit, ServiceUnavailable, SessionExpired, TransientError
from pydantic import Field, PrivateAttr

from tv5_assets import local_services
from tv5_assets.core.pools import hold_stores
from tv5_assets.core.retry import with_retries
from tv5_assets.core.settings import Settings
from tv5_assets.graph_store.offline_import import LocalServer

T = TypeVar("T")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
RETRYABLE = (TransientError, ServiceUnavailable, SessionExpired)
_OUT_OF_TX_MEMORY = "MemoryPoolOutOfMemoryError"
logger = logging.getLogger(__name__)


class Neo4jUnavailableError(RuntimeError):
    """The server does not answer (down, wrong port, or refusing the credentials)."""


class Neo4jAuthError(Neo4jUnavailableError):
    """The server answers but refuses the credentials: waiting will not help."""


def _out_of_tx_memory(exc: BaseException) -> bool:
    return _OUT_OF_TX_MEMORY in str(getattr(exc, "code", ""))


def _is_transient(exc: BaseException) -> bool:
    """Worth another try: a transient error, except a commit of unknown outcome (a retried CREATE could
    duplicate rows) and a transaction over the server's memory cap (it would fail again)."""
    return isinstance(exc, RETRYABLE) and not isinstance(exc, IncompleteCommit) and not _out_of_tx_memory(exc)


@dataclass(frozen=True)
class WriteStats:
    rows: int
    batches: int
    seconds: float
    retries: int

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


class Neo4jClient:
    """A driver plus the project's retry and batching rules; use as a context manager or close()."""

    def __init__(self, uri: str, user: str, password: str, database: str = "neo4j", *,
                 max_retries: int = 5, retry_delay_s: float = 0.5, connection_timeout_s: float = 10.0,
                 log: Callable[[str], None] | None = None) -> None:
        self.uri, self.database = uri, database
        self.max_retries, self.retry_delay_s = max_retries, retry_delay_s
        self.log = log or logger.info
        # The statements are fixed and tested; the server's notifications about them (e.g. "label does
        # not exist" on a first load into an empty database) are noise in the run logs.
        self._driver = neo4j.GraphDatabase.driver(uri, auth=(user, password), connection_timeout=connection_timeout_s,
                                                  notifications_min_severity="OFF")

    def __enter__(self) -> Neo4jClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._driver.close()

    # ------------------------------------------------------------------ retries
    def _retrying(self, what: str, work: Callable[[], T], max_retries: int | None = None) -> tuple[T, int]:
        """Run `work`, retrying transient failures with jittered exponential back-off (the project's one
        retry policy); (result, retries used). Errors are then translated for the caller."""
        max_retries = self.max_retries if max_retries is None else max_retries
        retries = 0

        def on_retry(number: int, delay: float, exc: BaseException) -> None:
            nonlocal retries
            retries = number
            self.log(f"{what}: {type(exc).__name__} ({exc}); retry {number}/{max_retries} in {delay:.2f} s")

        try:
            result = with_retries(work, attempts=max_retries + 1, base_s=self.retry_delay_s, max_s=float("inf"),
                                  is_transient=_is_transient, on_retry=on_retry, jitter=True)
        except IncompleteCommit:
            raise
        except RETRYABLE as exc:
            if _out_of_tx_memory(exc):
                raise RuntimeError(f"{what}: the transaction exceeded the server's transaction memory "
                                   "(dbms.memory.transaction.total.max): use smaller batches") from exc
            if isinstance(exc, (ServiceUnavailable, SessionExpired)):
                raise Neo4jUnavailableError(f"Neo4j at {self.uri} stopped answering during {what} "
                                            f"(gave up after {retries} retries): {exc}") from exc
            raise
        return result, retries

    def verify(self, retries: int | None = None) -> dict[str, str]:
        """Check that the server answers with these credentials; name the URI when it does not."""
        def probe() -> dict[str, str]:
            with self._driver.session(database=self.database) as session:
                record = session.run("CALL dbms.components() YIELD versions, edition "
                                     "RETURN versions[0] AS version, edition").single()
            return {"version": record["version"], "edition": record["edition"]}

        try:
            return self._retrying(f"connecting to {self.uri}", probe, retries)[0]
        except (Neo4jUnavailableError, ServiceUnavailable, SessionExpired, OSError) as exc:
            cause = exc.__cause__ if isinstance(exc, Neo4jUnavailableError) and exc.__cause__ else exc
            reason = " ".join(str(cause).split())
            raise Neo4jUnavailableError(f"Neo4j is not reachable at {self.uri} (database {self.database!r}): "
                                        f"{reason}. Start it with `scripts/services start neo4j`, or set NEO4J_URI."
                                        ) from exc
        except neo4j.exceptions.AuthError as exc:
            raise Neo4jAuthError(f"Neo4j at {self.uri} refused the credentials "
                                        f"(check NEO4J_USER / NEO4J_PASSWORD): {exc}") from exc

    # ------------------------------------------------------------------ statements
    def run(self, query: str, parameters: Mapping[str, Any] | None = None) -> neo4j.ResultSummary:
        """An auto-commit statement (schema changes, `CALL { ... } IN TRANSACTIONS`), retried as a whole.

        Only idempotent statements belong here: a retry runs the whole statement again.
        """
        def work() -> neo4j.ResultSummary:
            with self._driver.session(database=self.database) as session:
                return session.run(query, dict(parameters or {})).consume()

        return self._retrying(_first_line(query), work)[0]

    def read(self, query: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The records of a read query, as dicts."""
        def work() -> list[dict[str, Any]]:
            with self._driver.session(database=self.database, default_access_mode=neo4j.READ_ACCESS) as session:
                return [record.data() for record in session.run(query, dict(parameters or {}))]

        return self._retrying(_first_line(query), work)[0]

    def write(self, query: str, parameters: Mapping[str, Any] | None = None) -> neo4j.ResultSummary:
        """One explicit write transaction, retried on transient failures."""
        return self._retrying(_first_line(query), lambda: self._write_once(query, dict(parameters or {})))[0]

    def _write_once(self, query: str, parameters: dict[str, Any]) -> neo4j.ResultSummary:
        return self._transaction([(query, parameters)])[0]

    def _transaction(self, statements: list[tuple[str, dict[str, Any]]]) -> list[neo4j.ResultSummary]:
        """Run `statements` in one explicit write transaction and commit it (no retry here)."""
        with self._driver.session(database=self.database) as session:
            with session.begin_transaction() as tx:
                summaries = [tx.run(query, parameters).consume() for query, parameters in statements]
                tx.commit()
        return summaries

    def write_all(self, statements: Iterable[tuple[str, Mapping[str, Any]]]) -> list[neo4j.ResultSummary]:
        """Several statements in one write transaction (all or none commit), retried as a whole."""
        statements = [(query, dict(parameters)) for query, parameters in statements]
        return self._retrying(f"{len(statements)} statements in one transaction",
                              lambda: self._transaction(statements))[0]

    def write_batches(self, query: str, batches: Iterable[tuple[int, dict[str, Any]]], what: str,
                      total_rows: int, concurrency: int = 1, progress_every_s: float = 10.0) -> WriteStats:
        """Run `query` once per (rows, parameters) batch, each in its own transaction; log rows/s.

        With `concurrency` > 1, that many transactions are in flight at once (one session each),
        and at most `concurrency` more batches are prepared ahead. The callers arrange batches so
        that concurrent ones never share a start node (see tv5_assets.graph_store.batches); a
        deadlock on a shared end node is a transient error, rolled back by the server and retried.
        A failure stops the producer, waits for the transactions in flight and is raised.
        """
        progress = _Progress(self.log, what, total_rows, progress_every_s)
        if concurrency <= 1:
            for number, (rows, parameters) in enumerate(batches, start=1):
                progress.add(*self._write_batch(query, parameters, rows, f"{what} batch {number}"))
            return progress.finish()
        in_flight: set[Future] = set()
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="neo4j-writer") as pool:
            try:
                for number, (rows, parameters) in enumerate(batches, start=1):
                    while len(in_flight) >= 2 * concurrency:
                        in_flight = self._collect(in_flight, progress, FIRST_COMPLETED)
                    in_flight.add(pool.submit(self._write_batch, query, parameters, rows, f"{what} batch {number}"))
                self._collect(in_flight, progress, ALL_COMPLETED)
            except BaseException:
                for future in in_flight:
                    future.cancel()
                raise
        return progress.finish()

    def _write_batch(self, query: str, parameters: dict[str, Any], rows: int, what: str) -> tuple[int, int]:
        """One batch in its own transaction, retried: (rows, retries used)."""
        return rows, self._retrying(what, partial(self._write_once, query, parameters))[1]

    @staticmethod
    def _collect(in_flight: set[Future], progress: _Progress, when: str) -> set[Future]:
        done, pending = wait(in_flight, return_when=when)
        for future in done:
            rows, retries = future.result()  # raises the batch's error
            progress.add(rows, retries)
        return pending


class _Progress:
    """Rows written so far, logged every `every_s` seconds and at the end with rows/s."""

    def __init__(self, log: Callable[[str], None], what: str, total_rows: int, every_s: float) -> None:
        self.log, self.what, self.total_rows, self.every_s = log, what, total_rows, every_s
        self.started = self.last_report = time.perf_counter()
        self.rows = self.batches = self.retries = 0

    def add(self, rows: int, retries: int) -> None:
        self.rows += rows
        self.batches += 1
        self.retries += retries
        now = time.perf_counter()
        if now - self.last_report >= self.every_s:
            self.last_report = now
            share = f" ({100 * self.rows / self.total_rows:.1f}%)" if self.total_rows else ""
            self.log(f"{self.what}: {self.rows:,}/{self.total_rows:,} rows{share}, "
                     f"{self.rows / (now - self.started):,.0f} rows/s")

    def finish(self) -> WriteStats:
        stats = WriteStats(self.rows, self.batches, time.perf_counter() - self.started, self.retries)
        self.log(f"{self.what}: {stats.rows:,} rows in {stats.batches} transaction(s), {stats.seconds:.1f} s, "
                 f"{stats.rows_per_s:,.0f} rows/s" + (f", {stats.retries} retries" if stats.retries else ""))
        return stats


def _first_line(query: str) -> str:
    line = " ".join(query.split())
    return line if len(line) <= 80 else line[:79] + "…"


class Neo4jResource(dg.ConfigurableResource):
    """The project's Neo4j (default: the local server of `scripts/services`, password from NEO4J_PASSWORD)."""

    uri: str = Field(default="bolt://127.0.0.1:7687", description="Bolt URI (env NEO4J_URI in definitions)")
    user: str = Field(default="neo4j", description="user name")
    password: str = Field(description="password; wire it as dg.EnvVar('NEO4J_PASSWORD'), never in code")
    database: str = Field(default="neo4j", description="database (Community has one user database: neo4j)")
    batch_rows: int = Field(default=50_000, description="rows per write transaction (UNWIND batch)")
    write_concurrency: int = Field(default=2, description="relationship write transactions in flight at once")
    max_retries: int = Field(default=5, description="retries of a transiently failing statement or batch")
    retry_delay_s: float = Field(default=0.5, description="first back-off delay; doubles at each retry")
    connection_timeout_s: float = Field(default=10.0, description="TCP connect timeout")
    local_home: str = Field(default="", description="DBMS home of the project's own local server, which full "
                            "rebuilds may stop, import into and restart ('' for any other server: online load only)")
    local_control: str = Field(default="", description="command stopping / starting that server, its "
                               "'{action}' replaced by stop or start (the project's: "
                               "python -m tv5_assets.local_services {action} neo4j)")
    import_classpath: str = Field(default="", description="class path of the Neo4j jars holding the import tool")
    import_max_off_heap: str = Field(default="2g", description="the import tool's off-heap memory cap")

    _client: Neo4jClient | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        log = context.log.info if context.log is not None else None
        # one writer per store across runs: wait for an older run on the graph (runs that skipped the queue)
        hold_stores(context.instance, context.run, log or logger.info)
        client = Neo4jClient(self.uri, self.user, self.password, self.database, max_retries=self.max_retries,
                             retry_delay_s=self.retry_delay_s, connection_timeout_s=self.connection_timeout_s,
                             log=log)
        try:
            server = client.verify(retries=min(self.max_retries, 2))
        except BaseException:
            client.close()
            raise
        self._client = client
        if log is not None:
            log(f"Neo4j {server['version']} ({server['edition']}) at {self.uri}, database {self.database!r}")

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> Neo4jClient:
        if self._client is None:
            raise RuntimeError("Neo4jResource is not set up: its driver is created in setup_for_execution "
                               "(Dagster does this for each step that uses the resource)")
        return self._client

    def read(self, query: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return self.client.read(query, parameters)

    def local_server(self) -> LocalServer | None:
        """The local server the offline import may rebuild, or None (then only the online load applies)."""
        if not (self.local_home and self.local_control and self.import_classpath):
            return None
        return LocalServer(Path(self.local_home), self.import_classpath, tuple(shlex.split(self.local_control)),
                           self.database, self.import_max_off_heap)


def project_local_server(settings: Settings, root: Path = PROJECT_ROOT) -> dict[str, str]:
    """The offline-import settings for the server `tv5_assets.local_services` runs, when NEO4J_URI is that server.

    Only for a loopback URI on the services' port, in a checkout with the launcher built and
    TV5_NEO4J_IMPORT not 'off'; else {} (online load). The port and home come from the services' own
    settings (environment, then .env), so they are those of the server the control command starts."""
    local = local_services.ServiceSettings(_env_file=root / ".env")
    host_port = settings.neo4j_uri.split("://", 1)[-1].split("/", 1)[0]
    port = local.neo4j_bolt_port
    jars = root / "services" / "neo4j" / "target" / "dependency"
    if (settings.tv5_neo4j_import == "off" or host_port not in (f"127.0.0.1:{port}", f"localhost:{port}")
            or not jars.is_dir()):
        return {}
    home = Path(local.neo4j_home_dir)
    return {"local_home": str(home if home.is_absolute() else root / home),
            "local_control": f"{shlex.quote(sys.executable)} -m {local_services.CLI_MODULE} {{action}} neo4j",
            "import_classpath": f"{jars}/*"}


def neo4j_from_env(settings: Settings) -> Neo4jResource:
    """The project's default: NEO4J_URI / NEO4J_USER / NEO4J_DATABASE (else the local server), the password
    always as `dg.EnvVar("NEO4J_PASSWORD")` (read at run time; `dagster dev` loads .env). When the URI is
    the project's own local server, full rebuilds use the offline import tool."""
    return Neo4jResource(uri=settings.neo4j_uri, user=settings.neo4j_user, password=dg.EnvVar("NEO4J_PASSWORD"),
                         database=settings.neo4j_database, **project_local_server(settings))
