"""The AgentDB stage's pure parts: which steps go in, the rows' layout, the rules on good and bad reports,
and the Node adapter naming what is missing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tv5_assets.agentdb import content, rows, rules
from tv5_assets.agentdb.node import INSTALL_HINT, AgentDBUnavailable, NodeRuntime
from tv5_assets.rl import policies as po
from tv5_assets.rl import transitions as tr
from tv5_assets.synthetic import archetypes as arc

T0 = datetime(2020, 1, 1, tzinfo=timezone.utc)


def _episodes(steps_per_user: dict[int, int]) -> pl.DataFrame:
    """Stored episodes for users with the given step counts, built by the RL stage's own code."""
    ratings = pl.DataFrame(
        [(user, 100 + i, 1.0 + (i % 9) * 0.5, T0 + timedelta(days=40 * i))
         for user, n in steps_per_user.items() for i in range(n)],
        schema={"user_id": pl.Int32, "movie_id": pl.Int32, "rating": pl.Float32,
                "timestamp": pl.Datetime("us", "UTC")}, orient="row")
    return tr.episodes_frame(ratings.lazy(), tr.DEFAULT_SESSION_GAP).collect()


def _policies(episodes: pl.DataFrame) -> pl.DataFrame:
    users = episodes["user_id"].unique().sort()
    archetypes = pl.DataFrame({"user_id": users, "archetype": [arc.CASUAL] * users.len()})
    return po.build_policies(episodes.lazy(), archetypes)


def test_recent_steps_are_each_users_last_n_in_order_with_episode_ends_kept() -> None:
    episodes = _episodes({1: 12, 2: 3, 7: 5})
    spans = rows.user_spans(episodes.lazy()).collect()
    picked = rows.recent_steps(episodes.lazy(), spans, 4)
    assert picked.group_by("user_id").len().sort("user_id").rows() == [(1, 4), (2, 3), (7, 4)]
    for user, part in picked.group_by("user_id"):
        full = episodes.filter(pl.col("user_id") == user[0])
        assert part.equals(full.tail(min(4, full.height)))  # the most recent, in time order
    assert picked.filter(pl.col("timeouts")).height >= 3  # every user's last step (a truncation) is in
    assert spans.sort("user_id")["first_timestamp"].to_list() == [T0] * 3


def test_experience_rows_in_agentdb_layout() -> None:
    episodes = _episodes({5: 7})
    frame = rows.experiences(episodes, first_id=10)
    assert frame.columns == rows.EXPERIENCE_COLUMNS
    first, last = frame.row(0, named=True), frame.row(-1, named=True)
    assert first["id"] == 10 and last["id"] == 16 and first["session_id"] == "user-5"
    assert json.loads(first["state"]) == [0, 0, 0, 0, 0] and json.loads(first["next_state"]) == [0, 0, 0, 0, 100]
    assert json.loads(last["state"]) == episodes["state"][-1].to_list() and last["action"] == "106"
    assert first["timestamp"] == int(T0.timestamp() * 1000)
    # success = 3.5 stars or more; ratings cycle 1.0, 1.5, ... 5.0
    stars = episodes["reward"] * 4.5 + 0.5
    assert frame["success"].to_list() == (stars >= 3.5).cast(pl.Int64).to_list()
    meta = [json.loads(m) for m in frame["metadata"]]
    assert [m["step"] for m in meta] == episodes["step"].to_list()
    assert [m["timeout"] for m in meta] == episodes["timeouts"].to_list() and not any(m["terminal"] for m in meta)


def test_session_rows_carry_algorithm_hyperparameters_and_snapshot() -> None:
    episodes = _episodes({3: 6, 4: 2})
    policies = _policies(episodes)
    spans = rows.user_spans(episodes.lazy()).collect()
    frame = rows.sessions(policies, spans, per_user=4)
    assert frame.columns == rows.SESSION_COLUMNS and frame["id"].to_list() == ["user-3", "user-4"]
    assert frame["session_type"].to_list() == [po.Q_LEARNING] * 2 and set(frame["status"]) == {"active"}
    config = json.loads(frame["config"][0])
    assert config["learningRate"] == 0.1 and config["discountFactor"] == 0.9 and config["explorationRate"] == 0.05
    assert config["hyperparameters"]["epsilon_decay_steps"] == 10_000
    meta = [json.loads(m) for m in frame["metadata"]]
    assert [m["steps_in_agentdb"] for m in meta] == [4, 2] and [m["steps"] for m in meta] == [6, 2]
    assert meta[0]["last_items"] == policies["last_items"][0].to_list()
    assert frame["start_time"][0] == int(T0.timestamp() * 1000) < frame["end_time"][0]


def test_vector_episodes_are_keyed_by_user_and_aligned_with_the_matrix() -> None:
    episodes = _episodes({9: 2, 2: 3})
    policies = _policies(episodes)
    vectors = pl.DataFrame({"user_id": pl.Series([9, 2], dtype=pl.Int32),
                            "vector": pl.Series([[1.0, 0.0], [0.0, 1.0]], dtype=pl.Array(pl.Float32, 2))})
    frame, matrix = content.user_vector_matrix(vectors)
    epis = rows.vector_episodes(frame, policies)
    assert epis["id"].to_list() == [2, 9] and epis["session_id"].to_list() == ["user-2", "user-9"]
    assert np.array_equal(matrix, np.array([[0, 1], [1, 0]], dtype=np.float32))  # sorted like the episodes
    assert set(epis["task"]) == {rows.VECTOR_TASK}


def test_content_hash_is_deterministic_and_follows_the_window() -> None:
    episodes = _episodes({1: 8, 2: 4})
    policies = _policies(episodes)
    vectors = pl.DataFrame({"user_id": pl.Series([1, 2], dtype=pl.Int32),
                            "vector": pl.Series([[1.0, 0.0], [0.0, 1.0]], dtype=pl.Array(pl.Float32, 2))})
    a = content.build(policies, episodes.lazy(), vectors, 3)
    b = content.build(policies, episodes.lazy(), vectors.reverse(), 3)
    c = content.build(policies, episodes.lazy(), vectors, 5)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert a.contents.experiences.height == 6 and c.contents.experiences.height == 9


# ---- rules, on good and bad reports --------------------------------------------------------------------------

WANT = rules.Expected(users=3, sessions_by_type={"DQN": 2, "PPO": 1}, steps=25, vectors=3, dim=4)
GOOD = {"sessions": 3, "session_users": 3, "sessions_by_type": {"DQN": 2, "PPO": 1}, "integrity": "ok",
        "experiences": 25, "experiences_without_session": 0, "episodes": 3, "embeddings": 3,
        "embedding_dims": {"4": 3}, "file_bytes": 1000}
CLI = {"episodes": 3, "embeddings": 3}


def test_count_rules_pass_on_a_matching_report() -> None:
    assert rules.one_session_per_user(GOOD, WANT).passed
    assert rules.recent_steps_count(GOOD, WANT, 10).passed
    assert rules.vector_count(GOOD, CLI, WANT).passed


@pytest.mark.parametrize("change", [{"sessions": 4}, {"session_users": 2},
                                    {"sessions_by_type": {"DQN": 3}}, {"integrity": "*** in database main ***"}])
def test_one_session_per_user_fails(change: dict) -> None:
    result = rules.one_session_per_user({**GOOD, **change}, WANT)
    assert not result.passed and "learning sessions" in result.description


@pytest.mark.parametrize("change", [{"experiences": 24}, {"experiences_without_session": 1}])
def test_recent_steps_count_fails(change: dict) -> None:
    assert not rules.recent_steps_count({**GOOD, **change}, WANT, 10).passed


@pytest.mark.parametrize("change,cli", [({"embeddings": 2}, CLI), ({"embedding_dims": {"4": 2, "3": 1}}, CLI),
                                        ({}, {"episodes": 3, "embeddings": 0})])
def test_vector_count_fails(change: dict, cli: dict) -> None:
    assert not rules.vector_count({**GOOD, **change}, cli, WANT).passed


def _hits(*pairs: tuple[int, float]) -> dict:
    return {"search_ms": 3, "hits": [{"episode_id": u, "session_id": f"user-{u}", "similarity": s} for u, s in pairs]}


def test_search_rule_needs_the_user_first_or_tied_first() -> None:
    assert rules.search_finds_user([5], [_hits((5, 1.0), (2, 0.3))]).passed
    assert rules.search_finds_user([5], [_hits((2, 1.0), (5, 1.0))]).passed  # identical vectors tie
    missed = rules.search_finds_user([5, 6], [_hits((5, 1.0)), _hits((2, 0.9), (6, 0.8))])
    assert not missed.passed and "missed [6]" in missed.description
    assert not rules.search_finds_user([], []).passed


def test_size_rule() -> None:
    assert rules.file_under_bound(1000, 2000, 5000, GOOD).passed
    assert not rules.file_under_bound(3000, 2000, 5000, {**GOOD, "file_bytes": 3000}).passed  # over the bound
    assert not rules.file_under_bound(1000, 2000, 900, GOOD).passed  # over AgentDB's limit
    assert not rules.file_under_bound(1000, 2000, 5000, {**GOOD, "file_bytes": 10}).passed  # AgentDB read less
    assert not rules.file_under_bound(None, 2000, 5000, {}).passed


def test_users_for_the_search_are_random_but_deterministic() -> None:
    ids = np.arange(100)
    assert np.array_equal(rules.sample_users(ids, 3, 0), rules.sample_users(ids, 3, 0))
    assert len(set(rules.sample_users(ids, 3, 0))) == 3 and len(rules.sample_users(ids[:2], 3, 0)) == 2


# ---- the Node adapter names what is missing --------------------------------------------------------------------

def test_missing_node_is_named(tmp_path: Path) -> None:
    with pytest.raises(AgentDBUnavailable, match=r"no `node` binary on PATH") as raised:
        NodeRuntime.locate(path=str(tmp_path))
    assert INSTALL_HINT in str(raised.value)


def test_missing_agentdb_package_is_named_with_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(AgentDBUnavailable, match=r"agentdb@1\.6\.1 is not installed") as raised:
        NodeRuntime.locate(service_dir=tmp_path)
    assert "npm ci --ignore-scripts --prefix services/agentdb" in str(raised.value)


def test_installed_agentdb_is_the_pinned_one() -> None:
    node = NodeRuntime.locate()
    manifest = json.loads((node.service_dir / "node_modules" / "agentdb" / "package.json").read_text())
    lock = json.loads((node.service_dir / "package-lock.json").read_text())
    assert manifest["version"] == lock["packages"]["node_modules/agentdb"]["version"] == "1.6.1"
