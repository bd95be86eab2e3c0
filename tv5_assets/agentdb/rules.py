"""The AgentDB checks' rules: what AgentDB reported against what the input assets say it must hold.

Plain functions over plain values (AgentDB's JSON reports, expected counts), so each can be tested on a
good and a bad report without Node; the checks feed them what AgentDB's own code printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from tv5_assets.agentdb import rows
from tv5_assets.core.checking import RuleResult

TIE = 1e-6  # identical vectors score the same: the user ranked in that tie counts as found first


@dataclass(frozen=True)
class Expected:
    """What the file must hold, from the inputs: users and their algorithms, steps in the window, vectors."""

    users: int
    sessions_by_type: dict[str, int]
    steps: int
    vectors: int
    dim: int


def expected(policies: pl.DataFrame, episodes: pl.LazyFrame, user_vectors: pl.LazyFrame, per_user: int) -> Expected:
    """Expected contents: one session per policy, min(steps, per_user) steps per user of `episodes`, one
    vector per row of `user_vectors` (counted from the inputs, not from the written rows)."""
    per_user_steps = episodes.group_by("user_id").agg(pl.len().alias("n")).select(
        pl.min_horizontal(pl.col("n"), pl.lit(per_user)).sum()).collect().item()
    vectors = user_vectors.select(pl.len()).collect().item()
    width = user_vectors.collect_schema()["vector"]
    dim = int(getattr(width, "size", 0) or 0)
    return Expected(
        users=policies["user_id"].n_unique(),
        sessions_by_type=dict(policies["algorithm"].value_counts().iter_rows()),
        steps=int(per_user_steps or 0),
        vectors=int(vectors),
        dim=dim,
    )


def unreadable(error: str) -> RuleResult:
    return RuleResult(False, f"AgentDB could not read the file: {error}", {"error": error})


def one_session_per_user(stats: dict[str, Any], want: Expected) -> RuleResult:
    """AgentDB counts one learning session per user of `policies`, with each algorithm's share intact."""
    found = {"sessions": stats["sessions"], "distinct_session_users": stats["session_users"],
             "sessions_by_type": stats["sessions_by_type"], "integrity": stats["integrity"]}
    passed = (stats["sessions"] == stats["session_users"] == want.users
              and stats["sessions_by_type"] == want.sessions_by_type and stats["integrity"] == "ok")
    description = (f"AgentDB reads {stats['sessions']} learning sessions for {stats['session_users']} distinct users; "
                   f"policies has {want.users} users (integrity: {stats['integrity']})")
    return RuleResult(passed, description, {**found, "expected_users": want.users,
                                            "expected_by_type": want.sessions_by_type})


def recent_steps_count(stats: dict[str, Any], want: Expected, per_user: int) -> RuleResult:
    """AgentDB counts exactly the last `per_user` steps of every user, each tied to a session."""
    passed = stats["experiences"] == want.steps and stats["experiences_without_session"] == 0
    description = (f"AgentDB reads {stats['experiences']} learning experiences "
                   f"({stats['experiences_without_session']} without a session); expected {want.steps} "
                   f"(the last {per_user} steps of each user of episodes)")
    return RuleResult(passed, description, {"experiences": stats["experiences"], "expected": want.steps,
                                            "orphans": stats["experiences_without_session"],
                                            "recent_steps_per_user": per_user})


def vector_count(stats: dict[str, Any], cli: dict[str, int], want: Expected) -> RuleResult:
    """AgentDB (its Node API and its CLI `stats`) counts one embedded episode per user vector, all of one dim."""
    dims = {int(k): v for k, v in stats["embedding_dims"].items()}
    passed = (stats["episodes"] == stats["embeddings"] == want.vectors
              and cli.get("episodes") == cli.get("embeddings") == want.vectors
              and dims == ({want.dim: want.vectors} if want.vectors else {}))
    description = (f"AgentDB reads {stats['embeddings']} embeddings on {stats['episodes']} episodes (CLI stats: "
                   f"{cli.get('embeddings')} / {cli.get('episodes')}), dimensions {dims}; user_vectors has "
                   f"{want.vectors} vectors of {want.dim}")
    return RuleResult(passed, description, {"embeddings": stats["embeddings"], "episodes": stats["episodes"],
                                            "cli_stats": cli, "dims": {str(k): v for k, v in dims.items()},
                                            "expected": want.vectors})


def sample_users(user_ids: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Positions of `count` users drawn without replacement (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(len(user_ids), size=min(count, len(user_ids)), replace=False))


def _found_first(user_id: int, hits: list[dict[str, Any]]) -> bool:
    if not hits:
        return False
    top = hits[0]["similarity"]
    own = [h for h in hits if h["episode_id"] == user_id and h["session_id"] == f"{rows.SESSION_PREFIX}{user_id}"]
    return bool(own) and own[0]["similarity"] >= top - TIE


def search_finds_user(user_ids: list[int], results: list[dict[str, Any]]) -> RuleResult:
    """Each sampled user's own vector, searched through AgentDB, ranks that user first (or tied first)."""
    outcome = {str(u): [h["episode_id"] for h in r["hits"][:3]] for u, r in zip(user_ids, results)}
    missed = [u for u, r in zip(user_ids, results) if not _found_first(u, r["hits"])]
    passed = bool(user_ids) and len(results) == len(user_ids) and not missed
    slowest = max((r["search_ms"] for r in results), default=0)
    description = (f"ReflexionMemory.retrieveRelevant found {len(user_ids) - len(missed)} of {len(user_ids)} "
                   f"random users first by their own vector" + (f"; missed {missed}" if missed else ""))
    return RuleResult(passed, description, {"users": user_ids, "top_hits": outcome, "slowest_search_ms": slowest})


def file_under_bound(size: int | None, bound_bytes: int, hard_limit: int, stats: dict[str, Any]) -> RuleResult:
    """The file AgentDB reads is under the configured bound and under AgentDB's own 2 GiB limit."""
    if size is None:
        return RuleResult(False, "no AgentDB file", {"bound_bytes": bound_bytes})
    read_size = stats.get("file_bytes")
    passed = size <= bound_bytes and size < hard_limit and read_size == size
    description = (f"{size:,} bytes ({size / 2**20:.1f} MiB) against a bound of {bound_bytes / 2**20:g} MiB "
                   f"(AgentDB refuses {hard_limit / 2**30:.0f} GiB); AgentDB read {read_size} bytes")
    return RuleResult(passed, description, {"bytes": size, "bound_bytes": bound_bytes, "agentdb_read_bytes": read_size})
