"""Milvus: Milvus Lite (a local `.db` path) or a Milvus server (`http://host:19530`), one resource.

The client is opened in `setup_for_execution` and closed in `teardown_after_execution`. Everything
that talks to Milvus goes through `_call`, which retries transient errors (server starting, rate
limits, dropped connections) with exponential backoff and turns permanent ones into clear errors:
a wrong URI (`MilvusConfigError`), a server that does not answer (`MilvusUnavailableError`, naming the
URI), refused credentials (`MilvusAuthError`), vectors of the wrong dimension (`MilvusDimensionError`).

Milvus Lite keeps an exclusive lock on its data directory for as long as a process has it open, so
teardown releases it, and setup waits (up to `lite_lock_wait_s`) while another step process holds it.

`before_insert` is called before each insert batch is sent and does nothing here; a subclass may
override it (the tests' `FaultyMilvusResource` makes the N-th batch fail or hang there, on real Milvus).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import dagster as dg
import numpy as np
import polars as pl
from pydantic import Field, PrivateAttr
from pymilvus import DataType, MilvusClient
from pymilvus.client.call_context import CallContext
from pymilvus.exceptions import ConnectionConfigException, MilvusException

from tv5_assets.core.pools import hold_stores
from tv5_assets.core.retry import with_retries
from tv5_assets.core.settings import Settings
from tv5_assets.vector_store.connection import (
    ALIAS_MISSING_WORDS,
    LITE_LOCK_FAILURE,
    MilvusAuthError,
    MilvusConfigError,
    MilvusDimensionError,
    MilvusError,
    MilvusUnavailableError,
    check_uri,
    error_code,
    is_auth_error,
    is_transient,
    lite_locked_elsewhere,
    lite_path,
    public_uri,
)
from tv5_assets.vector_store.payload import insert_request
from tv5_assets.vector_store.schema import ID_FIELD, VECTOR_FIELD, CollectionSpec, FieldKind, VectorIndex

__all__ = ["MilvusAuthError", "MilvusConfigError", "MilvusDimensionError", "MilvusError",
           "MilvusResource", "MilvusUnavailableError", "check_uri", "is_auth_error", "is_transient", "lite_path",
           "milvus_from_env", "public_uri"]

T = TypeVar("T")
_LITE_QUERY_LIMIT = 10_000_000  # rows one Milvus Lite query may return in `values_where`
LOG = logging.getLogger(__name__)


# Every step that opens the `milvus` resource carries this tag, so that a multiprocess run can hold such
# steps to one at a time with the executor's `tag_concurrency_limits` (Milvus Lite: one process at a time).
MILVUS_STEP_TAGS = {"tv5/store": "milvus"}


class MilvusResource(dg.ConfigurableResource):
    """Connection, batching, retries and error translation for the vector collections.

    Wire `token` and `db_name` from the environment (`dg.EnvVar("MILVUS_TOKEN")`); the URI defaults to
    Milvus Lite under the data lake (`data/milvus.db`). Index parameters live here so that the asset
    building a collection and the checks verifying it read the same configuration.
    """

    uri: str = Field(default="data/milvus.db",
                     description="a path ending in .db (Milvus Lite, created if absent) or http://host:19530")
    token: str = Field(default="", description="'user:password' or an API key; empty when auth is off")
    db_name: str = Field(default="", description="database on the server; empty: 'default'")
    collection_prefix: str = Field(
        default="", description="prepended to aliases and collections: separates environments (or tests) "
        "sharing one server")
    index_type: str = "HNSW"
    metric_type: str = Field(default="COSINE", description="COSINE (vectors are unit-normalised), L2 or IP")
    hnsw_m: int = 16
    hnsw_ef_construction: int = 200
    search_ef: int = Field(default=100, description="HNSW search breadth (ef) used by searches and checks")
    batch_bytes: int = Field(default=16 << 20, description="payload bytes per insert request (server cap 64 MiB)")
    timeout_s: float = Field(default=60.0, description="per request, retries included")
    build_timeout_s: float = Field(default=1800.0, description="flush, index build and load")
    connect_timeout_s: float = 10.0
    retry_attempts: int = Field(default=4, description="tries in all for a transient error")
    retry_base_s: float = 0.5
    retry_max_s: float = 8.0
    lite_lock_wait_s: float = Field(default=3600.0, description="Milvus Lite: wait this long while another "
                                    "process (another step) has the file open")

    _client: MilvusClient | None = PrivateAttr(default=None)
    _log: Any = PrivateAttr(default=None)
    _dimensions: dict[str, int] = PrivateAttr(default_factory=dict)

    # ------------------------------------------------------------------ life-cycle
    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._log = context.log if context.log is not None else LOG
        # one writer per collection across runs: wait for older runs on this run's collections (runs that
        # skipped the queue), before opening Milvus Lite's file
        hold_stores(context.instance, context.run, self._log.info)
        self._client = self._connect()
        self._log.info(f"milvus: connected to {self.describe()}")

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._close()

    @contextlib.contextmanager
    def connected(self) -> Iterator[MilvusResource]:
        """Open and close the client outside Dagster (benchmarks, scripts, tests)."""
        self._log = self._log or LOG
        self._client = self._connect()
        try:
            yield self
        finally:
            self._close()

    def _connect(self) -> MilvusClient:
        check_uri(self.uri)
        path = lite_path(self.uri)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        deadline, waiting = started + self.lite_lock_wait_s, False
        while True:
            # probe Lite's lock before opening: a refused open logs a traceback in milvus_lite every time
            busy = path is not None and lite_locked_elsewhere(path)
            if not busy:
                try:
                    client = self._retrying("connect", lambda: MilvusClient(
                        uri=str(path) if path else self.uri, token=self.token, db_name=self.db_name,
                        timeout=self.connect_timeout_s))
                except MilvusError as error:
                    cause = error.__cause__
                    busy = (path is not None and isinstance(cause, ConnectionConfigException)
                            and LITE_LOCK_FAILURE in str(cause).lower() and lite_locked_elsewhere(path))
                    if not busy:
                        raise
                else:
                    if waiting:
                        self._log.info(f"milvus: {path} free after {time.monotonic() - started:.1f} s")
                    return client
            if time.monotonic() > deadline:
                raise MilvusConfigError(
                    f"Milvus Lite {path} stayed open in another process for {self.lite_lock_wait_s:.0f} s "
                    "(Lite allows one process at a time; use a Milvus server for concurrent access)")
            if not waiting:  # one line per wait, not one per probe
                self._log.info(f"milvus: {path} is open in another process; waiting for its lock "
                               f"(up to {self.lite_lock_wait_s:.0f} s)")
                waiting = True
            time.sleep(0.5)

    def _close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
        path = lite_path(self.uri)
        if path is not None:  # frees the data directory's lock for the next step process
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(str(path))

    @property
    def client(self) -> MilvusClient:
        if self._client is None:
            raise MilvusError("MilvusResource is not set up: Dagster opens it for each step that uses it "
                              "(outside Dagster: `with resource.connected():`)")
        return self._client

    # ------------------------------------------------------------------ configuration
    @property
    def backend(self) -> str:
        return "milvus-lite" if lite_path(self.uri) is not None else "milvus-server"

    @property
    def index(self) -> VectorIndex:
        return VectorIndex(self.index_type, self.metric_type, self.hnsw_m, self.hnsw_ef_construction, self.search_ef)

    def index_for(self, spec: CollectionSpec | None) -> VectorIndex:
        """The configured index, with the collection's own index type, metric, M, efConstruction and search ef
        where its spec sets them."""
        if spec is None:
            return self.index
        return VectorIndex(spec.index_type or self.index_type, spec.metric_type or self.metric_type,
                           spec.hnsw_m or self.hnsw_m, spec.hnsw_ef_construction or self.hnsw_ef_construction,
                           spec.search_ef or self.search_ef,
                           spec.ivf_nlist, spec.ivf_nprobe)

    def alias_name(self, alias: str) -> str:
        return f"{self.collection_prefix}{alias}"

    def describe(self) -> str:
        where = str(lite_path(self.uri)) if lite_path(self.uri) else public_uri(self.uri)
        return f"{self.backend} at {where}" + (f" (database {self.db_name})" if self.db_name else "")

    # ------------------------------------------------------------------ retries and errors
    def _retrying(self, action: str, operation: Callable[[], T]) -> T:
        def on_retry(attempt: int, delay: float, error: BaseException) -> None:
            self._log.warning(f"milvus {action}: transient error (try {attempt}/{self.retry_attempts}), "
                              f"retrying in {delay:.1f} s: {error}")

        try:
            return with_retries(operation, attempts=self.retry_attempts, base_s=self.retry_base_s,
                                max_s=self.retry_max_s, is_transient=is_transient, on_retry=on_retry)
        except MilvusError:
            raise
        except Exception as error:
            raise self._translate(error, action) from error

    def _translate(self, error: BaseException, action: str) -> MilvusError:
        where = self.describe()
        message = str(getattr(error, "message", "") or error)
        if isinstance(error, ConnectionConfigException):
            return MilvusConfigError(f"cannot open Milvus {where} ({action}): {message}")
        if is_auth_error(error):
            return MilvusAuthError(f"Milvus {where} refused the credentials ({action}): {message}. Set "
                                   "MILVUS_TOKEN to 'user:password' or an API key")
        if is_transient(error):
            return MilvusUnavailableError(
                f"Milvus {where} is unreachable ({action}, {self.retry_attempts} tries): {message}. Start the "
                "local server with `scripts/services start milvus`, or set TV5_MILVUS_URI to a running one")
        return MilvusError(f"Milvus {action} failed on {where}: {message}")

    def _call(self, action: str, operation: Callable[[MilvusClient], T]) -> T:
        client = self.client
        return self._retrying(action, lambda: operation(client))

    # ------------------------------------------------------------------ collections and aliases
    def list_collections(self) -> list[str]:
        return self._call("list collections", lambda c: list(c.list_collections()))

    def has_collection(self, name: str) -> bool:
        return self._call(f"look up {name}", lambda c: bool(c.has_collection(name)))

    def alias_target(self, alias: str) -> str | None:
        """The collection `alias` points at, None when there is no such alias."""
        def describe(client: MilvusClient) -> str | None:
            if alias not in client.list_aliases(timeout=self.timeout_s).get("aliases", []):
                return None
            try:  # it may vanish in between
                return client.describe_alias(alias)["collection_name"] or None
            except MilvusException as error:
                message = str(getattr(error, "message", error)).lower()
                if error_code(error) in (1600, 100) or any(word in message for word in ALIAS_MISSING_WORDS):
                    return None
                raise

        return self._call(f"describe alias {alias}", describe)

    def create_collection(self, name: str, spec: CollectionSpec, dimension: int) -> None:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False, description=spec.description)
        schema.add_field(ID_FIELD, DataType.INT64, is_primary=True)
        schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=dimension)
        for field in spec.scalars:
            if field.kind is FieldKind.INT32:
                schema.add_field(field.name, DataType.INT32)
            elif field.kind is FieldKind.VARCHAR:
                schema.add_field(field.name, DataType.VARCHAR, max_length=field.max_length)
            else:
                schema.add_field(field.name, DataType.ARRAY, element_type=DataType.VARCHAR,
                                 max_capacity=field.max_capacity, max_length=field.max_length)
        self._call(f"create {name}", lambda c: c.create_collection(name, schema=schema, timeout=self.timeout_s))
        self._dimensions[name] = dimension

    def dimension(self, name: str) -> int:
        if name not in self._dimensions:
            fields = self._call(f"describe {name}", lambda c: c.describe_collection(name))["fields"]
            vector = next(f for f in fields if f["name"] == VECTOR_FIELD)
            self._dimensions[name] = int(vector["params"]["dim"])
        return self._dimensions[name]

    def point_alias(self, alias: str, name: str) -> None:
        """Create `alias` on `name`, or move it there in one step if it exists."""
        current = self.alias_target(alias)
        if current is None and self.has_collection(alias):
            raise MilvusConfigError(f"a collection named {alias!r} exists on {self.describe()}: an alias cannot "
                                    "share its name; drop or rename that collection")
        if current is None:
            self._call(f"create alias {alias}", lambda c: c.create_alias(name, alias, timeout=self.timeout_s))
        elif current != name:
            self._call(f"move alias {alias}", lambda c: c.alter_alias(name, alias, timeout=self.timeout_s))

    def drop_alias(self, alias: str) -> None:
        if self.alias_target(alias) is not None:
            self._call(f"drop alias {alias}", lambda c: c.drop_alias(alias, timeout=self.timeout_s))

    def drop_collection(self, name: str) -> None:
        if self.has_collection(name):
            self._call(f"drop {name}", lambda c: c.drop_collection(name, timeout=self.timeout_s))
        self._dimensions.pop(name, None)

    # ------------------------------------------------------------------ loading
    def before_insert(self, name: str, batch_number: int) -> None:
        """Called by `insert` before batch `batch_number` (1-based) of `name` is checked and sent; does nothing.

        An overridable hook: a subclass may raise here (the batch is not sent; a rebuild then drops its
        half-built collection) or block. The tests' `FaultyMilvusResource` injects its faults this way.
        """

    def _check_dimension(self, name: str, rows: pl.DataFrame) -> None:
        dtype = rows.schema[VECTOR_FIELD]
        got = dtype.size if isinstance(dtype, pl.Array) else len(rows[VECTOR_FIELD][0])
        expected = self.dimension(name)
        if got != expected:
            raise MilvusDimensionError(f"{name} stores {expected}-d vectors but the rows carry {got}-d vectors "
                                       "(a different encoder model?); rebuild the collection from the new vectors")

    def insert(self, name: str, rows: pl.DataFrame, spec: CollectionSpec, batch_number: int = 1) -> int:
        """Insert one batch as a single column-wise request; returns the rows Milvus acknowledged."""
        self.before_insert(name, batch_number)
        self._check_dimension(name, rows)
        request = insert_request(name, rows, spec)
        context = CallContext(db_name=self.db_name)

        def send(client: MilvusClient) -> int:
            result = client._get_connection().batch_insert(  # noqa: SLF001 - the prebuilt-request hook
                name, [], insert_param=request, timeout=self.timeout_s, context=context)
            return int(result.insert_count)

        inserted = self._call(f"insert batch {batch_number} into {name}", send)
        if inserted != rows.height:
            raise MilvusError(f"{name}: batch {batch_number} sent {rows.height} rows, Milvus acknowledged {inserted}")
        return inserted

    def flush(self, name: str) -> None:
        self._call(f"flush {name}", lambda c: c.flush(name, timeout=self.build_timeout_s))

    def build_index(self, name: str, spec: CollectionSpec | None = None) -> None:
        """Build the configured index and wait for it.

        The build parameters go both flat (what the server reads) and as the JSON `params` entry (what
        Milvus Lite reads; it ignores flat keys), so both backends build and report the same index.
        """
        index = self.index_for(spec)
        params = self.client.prepare_index_params()
        params.add_index(VECTOR_FIELD, index_type=index.index_type, metric_type=index.metric_type,
                         params={**index.build_params, "params": {k: str(v) for k, v in index.build_params.items()}})
        self._call(f"index {name}", lambda c: c.create_index(name, params, timeout=self.build_timeout_s))

    def load(self, name: str) -> None:
        self._call(f"load {name}", lambda c: c.load_collection(name, timeout=self.build_timeout_s))
        if (state := self.load_state(name)) != "Loaded":
            raise MilvusError(f"{name} is {state} after load_collection returned")

    def count(self, name: str) -> int:
        """Entities visible to a strongly consistent query (the collection must be loaded)."""
        result = self._call(f"count {name}", lambda c: c.query(
            name, filter="", output_fields=["count(*)"], consistency_level="Strong", timeout=self.timeout_s))
        return int(result[0]["count(*)"])

    def count_where(self, name: str, expression: str) -> int:
        result = self._call(f"count {name} where {expression}", lambda c: c.query(
            name, filter=expression, output_fields=["count(*)"], consistency_level="Strong", timeout=self.timeout_s))
        return int(result[0]["count(*)"])

    def values_where(self, name: str, expression: str, *fields: str, batch_size: int = 16_384) -> pl.DataFrame:
        """(id, *fields) of every entity matching `expression`: a server returns at most 16,384 rows a query, so
        it is read in batches; Milvus Lite has no such cap and evaluates the filter anew for every batch (about
        6 s a pass over 162K rows), so there it is one query."""
        columns = [ID_FIELD, *fields]

        def frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
            return pl.DataFrame({c: [r[c] for r in rows] for c in columns})

        def read_once() -> pl.DataFrame | None:
            rows = self.client.query(name, filter=expression, output_fields=columns,
                                     limit=_LITE_QUERY_LIMIT, timeout=self.timeout_s)
            if len(rows) >= _LITE_QUERY_LIMIT:
                return None  # more than one query returns: read in batches after all
            return frame(rows)

        def read() -> pl.DataFrame:
            if self.backend == "milvus-lite" and (whole := read_once()) is not None:
                return whole
            iterator = self.client.query_iterator(name, batch_size=batch_size, filter=expression,
                                                  output_fields=columns, timeout=self.timeout_s)
            parts = []
            try:
                while batch := iterator.next():
                    parts.append(frame(batch))
            finally:
                iterator.close()
            return pl.concat(parts) if parts else frame([])

        return self._call(f"read {', '.join(fields)} of {name} where {expression[:80]}", lambda _c: read())

    # ------------------------------------------------------------------ inspecting and searching
    def load_state(self, name: str) -> str:
        state = self._call(f"load state of {name}", lambda c: c.get_load_state(name))["state"]
        return getattr(state, "name", str(state))

    def ensure_searchable(self, name: str) -> str:
        """The load state found; on Milvus Lite, load the collection if needed and return that state.

        Milvus Lite keeps load state per process: a file opened anew has every indexed collection
        released, so each process that searches it (a check's step, a reader) loads it first. The server
        keeps collections loaded across clients: there a released collection is a defect, left as is.
        """
        found = self.load_state(name)
        if found != "Loaded" and self.backend == "milvus-lite":
            self.load(name)
        return found

    def describe_index(self, name: str) -> dict[str, Any]:
        """index_type, metric_type and the build parameters as the backend reports them ({} if no index)."""
        def describe(client: MilvusClient) -> dict[str, Any]:
            names = client.list_indexes(name, field_name=VECTOR_FIELD)
            return client.describe_index(name, names[0]) if names else {}

        raw = self._call(f"describe index of {name}", describe) or {}
        reported = {k: v for k, v in raw.items() if k in ("M", "efConstruction", "nlist")}
        nested = raw.get("params") if isinstance(raw.get("params"), dict) else {}
        return {"index_type": raw.get("index_type"), "metric_type": raw.get("metric_type"),
                "params": {k: int(v) for k, v in {**nested, **reported}.items()},
                "indexed_rows": raw.get("indexed_rows"), "total_rows": raw.get("total_rows"),
                "state": raw.get("state")}

    def search(self, name: str, vectors: np.ndarray | Sequence[Sequence[float]], limit: int,
               expression: str = "", output_fields: Sequence[str] = (), ef: int | None = None,
               spec: CollectionSpec | None = None) -> list[list[dict[str, Any]]]:
        """Top-`limit` hits of each query vector: [{id, distance, entity}], with the metric of `spec`'s index.
        HNSW breadth: `ef`, else the configured one (a search deeper than ef needs ef >= limit: pass it)."""
        data = [np.asarray(v, dtype=np.float32).tolist() for v in vectors]
        index = self.index_for(spec)
        params = index.search_params_with(ef)
        return self._call(f"search {name}", lambda c: [list(hits) for hits in c.search(
            name, data=data, limit=limit, filter=expression, output_fields=list(output_fields),
            search_params=params, timeout=self.timeout_s)])


def milvus_from_env(settings: Settings) -> MilvusResource:
    """The project's default: TV5_MILVUS_URI if set, else Milvus Lite at `<TV5_DATA_DIR>/milvus.db`; the token
    as `dg.EnvVar("MILVUS_TOKEN")` (read at run time) where it is set, the database from MILVUS_DB_NAME."""
    return MilvusResource(uri=settings.milvus_uri(), token=settings.secret("MILVUS_TOKEN"),
                          db_name=settings.milvus_db_name)
