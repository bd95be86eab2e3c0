"""Asset checks of `agentdb`: AgentDB's own code reads the staged file (the version the asset's latest
materialization staged, which no reader opens yet) and reports; the rules compare with the inputs.

One multi-check, so the file (loaded whole by sql.js) is read once for the counts, once by the CLI and
once for the searches. Every check blocks: a recommender reading a file with missing sessions, a wrong
step window, vectors it cannot find or a file AgentDB would refuse would be misled. A file AgentDB cannot
read (damaged, truncated) fails every check with AgentDB's error; a missing Node or agentdb package
raises (nothing can be checked) with the piece named.
"""


from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from tv5_assets.agentdb import rules
from tv5_assets.agentdb.assets import (
    DEFAULT_MAX_FILE_MIB,
    DEFAULT_RECENT_STEPS,
    VERSIONS_DIR,
    MAX_FILE_MIB,
    RECENT_STEPS,
    agentdb,
)
from tv5_assets.agentdb.content import user_vector_matrix
from tv5_assets.agentdb.node import AgentDBError, NodeRuntime
from tv5_assets.agentdb.writer import AGENTDB_MAX_BYTES
from tv5_assets.core.checking import RuleResult, check_result, latest_metadata, staged_version
from tv5_assets.core.lake import DataLake
from tv5_assets.core.pools import AGENTDB_POOL, hold_stores

ASSET = "agentdb"
ONE_SESSION = "one_session_per_user"
STEPS = "recent_steps_count"
VECTORS = "one_vector_per_user"
SEARCH = "search_finds_user_first"
SIZE = "file_under_size_bound"


class AgentDBCheckConfig(dg.Config):
    search_users: int = Field(default=3, gt=0, description="random users whose own vector must come back first")
    seed: int = Field(default=0, description="picks the random users (deterministic)")


def _spec(name: str, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=agentdb, description=description, blocking=True,
                             additional_deps=("policies", "episodes", "user_vectors"))


def recorded(context: dg.AssetCheckExecutionContext) -> tuple[int, float]:
    """(recent_steps_per_user, max_file_mib) of the last materialization (the defaults when none recorded them)."""
    metadata = latest_metadata(context, ASSET) or {}
    steps = metadata.get(RECENT_STEPS, DEFAULT_RECENT_STEPS)
    bound = metadata.get(MAX_FILE_MIB, DEFAULT_MAX_FILE_MIB)
    return int(steps), float(bound)


@dg.multi_asset_check(
    specs=[
        _spec(ONE_SESSION, "AgentDB reads exactly one learning session per user of policies, per algorithm as in "
                           "policies, and the file passes SQLite's quick_check"),
        _spec(STEPS, "AgentDB reads exactly min(steps, recent_steps_per_user) learning experiences per user of "
                     "episodes, none without a session"),
        _spec(VECTORS, "AgentDB (Node API and CLI `stats`) reads one episode + embedding per user vector, all of "
                       "the vectors' dimension"),
        _spec(SEARCH, "random users' own vectors, searched with AgentDB's ReflexionMemory.retrieveRelevant, rank "
                      "those users first"),
        _spec(SIZE, "the file is under max_file_mib and AgentDB's 2 GiB limit, and AgentDB reads all of it"),
    ],
    ins={"policies": dg.AssetIn("policies"), "episodes": dg.AssetIn("episodes"),
         "user_vectors": dg.AssetIn("user_vectors")},
    pool=AGENTDB_POOL,
)
def agentdb_checks(context: dg.AssetCheckExecutionContext, config: AgentDBCheckConfig, lake: DataLake,
                   policies: pl.DataFrame, episodes: pl.LazyFrame, user_vectors: pl.LazyFrame):
    hold_stores(context.instance, context.run, context.log.info)
    node = NodeRuntime.locate()  # raises naming node or the npm package
    per_user, bound_mib = recorded(context)
    staged = staged_version(context, ASSET)  # the version staged, not the one served
    path = lake.path(VERSIONS_DIR, staged or "none-staged.db")
    size = path.stat().st_size if path.exists() else None
    want = rules.expected(policies, episodes, user_vectors, per_user)
    try:
        stats = node.stats(path)
        cli = node.cli_stats(path)
    except AgentDBError as error:
        failed = rules.unreadable(str(error))
        for name in (ONE_SESSION, STEPS, VECTORS, SEARCH, SIZE):
            yield check_result(ASSET, name, RuleResult(False, failed.description, {**failed.metadata,
                                                                                  "file_bytes": size or 0}))
        return
    context.log.info(f"AgentDB reports: {stats}; CLI stats: {cli}")
    yield check_result(ASSET, ONE_SESSION, rules.one_session_per_user(stats, want))
    yield check_result(ASSET, STEPS, rules.recent_steps_count(stats, want, per_user))
    yield check_result(ASSET, VECTORS, rules.vector_count(stats, cli, want))
    yield check_result(ASSET, SEARCH, _search(node, path, user_vectors, config))
    yield check_result(ASSET, SIZE, rules.file_under_bound(size, int(bound_mib * 2**20), AGENTDB_MAX_BYTES, stats))


def _search(node: NodeRuntime, path: Path, user_vectors: pl.LazyFrame, config: AgentDBCheckConfig) -> RuleResult:
    frame, vectors = user_vector_matrix(user_vectors.collect())
    ids = frame["user_id"].to_numpy()
    picked = rules.sample_users(ids, config.search_users, config.seed)
    try:
        results = node.search(path, vectors[picked], k=5)
    except AgentDBError as error:
        return rules.unreadable(str(error))
    return rules.search_finds_user([int(u) for u in ids[picked]], results)


asset_checks = [agentdb_checks]
