"""AgentDB stage: `agentdb`, the RL policies, user vectors and recent steps in one AgentDB file (thin Dagster wiring)."""


import os
import shutil
import time
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from tv5_assets.agentdb import content, writer
from tv5_assets.agentdb.node import NodeRuntime
from tv5_assets.core.automation import FOLLOW_INPUTS, SERVED_FRESHNESS
from tv5_assets.core.checking import staged_version
from tv5_assets.core.lake import DataLake
from tv5_assets.core.metadata import markdown_table
from tv5_assets.core.pools import AGENTDB_POOL, hold_stores
from tv5_assets.core.releases import STAGED, Registry, ensure_free_space
from tv5_assets.core.versioning import versioned_asset

GROUP = "rl"
OWNERS = ["team:data-platform"]
FILE_NAME = "agentdb.db"  # what readers open: a symbolic link to the published version, moved by `release`
VERSIONS_DIR = "agentdb.versions"  # staged and retained versions, `agentdb.<content hash>.db`
# metadata keys the checks read back from the latest materialization
RECENT_STEPS = "recent_steps_per_user"
MAX_FILE_MIB = "max_file_mib"
DEFAULT_RECENT_STEPS = 10
DEFAULT_MAX_FILE_MIB = 1024


class AgentDBConfig(dg.Config):
    recent_steps_per_user: int = Field(
        default=DEFAULT_RECENT_STEPS, gt=0,
        description="the last N steps of each user go into AgentDB (the full history stays in episodes.parquet); "
                    "10 keeps an ml-25m-sized file near 1 GiB's half",
    )
    max_file_mib: float = Field(
        default=DEFAULT_MAX_FILE_MIB, gt=0, lt=2048,
        description="size bound the file_under_size_bound check holds the file to (AgentDB refuses 2 GiB)",
    )


# helpers before the asset: its code version reads the module's globals as they are when it is decorated
def estimated_bytes(contents: writer.Contents) -> int:
    """About what the SQLite file will take: the rows in memory (AgentDB's indexes add less than the JSON saves)."""
    frames = (contents.sessions, contents.experiences, contents.episodes)
    return int(sum(f.estimated_size() for f in frames) + contents.vectors.nbytes)


def staged_name(fingerprint: str) -> str:
    return f"agentdb.{fingerprint[:16]}.db"


def served_version(lake: DataLake) -> str | None:
    """The version file `data/agentdb.db` links to (None before the first release, or when it is a plain file)."""
    link = lake.path(FILE_NAME)
    return Path(os.readlink(link)).name if link.is_symlink() else None


def leftovers(versions: Path, keep: set[str]) -> list[Path]:
    """Version files (and temporary folders of killed writes) that no release holds and no stage names."""
    if not versions.is_dir():
        return []
    return sorted(p for p in versions.iterdir()
                  if (p.is_file() and p.name not in keep) or (p.is_dir() and p.name.endswith(".tmp")))



@versioned_asset(
    group_name=GROUP,
    kinds={"agentdb", "sqlite"},
    pool=AGENTDB_POOL,
    automation_condition=FOLLOW_INPUTS,
    freshness_policy=SERVED_FRESHNESS,
    owners=OWNERS,
    description=(
        "One AgentDB 1.6.1 database file, data/agentdb.db, that AgentDB reads: a learning session per user of "
        "`policies` (learning_sessions: id `user-<user_id>`, session_type = the algorithm, config = the "
        "hyperparameters, metadata = archetype, last items, counts, mean reward), each user's vector of "
        "`user_vectors` as an AgentDB episode (task `user_vector`, id = user_id) with its float32 embedding "
        "(episode_embeddings, searchable with ReflexionMemory.retrieveRelevant), and the last "
        "`recent_steps_per_user` steps of each user from `episodes` (learning_experiences; episode, step, "
        "terminal and timeout in metadata). AgentDB writes the schema (the project's Node script), Python's "
        "sqlite3 bulk-loads the rows into a temporary file renamed, when complete, to a staged version "
        "`data/agentdb.versions/agentdb.<content hash>.db` that no reader opens (`staged_version` in the metadata); "
        "the checks audit it and the `release` asset publishes it by moving the `data/agentdb.db` link. A file "
        "of 2 GiB or more is never staged. Clean-up removes only versions neither served, retained by a release, "
        "nor staged. The data version is a hash of the rows loaded. Needs Node and "
        "`npm ci --ignore-scripts --prefix services/agentdb` (scripts/setup)."
    ),
)
def agentdb(
    context: dg.AssetExecutionContext,
    config: AgentDBConfig,
    lake: DataLake,
    policies: pl.DataFrame,
    episodes: pl.LazyFrame,
    user_vectors: pl.DataFrame,
) -> dg.MaterializeResult:
    hold_stores(context.instance, context.run, context.log.info)  # one writer of the file across runs
    started = time.perf_counter()
    node = NodeRuntime.locate()  # fails first, naming node or the npm package, before any work
    built = content.build(policies, episodes, user_vectors, config.recent_steps_per_user)
    prepared = time.perf_counter()
    versions = lake.path(VERSIONS_DIR)
    target = versions / staged_name(built.fingerprint)
    previous_stage = staged_version(context, context.asset_key)
    keep = {target.name, *Registry.in_lake(lake.base_dir).retained_versions(context.asset_key.to_user_string()),
            served_version(lake) or ""}
    for leftover in leftovers(versions, keep | {previous_stage or ""}):  # killed writes, never-published stages
        context.log.info(f"agentdb: removing {leftover.name}: neither served, retained by a release, nor staged")
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    reused = target.exists()
    if not reused:  # the served and retained files stay: the new one must fit beside them
        ensure_free_space(versions, estimated_bytes(built.contents), f"the AgentDB file {target.name}")
    if reused:
        written = writer.Written(path=target, bytes=target.stat().st_size, tables=[], node_peak_rss_mib=None)
        context.log.info(f"agentdb: {target.name} already holds content {built.fingerprint}: staged again")
    else:
        written = writer.write_database(target, built.contents, node)
    if previous_stage and previous_stage not in keep:  # superseded by this stage, never published
        context.log.info(f"agentdb: removing {previous_stage}: the earlier stage, superseded")
        (versions / previous_stage).unlink(missing_ok=True)
    context.log.info(f"agentdb: {built.contents.sessions.height} sessions, {built.contents.experiences.height} "
                     f"steps, {built.contents.episodes.height} vectors -> {written.path} ({written.bytes:,} bytes)")
    return dg.MaterializeResult(
        data_version=dg.DataVersion(built.fingerprint),
        metadata={
            STAGED: target.name,
            "reused": reused,
            "served_version": served_version(lake) or "",
            "path": dg.MetadataValue.path(str(written.path)),
            "file_bytes": written.bytes,
            "file_mib": round(written.bytes / 2**20, 1),
            "sessions": built.contents.sessions.height,
            "experiences": built.contents.experiences.height,
            "vectors": built.contents.episodes.height,
            "vector_dim": int(built.contents.vectors.shape[1]),
            RECENT_STEPS: config.recent_steps_per_user,
            MAX_FILE_MIB: config.max_file_mib,
            "content_hash": built.fingerprint,
            "sessions_preview": dg.MetadataValue.md(markdown_table(built.contents.sessions.head(5))),
            "prepare_s": round(prepared - started, 2),
            "write_s": round(time.perf_counter() - prepared, 2),
        },
    )


assets = [agentdb]
