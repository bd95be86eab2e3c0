"""The served Milvus collections loaded while a day's run computes its changes, so `day_release` does not wait.

Milvus Lite keeps load state per process: a day run opens the file anew, and `day_release` loaded each collection
it writes on its critical path (3-6 s a user collection on 2 cores). A thread started with the run's resources
loads them while the day's steps before `day_release` compute (17-25 s). A collection still loading when the day
reaches it is waited for by `day_release`'s own `ensure_searchable` (a second `load_collection` waits for the
first); a failure here is only logged: that same call raises it again, in place. A Milvus server keeps collections
loaded: there each collection costs one load-state request. Loading changes what is in memory, never what a store
holds or what the day writes (hence not part of any code version).

Measured and not kept: reading the graph around the day's users (their RATED, its properties, the rated Media)
once `day_delivery` had written them, so Neo4j's page cache would hold what the graph's journal and audit read:
12M values took 5.5-9.3 s of both cores while the day's steps ran, which then took 10 s longer, more than the
audit gained (6-7 s instead of 12-17 s for users the server had not read since it started).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import dagster as dg

from tv5_assets.vector_store.resources import MilvusResource
from tv5_assets.vector_store.schema import HYBRID_MEDIA, HYBRID_USERS, MEDIA, USERS, CollectionSpec

# the order `day_release` writes them in: the day's movies' collections first, then the users'
WARMED: tuple[CollectionSpec, ...] = (MEDIA, HYBRID_MEDIA, USERS, HYBRID_USERS)
JOIN_TIMEOUT_S = 600.0


class DayWarmup:
    """A thread loading the served collections behind their aliases; `report()` says what it did so far."""

    def __init__(self, milvus: MilvusResource, log: Callable[[str], None]) -> None:
        self._milvus, self._log = milvus, log
        self._done: dict[str, str] = {}
        self._thread = threading.Thread(target=self._collections, name="warmup-collections", daemon=True)

    def start(self) -> DayWarmup:
        self._thread.start()
        return self

    def _collections(self) -> None:
        for spec in WARMED:
            began = time.perf_counter()
            try:
                name = self._milvus.alias_target(self._milvus.alias_name(spec.alias))
                if name is None:
                    self._done[spec.alias] = "not served"
                    continue
                found = self._milvus.ensure_searchable(name)
            except Exception as error:  # noqa: BLE001 - day_release's own ensure_searchable raises it in place
                self._done[spec.alias] = f"failed: {error}"
                self._log(f"warm-up of {spec.alias} failed (day_release loads it itself): {error}")
                continue
            self._done[spec.alias] = "already loaded" if found == "Loaded" else \
                f"loaded in {time.perf_counter() - began:.2f} s"

    def report(self) -> dict[str, str]:
        """Each collection's outcome so far (absent: not reached yet)."""
        return dict(self._done)

    def join(self, timeout: float = JOIN_TIMEOUT_S) -> None:
        self._thread.join(timeout)


@dg.resource(required_resource_keys={"milvus"}, description=(
    "Loads the served Milvus collections in a thread as a day run starts, for `day_release` (Milvus Lite loads "
    "per process); writes nothing."))
def day_warmup(init_context: dg.InitResourceContext) -> Iterator[DayWarmup]:
    warmup = DayWarmup(init_context.resources.milvus, init_context.log.info).start()
    try:
        yield warmup
    finally:
        warmup.join()  # before `milvus` closes its client
