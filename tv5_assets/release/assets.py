"""The `release` asset and the `rollback` job: Write-Audit-Publish over every serving store (thin Dagster wiring).

The stores stage (tv5_assets.vector_store, agentdb) and their checks audit the staged versions; `release` asks the
gate (release.gate) whether every blocking check of every store's lineage passed on the data the store read, and
only then moves every store's pointer (release.publish) and records the manifest. A stopped release fails its
step naming what stopped it; the previous release stays served, its manifest the asset's last materialization.
"""


import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Sequence

import dagster as dg
import polars as pl
from pydantic import Field

from tv5_assets.agentdb.assets import agentdb
from tv5_assets.core.checking import latest_metadata
from tv5_assets.core.lake import DataLake
from tv5_assets.core.metadata import markdown_table
from tv5_assets.core.pools import RELEASE_POOL
from tv5_assets.core.releases import DEFAULT_KEEP_PREVIOUS, STAGED, Registry
from tv5_assets.core.versioning import versioned_asset
from tv5_assets.ingestion import served_days
from tv5_assets.ingestion.assets import FOLDED_DAYS
from tv5_assets.ingestion.day_assets import published_days
from tv5_assets.evaluation.assets import recommendation_quality
from tv5_assets.graph_store.assets import graph
from tv5_assets.graph_store.resources import Neo4jResource
from tv5_assets.release import gate
from tv5_assets.release.catalog import check_specs
from tv5_assets.release.pointers import AgentDBLink, GraphSlot, MilvusAlias, Pointer
from tv5_assets.release.publish import publish, publisher_lock, recover
from tv5_assets.vector_store.assets import assets as collections
from tv5_assets.vector_store.resources import MILVUS_STEP_TAGS, MilvusResource

GROUP = "release"
OWNERS = ["team:data-platform"]
# the order stores switch in: the Milvus collections ("for you" row), then AgentDB (RL state), then the graph
STORES: tuple[dg.AssetKey, ...] = (*(c.key for c in collections), agentdb.key, graph.key)
# audited with the stores and recorded in the manifest (served-vs-most-popular), nothing of its own to publish
EVIDENCE: tuple[dg.AssetKey, ...] = (recommendation_quality.key,)
RELEASE_ID = "release_id"
MAX_LISTED = 20  # blocking findings named in a stopped release's message (all of them in its metadata)

AC = dg.AutomationCondition
# once every store is staged and audited: after any store has a new materialization, none in progress, every
# blocking check of the stores passed
AFTER_STORES = (
    AC.any_deps_updated().since_last_handled()
    & ~AC.any_deps_missing()
    & ~AC.any_deps_in_progress()
    & ~AC.in_progress()
    & AC.all_deps_blocking_checks_passed()
).with_label("after_stores_audited")


class ReleaseConfig(dg.Config):
    keep_previous: int = Field(default=DEFAULT_KEEP_PREVIOUS, ge=0,
                               description="published releases kept complete and ready besides the served one")


def pointers(milvus: MilvusResource, lake: DataLake, neo4j: Neo4jResource) -> list[Pointer]:
    """Every store's pointer, in the publishing order."""
    return [*(MilvusAlias(c.key.to_user_string(), milvus) for c in collections), AgentDBLink(lake),
            GraphSlot(neo4j)]


def staged_versions(report: gate.GateReport) -> dict[str, str]:
    """What each store staged: its latest materialization's `staged_version`."""
    versions = {}
    for store, read in report.stores.items():
        version = read.metadata.get(STAGED)
        if version:
            versions[store] = str(version)
    return versions


def days_not_folded(ratings_metadata: dict[str, object] | None, lake: DataLake) -> list[str]:
    """Arrival days published to the stores that the latest `ratings` (its metadata) did not fold in: a full release
    built from it would serve stores without them (the days' rows would be lost until the next refit)."""
    folded = set((ratings_metadata or {}).get(FOLDED_DAYS) or [])
    published = served_days.published_days(served_days.published_folder(lake.base_dir))
    return [d.isoformat() for d in published if d.isoformat() not in folded]


def release_id_for(target: dict[str, str], now: dt.datetime | None = None) -> str:
    """`r<UTC time>_<hash of the staged versions>`: sortable, and naming what it publishes."""
    digest = hashlib.sha256(json.dumps(target, sort_keys=True).encode()).hexdigest()[:8]
    return f"r{(now or dt.datetime.now(dt.UTC)):%Y%m%d%H%M%S}_{digest}"


def manifest_of(release_id: str, report: gate.GateReport, target: dict[str, str]) -> dict:
    return {
        RELEASE_ID: release_id,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "stores": {store: {"version": target[store], "data_version": read.data_version,
                           "code_version": read.code_version}
                   for store, read in report.stores.items() if store in target},
        "lake": {asset: read.data_version for asset, read in sorted(report.lineage.items())},
        "checks": [{"asset": f.asset, "check": f.rule, "blocks": f.blocks, "message": f.message,
                    "figures": f.figures} for f in report.findings],
    }


def findings_table(findings: Sequence[gate.Finding]) -> str:
    frame = pl.DataFrame({"asset": [f.asset for f in findings], "check": [f.rule for f in findings],
                          "blocks": [f.blocks for f in findings], "message": [f.message[:160] for f in findings]},
                         schema={"asset": pl.String, "check": pl.String, "blocks": pl.Boolean, "message": pl.String})
    return markdown_table(frame, rows=len(findings))


def stores_table(manifest: dict) -> str:
    stores = manifest["stores"]
    return markdown_table(pl.DataFrame({
        "store": list(stores), "version": [s["version"] for s in stores.values()],
        "data_version": [s["data_version"] or "" for s in stores.values()],
        "code_version": [s["code_version"] or "" for s in stores.values()]}), rows=len(stores))


def apply_retention(registry: Registry, all_pointers: Sequence[Pointer], keep_previous: int,
                    staged: dict[str, str], log) -> list[str]:
    """Forget the releases beyond the retention and drop their versions no retained release or stage needs."""
    retained = set(registry.retained_ids(keep_previous))
    expired = [r for r in registry.history() if r not in retained]
    needed = {(s, v["version"]) for r in retained for s, v in registry.manifest(r)["stores"].items()}
    needed |= set(staged.items())
    for release_id in expired:
        for store, entry in registry.manifest(release_id)["stores"].items():
            pointer = next((p for p in all_pointers if p.store == store), None)
            if pointer is not None and (store, entry["version"]) not in needed:
                log(f"{store}: dropping {entry['version']} of release {release_id} (beyond the retention)")
                pointer.discard(entry["version"])
    registry.forget(expired)
    return expired


def shelve_unserved(registry: Registry, all_pointers: Sequence[Pointer], staged: dict[str, str],
                    log: Callable[[str], None]) -> dict[str, float]:
    """Compress every retained version that is neither served nor staged (core.shelf: the previous release's
    graph store and AgentDB file; Milvus collections stay loaded); returns the seconds each took."""
    served = registry.served()
    keep = {(s, v["version"]) for s, v in (served or {}).get("stores", {}).items()} | set(staged.items())
    seconds = {}
    for release_id in registry.history():
        for store, entry in registry.manifest(release_id)["stores"].items():
            pointer = next((p for p in all_pointers if p.store == store), None)
            if pointer is None or (store, entry["version"]) in keep:
                continue
            started = time.perf_counter()
            if pointer.shelve(entry["version"]):
                took = seconds[f"{store} {entry['version']}"] = round(time.perf_counter() - started, 2)
                log(f"{store}: shelved {entry['version']} of release {release_id} (compressed until it is served "
                    f"again) in {took:.1f} s")
    return seconds


@versioned_asset(
    key=GROUP,
    group_name=GROUP,
    deps=[*STORES, *EVIDENCE],
    pool=RELEASE_POOL,
    op_tags=MILVUS_STEP_TAGS,  # it opens Milvus (Lite: one process at a time)
    owners=OWNERS,
    kinds={"milvus", "neo4j", "agentdb"},
    automation_condition=AFTER_STORES,
    description=(
        "Publishes every serving store at once, only when every blocking check of every store's lineage passed "
        "on the data that store read (release.gate: the data version each store read is its input's latest; "
        "each blocking check's latest evaluation on that data version passed, even one from an earlier run; "
        "lake files still hash as materialized; the stores' own checks passed on their staged versions). Then "
        "marks every staged version with the release id (a Milvus collection property `tv5.release_id`, a row "
        "of the AgentDB file's `tv5_releases` table, the graph's (:Release {key: 'graph'}) node) and moves the "
        "pointers (the four Milvus aliases, the data/agentdb.db link, the graph's public labels or a store swap) "
        "from a journal written first, reads every store's version and release id back, and records the "
        "manifest (release id, each store's version, data and code versions, the lake's data versions, every "
        "gating check with its figures) under data/releases. A stopped release fails naming the check; the "
        "previous release stays served. The previous release is kept ready for `rollback`: its Milvus "
        "collections loaded, its graph store and AgentDB file shelved (zstd-compressed, restored by a rollback)."
    ),
)
def release(context: dg.AssetExecutionContext, config: ReleaseConfig, milvus: MilvusResource, lake: DataLake,
            neo4j: Neo4jResource) -> dg.MaterializeResult:
    started = time.perf_counter()
    registry = Registry.in_lake(lake.base_dir)
    all_pointers = pointers(milvus, lake, neo4j)
    with publisher_lock(registry, context.log.info):
        recovered = recover(registry, all_pointers, context.log.info)
        gate_started = time.perf_counter()
        report = gate.audit(context.instance, check_specs(), (*STORES, *EVIDENCE),
                            sources=set(published_days.keys))
        gate_s = time.perf_counter() - gate_started
        served = registry.served_id()
        if unfolded := days_not_folded(latest_metadata(context, "ratings"), lake):
            raise dg.Failure(description=f"release stopped: arrival day(s) {', '.join(unfolded)} are published to "
                             "the stores but not folded into the `ratings` these stores were built from; publishing "
                             f"would drop them. Materialize `ratings` and what follows it again (the refit); the "
                             f"stores still serve {served or 'what they served before'}")
        if not report.passed:
            listed = "\n".join(f"- {f.message}" for f in report.blocking[:MAX_LISTED])
            more = len(report.blocking) - MAX_LISTED
            raise dg.Failure(
                description=f"release stopped: {len(report.blocking)} blocking finding(s); the stores still serve "
                f"{served or 'what they served before (no release published yet)'}:\n{listed}"
                + (f"\n(and {more} more: see stopped_by)" if more > 0 else ""),
                metadata={"stopped_by": dg.MetadataValue.md(findings_table(report.blocking)),
                          "served_release": served or "", "gate_s": round(gate_s, 2)})
        target = staged_versions(report)
        current = registry.served()
        if current and {s: v["version"] for s, v in current["stores"].items()} == target:
            release_id, manifest, switched = current[RELEASE_ID], current, None
            context.log.info(f"every store already serves release {release_id}: nothing to publish")
        else:
            release_id = release_id_for(target)
            manifest = manifest_of(release_id, report, target)
            registry.save_manifest(manifest)
            switched = publish(registry, all_pointers, release_id, target, context.log.info)
        expired = apply_retention(registry, all_pointers, config.keep_previous, target, context.log.info)
        shelved = shelve_unserved(registry, all_pointers, target, context.log.info)
    warnings = [f for f in report.findings if not f.blocks and f.figures.get("passed") is False]
    return dg.MaterializeResult(
        data_version=dg.DataVersion(release_id),
        metadata={
            RELEASE_ID: release_id,
            "previous_release": registry.previous_id() or "",
            "stores": dg.MetadataValue.md(stores_table(manifest)),
            "gating_checks": dg.MetadataValue.md(findings_table(report.findings)),
            "manifest": dg.MetadataValue.json(manifest),
            "warnings": len(warnings),
            "switch_s": dg.MetadataValue.json(switched.seconds if switched else {}),
            "recovered": recovered or (switched.recovered if switched else ""),
            "expired_releases": dg.MetadataValue.json(expired),
            "shelved_s": dg.MetadataValue.json(shelved),
            "gate_s": round(gate_s, 2),
            "wall_time_s": round(time.perf_counter() - started, 2),
        },
    )


@dg.op(pool=RELEASE_POOL, tags=MILVUS_STEP_TAGS)
def switch_to_previous_release(context: dg.OpExecutionContext, milvus: MilvusResource, lake: DataLake,
                               neo4j: Neo4jResource) -> None:
    """Every store back to the release published before the served one."""
    registry = Registry.in_lake(lake.base_dir)
    all_pointers = pointers(milvus, lake, neo4j)
    with publisher_lock(registry, context.log.info):
        recover(registry, all_pointers, context.log.info)
        previous = registry.previous_id()
        if previous is None:
            raise dg.Failure(f"no previous release to roll back to (served: {registry.served_id()}, history: "
                             f"{registry.history()})")
        manifest = registry.manifest(previous)
        target = {s: v["version"] for s, v in manifest["stores"].items()}
        gone = {p.store: target[p.store] for p in all_pointers if p.store in target and not p.exists(target[p.store])}
        if gone:  # dropped since (by hand, or a graph stage removed outside `release`): never half a rollback
            raise dg.Failure(f"release {previous} is no longer complete ({gone} are gone): nothing was switched, "
                             f"{registry.served_id()} is still served")
        switched = publish(registry, all_pointers, previous, target, context.log.info)
        shelved = shelve_unserved(registry, all_pointers, {}, context.log.info)
        context.log.info(f"rolled back to {previous}: {switched.seconds}; shelved {shelved}")


@dg.job(description="Switch every store back to the release published before the served one "
                    "(`dagster job execute -m tv5_assets.definitions -j rollback`).")
def rollback() -> None:
    switch_to_previous_release()


assets = [release]
jobs = [rollback]
