"""Versioned collections behind an alias: `stage` builds one no reader sees; `rebuild` builds one and moves the alias.

The serving collections are staged (`stage`): built, loaded and counted under a versioned name with no alias,
audited there by their checks, and published by the `release` stage, which moves every alias at once. `rebuild`
(build, then swap) serves the evaluation's own temporary collection.

Readers only ever search the alias (`media_vectors`, `user_vectors`). A rebuild creates
`<alias>__v<UTC time>_<token>_c<content version>`, inserts, flushes, builds and loads the index, verifies
the exact entity count, and only then points the alias at it (one atomic alias change) and drops the previous
collection. Any failure before the swap drops the new collection and leaves the alias where it was;
a process killed outright leaves its half-built collection behind, and the next rebuild drops every
`<alias>__v*` collection that the alias does not point at before it starts. One writer per alias at
a time (a Dagster asset is materialized by one run at a time).

A collection's name carries the content version of what it holds (rows, schema, index), so a rebuild
asked for rows the alias already serves, complete and searchable, keeps that collection instead (an
edit to a shared helper moves code versions without changing a row: nothing to reload).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import polars as pl

from tv5_assets.vector_store.rows import Rows
from tv5_assets.vector_store.schema import CollectionSpec

VERSION_MARK = "__v"
CONTENT_MARK = "_c"


class IncompleteLoadError(RuntimeError):
    """The new collection does not hold exactly the source rows: the alias is not moved."""


class VectorStore(Protocol):
    """What a rebuild needs from Milvus (implemented by `MilvusResource`)."""

    def list_collections(self) -> list[str]: ...
    def alias_target(self, alias: str) -> str | None: ...
    def create_collection(self, name: str, spec: CollectionSpec, dimension: int) -> None: ...
    def insert(self, name: str, rows: pl.DataFrame, spec: CollectionSpec, batch_number: int) -> int: ...
    def flush(self, name: str) -> None: ...
    def build_index(self, name: str, spec: CollectionSpec | None = None) -> None: ...
    def load(self, name: str) -> None: ...
    def count(self, name: str) -> int: ...
    def ensure_searchable(self, name: str) -> str: ...
    def load_state(self, name: str) -> str: ...
    def point_alias(self, alias: str, name: str) -> None: ...
    def drop_collection(self, name: str) -> None: ...


def versioned_name(alias: str, when: dt.datetime | None = None, token: str | None = None,
                   content: str | None = None) -> str:
    """`<alias>__v<YYYYmmddHHMMSS>_<6 hex>[_c<content version>]`: sortable by build time, unique across
    concurrent builders, naming what it holds."""
    when = when or dt.datetime.now(dt.UTC)
    name = f"{alias}{VERSION_MARK}{when:%Y%m%d%H%M%S}_{token or uuid.uuid4().hex[:6]}"
    return f"{name}{CONTENT_MARK}{content}" if content else name


def content_of(name: str) -> str | None:
    """The content version a versioned collection's name carries (None for names without one)."""
    tail = name.rsplit(VERSION_MARK, 1)[-1]
    parts = tail.split("_")
    mark = CONTENT_MARK.lstrip("_")  # the parts are split on "_"
    return parts[2][len(mark):] if len(parts) == 3 and parts[2].startswith(mark) else None


def is_version_of(name: str, alias: str) -> bool:
    return name.startswith(alias + VERSION_MARK)


def stale_versions(collections: Sequence[str], alias: str, current: str | None) -> list[str]:
    """Versions of `alias` that it does not point at: leftovers of failed or killed builds."""
    return sorted(c for c in collections if is_version_of(c, alias) and c != current)


@dataclass
class RebuildReport:
    alias: str
    collection: str
    previous: str | None
    entities: int
    batches: int
    largest_batch_rows: int
    dropped_stale: list[str] = field(default_factory=list)
    kept: bool = False
    previous_dropped: bool = False
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def vectors_per_s(self) -> float:
        """Throughput of the whole build (insert + flush + index + load)."""
        busy = sum(self.seconds.get(k, 0.0) for k in ("insert", "flush", "index", "load"))
        return self.entities / busy if busy > 0 else 0.0


def _discard(store: VectorStore, alias: str, name: str, previous: str | None, log: Callable[[str], None]) -> None:
    """Drop a failed build, unless the alias already points at it (the swap went through, its reply did not)."""
    try:
        if store.alias_target(alias) == name:
            log(f"{alias} already points at {name}: kept")
            return
        log(f"build of {name} failed: dropping it, {alias} stays on {previous}")
        store.drop_collection(name)
    except Exception as error:  # noqa: BLE001 - the next rebuild drops it as stale
        log(f"could not drop {name} ({error}); the next rebuild will")


def complete(store: VectorStore, name: str, rows: int) -> bool:
    """Whether `name` holds exactly `rows` entities and is searchable (loaded)."""
    store.ensure_searchable(name)
    return store.load_state(name) == "Loaded" and store.count(name) == rows


def serves(store: VectorStore, alias: str, current: str | None, content: str | None, rows: int) -> bool:
    """Whether `current` (the alias's collection) holds exactly `rows` entities of `content` and is searchable."""
    if not content or not current or not is_version_of(current, alias) or content_of(current) != content:
        return False
    return complete(store, current, rows)


def rebuild(
    store: VectorStore,
    spec: CollectionSpec,
    alias: str,
    rows: Rows,
    batches: Sequence[tuple[int, int]],
    log: Callable[[str], None] = lambda _: None,
    name: str | None = None,
    content: str | None = None,
    force: bool = False,
) -> RebuildReport:
    """Build a new version of `alias` from `rows` in `batches` ([start, stop) row slices), then swap; or,
    unless `force`, keep the collection the alias points at when it holds `content` complete."""
    started = time.perf_counter()
    previous = store.alias_target(alias)
    stale = stale_versions(store.list_collections(), alias, previous)
    for leftover in stale:
        log(f"dropping {leftover}: an earlier build of {alias} that never went live")
        store.drop_collection(leftover)
    if not force and serves(store, alias, previous, content, rows.frame.height):
        log(f"{alias} already serves {previous}, complete, with content version {content}: kept")
        return RebuildReport(alias, str(previous), previous, rows.frame.height, 0, 0, dropped_stale=stale,
                             kept=True, seconds={"total": round(time.perf_counter() - started, 3)})
    name = name or versioned_name(alias, content=content)
    report = RebuildReport(alias, name, previous, rows.frame.height, len(batches),
                           max((stop - start for start, stop in batches), default=0), dropped_stale=stale)
    try:
        _build(store, spec, name, rows, batches, report, log)
        swap_started = time.perf_counter()
        store.point_alias(alias, name)
        report.seconds["swap"] = round(time.perf_counter() - swap_started, 3)
    except BaseException:
        _discard(store, alias, name, previous, log)
        raise
    if previous and previous != name and not is_version_of(previous, alias):
        log(f"{alias} pointed at {previous}, which this stage did not build: left in place")
    elif previous and previous != name:
        try:
            store.drop_collection(previous)
            report.previous_dropped = True
        except Exception as error:  # noqa: BLE001 - readers are already on the new version
            log(f"could not drop the previous version {previous} ({error}); the next rebuild will")
    report.seconds["total"] = round(time.perf_counter() - started, 3)
    return report


def _build(store: VectorStore, spec: CollectionSpec, name: str, rows: Rows, batches: Sequence[tuple[int, int]],
           report: RebuildReport, log: Callable[[str], None]) -> None:
    """Create `name`, insert `rows` in `batches`, flush, index, load and count it (laps in `report.seconds`)."""
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        report.seconds[step] = round(now - clock, 3)
        clock = now

    store.create_collection(name, spec, rows.dimension)
    for number, (start, stop) in enumerate(batches, start=1):
        store.insert(name, rows.frame.slice(start, stop - start), spec, number)
        if number == 1 or number == len(batches) or number % 10 == 0:
            log(f"{name}: batch {number}/{len(batches)} inserted ({stop} of {rows.frame.height} rows)")
    lap("insert")
    store.flush(name)
    lap("flush")
    store.build_index(name, spec)
    lap("index")
    store.load(name)
    lap("load")
    stored = store.count(name)
    if stored != rows.frame.height:
        raise IncompleteLoadError(f"{name} holds {stored} entities, the source has {rows.frame.height}: "
                                  "it is not staged")


def stage(
    store: VectorStore,
    spec: CollectionSpec,
    alias: str,
    rows: Rows,
    batches: Sequence[tuple[int, int]],
    keep: set[str],
    log: Callable[[str], None] = lambda _: None,
    content: str | None = None,
    force: bool = False,
    last_staged: str | None = None,
) -> RebuildReport:
    """Stage a version of `alias` holding `rows`, loaded, with no alias: readers keep the collection the alias
    points at until a release publishes the staged one. Unless `force`, an existing complete version of the same
    `content` is staged again instead of a new build (the served one, a retained release's or an earlier stage's).

    Clean-up drops only what no release needs: before the build, versions that are neither served (the alias), nor
    in `keep` (the retained releases' versions), nor `last_staged` (the asset's latest materialization's, still the
    release candidate while this build runs): leftovers of killed builds; after a successful build, `last_staged`
    too, now superseded. A failed build leaves `last_staged` as it was, to inspect or publish."""
    started = time.perf_counter()
    served = store.alias_target(alias)
    versions = sorted((c for c in store.list_collections() if is_version_of(c, alias)), reverse=True)
    reused = None
    if not force and content:
        same = [c for c in versions if content_of(c) == content]
        reused = next((c for c in sorted(same, key=lambda c: c != served) if complete(store, c, rows.frame.height)),
                      None)
    protected = {served, reused, last_staged, *keep}
    leftovers = sorted(c for c in versions if c not in protected)
    for leftover in leftovers:
        log(f"dropping {leftover}: a version of {alias} that is neither served, retained by a release, nor staged")
        store.drop_collection(leftover)
    if reused is not None:
        log(f"{reused} already holds content version {content}, complete and searchable: staged again "
            f"({'served now' if reused == served else 'not served'})")
        return RebuildReport(alias, reused, served, rows.frame.height, 0, 0, dropped_stale=leftovers, kept=True,
                             seconds={"total": round(time.perf_counter() - started, 3)})
    name = versioned_name(alias, content=content)
    report = RebuildReport(alias, name, served, rows.frame.height, len(batches),
                           max((stop - start for start, stop in batches), default=0), dropped_stale=leftovers)
    try:
        _build(store, spec, name, rows, batches, report, log)
    except BaseException:
        try:
            log(f"staging {name} failed: dropping it; {alias} stays on {served}")
            store.drop_collection(name)
        except Exception as error:  # noqa: BLE001 - the next stage drops it as a leftover
            log(f"could not drop {name} ({error}); the next stage will")
        raise
    if last_staged in versions and last_staged not in {served, name, *keep}:
        log(f"dropping {last_staged}: the earlier stage of {alias}, superseded and never published")
        store.drop_collection(last_staged)
        report.dropped_stale.append(last_staged)
    report.seconds["total"] = round(time.perf_counter() - started, 3)
    return report
