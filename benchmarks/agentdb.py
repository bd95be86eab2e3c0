"""Benchmark: the `agentdb` asset on an ml-25m-shaped input, against AgentDB's own per-row path.

Run: `python -m benchmarks.agentdb [--baseline-steps 20000]` (under `flock /tmp/tv5-bench.lock`). Target
(2 cores / 24 GiB): the asset in at most 3 min and 4 GiB peak RSS (Python and its Node child added up).

Inputs: `episodes` and `policies` of the ml-25m-shaped release, built by benchmarks.rl's own phases
(cached in data/bench/rl, untimed). `user_vectors` are SYNTHESISED: seeded random unit vectors, one per
user of `policies` (the asset's cost depends only on their shape; the real ones would need the encoder
over 62K texts first).

Phases, each in its own spawned process:
- asset: what the asset does (locate Node, build the rows, AgentDB creates the schema, sqlite3 bulk load,
  rename into place). Peak RSS: the Python process's own, and the Node process's own (its VmHWM, which
  unlike getrusage's children figure does not count the forked Python pages); they add up at most.
- read back: what the checks run: AgentDB's stats through the project's Node script, the AgentDB CLI
  `stats`, and 3 similarity searches through ReflexionMemory.retrieveRelevant.
- baseline: AgentDB's per-row API from Node (LearningSystem.startSession per user, submitFeedback per
  step, then save) on the first `--baseline-steps` steps of the same window, EXTRAPOLATED linearly by
  steps to the whole window (vectors and sessions excluded from the extrapolation, so it understates).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks import rl as rl_bench
from benchmarks.common import BENCH_DIR, measure, report
from tv5_assets.agentdb import content, rows
from tv5_assets.agentdb.assets import DEFAULT_RECENT_STEPS
from tv5_assets.agentdb.node import NodeRuntime
from tv5_assets.agentdb.writer import write_database
from tv5_assets.core.storage import file_sha256, write_parquet_atomic
from tv5_assets.embeddings.cache import vector_column

RL = rl_bench.OUT
OUT = BENCH_DIR / "agentdb"
DB = OUT / "agentdb.db"
DIM = 384
TARGET_S = 180.0
TARGET_RSS_MIB = 4 * 1024


def ensure_inputs() -> dict[str, int]:
    """episodes/policies from benchmarks.rl (built once), and random unit user vectors (built once)."""
    rl_bench.OUT.mkdir(parents=True, exist_ok=True)
    rl_bench.ensure_inputs()
    if not (RL / "episodes.parquet").exists():
        rl_bench.episodes_asset()
    if not (RL / "policies.parquet").exists():
        rl_bench.policies_asset()
    if not (OUT / "user_vectors.parquet").exists():
        users = pl.read_parquet(RL / "policies.parquet", columns=["user_id"])["user_id"].sort()
        noise = np.random.default_rng(0).standard_normal((users.len(), DIM)).astype(np.float32)
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        write_parquet_atomic(pl.DataFrame({"user_id": users}).with_columns(vector_column(noise)),
                             OUT / "user_vectors.parquet")
    return {"users": pl.scan_parquet(RL / "policies.parquet").select(pl.len()).collect().item(),
            "steps": pl.scan_parquet(RL / "episodes.parquet").select(pl.len()).collect().item()}


def asset_phase(per_user: int) -> dict[str, object]:
    """Exactly the asset's work, reading its inputs as the IO manager would."""
    start = time.perf_counter()
    node = NodeRuntime.locate()
    policies = pl.read_parquet(RL / "policies.parquet")
    vectors = pl.read_parquet(OUT / "user_vectors.parquet")
    built = content.build(policies, pl.scan_parquet(RL / "episodes.parquet"), vectors, per_user)
    prepared = time.perf_counter()
    written = write_database(DB, built.contents, node)
    return {"sessions": built.contents.sessions.height, "steps": built.contents.experiences.height,
            "vectors": built.contents.episodes.height, "bytes": written.bytes, "prepare_s": prepared - start,
            "write_s": time.perf_counter() - prepared, "node_rss_mib": written.node_peak_rss_mib}


def read_back_phase() -> dict[str, object]:
    """What the checks run through AgentDB: stats (Node API), CLI stats, 3 searches for users' own vectors."""
    node = NodeRuntime.locate()
    start = time.perf_counter()
    stats = node.stats(DB)
    stats_s = time.perf_counter() - start
    cli = node.cli_stats(DB)
    cli_s = time.perf_counter() - start - stats_s
    frame = pl.read_parquet(OUT / "user_vectors.parquet")
    picked = np.random.default_rng(0).choice(frame.height, 3, replace=False)
    searched = time.perf_counter()
    results = node.search(DB, frame["vector"].to_numpy()[picked], k=5)
    found = [r["hits"][0]["episode_id"] == int(frame["user_id"][int(i)]) for i, r in zip(picked, results)]
    return {"stats": stats, "cli": cli, "stats_s": stats_s, "cli_s": cli_s,
            "search_s": time.perf_counter() - searched, "search_ms": [r["search_ms"] for r in results],
            "found_first": found, "node_rss_mib": stats["node_peak_rss_mib"]}


def baseline_phase(per_user: int, n_steps: int) -> dict[str, object]:
    """AgentDB's per-row API (LearningSystem) on the first n_steps steps of the window, from Node."""
    node = NodeRuntime.locate()
    episodes = pl.scan_parquet(RL / "episodes.parquet")
    spans = rows.user_spans(episodes).collect()
    steps = rows.recent_steps(episodes, spans, per_user).head(n_steps)
    experiences = rows.experiences(steps)
    algorithms = pl.read_parquet(RL / "policies.parquet", columns=["user_id", "algorithm"])
    payload = (steps.select("user_id").with_columns(experiences.select("state", "action", "reward", "next_state",
                                                                        "timestamp"))
               .join(algorithms, on="user_id", how="left", maintain_order="left"))
    with tempfile.TemporaryDirectory(prefix="tv5-agentdb-baseline-") as tmp:
        steps_file = Path(tmp, "steps.json")
        steps_file.write_text(json.dumps(payload.to_dicts()))
        result = node.call("feedback", Path(tmp, "baseline.db"), str(steps_file))
        result["bytes"] = Path(tmp, "baseline.db").stat().st_size
    result["node_rss_mib"] = result["node_peak_rss_mib"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recent-steps", type=int, default=DEFAULT_RECENT_STEPS)
    parser.add_argument("--baseline-steps", type=int, default=20_000)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    shape, prep_s, _ = measure(ensure_inputs)
    asset, asset_s, asset_rss = measure(asset_phase, args.recent_steps)
    first_sha = file_sha256(DB)  # untimed
    again, again_s, again_rss = measure(asset_phase, args.recent_steps)  # idempotent re-run over the old file
    back, back_s, back_rss = measure(read_back_phase)
    base, _, _ = measure(baseline_phase, args.recent_steps, args.baseline_steps)
    peak = asset_rss + asset["node_rss_mib"]  # if both peaked at once
    base_s = base["total_ms"] / 1000
    base_full_s = base_s * asset["steps"] / base["steps"]
    stats = back["stats"]
    report([
        ("input", f"ml-25m-shaped: {shape['steps']:,} steps, {shape['users']:,} users; user vectors SYNTHESISED "
                  f"(random unit, {DIM}-d); inputs ready in {prep_s:.1f} s (untimed)"),
        ("asset", f"{asset_s:.1f} s (rows {asset['prepare_s']:.1f} s, AgentDB schema + sqlite3 load + rename "
                  f"{asset['write_s']:.1f} s), peak RSS {asset_rss:,.0f} MiB Python + {asset['node_rss_mib']:,.0f} "
                  f"MiB Node (schema)"),
        ("", f"{asset['sessions']:,} sessions, {asset['steps']:,} steps (last {args.recent_steps} per user), "
             f"{asset['vectors']:,} vectors -> {asset['bytes']:,} bytes ({asset['bytes'] / 2**20:,.0f} MiB)"),
        ("re-run", f"{again_s:.1f} s, peak RSS {again_rss:,.0f} MiB, {again['bytes']:,} bytes, same counts: "
                   f"{(again['sessions'], again['steps'], again['vectors']) == (asset['sessions'], asset['steps'], asset['vectors'])}"
                   f", byte-identical file: {file_sha256(DB) == first_sha}"),
        ("target", f"<= {TARGET_S:.0f} s: {'PASS' if asset_s <= TARGET_S else 'FAIL'}; <= {TARGET_RSS_MIB:,} MiB: "
                   f"{'PASS' if peak <= TARGET_RSS_MIB else 'FAIL'}"),
        ("AgentDB reads", f"sessions {stats['sessions']:,} ({stats['session_users']:,} users), experiences "
                          f"{stats['experiences']:,}, episodes {stats['episodes']:,}, embeddings "
                          f"{stats['embeddings']:,} {stats['embedding_dims']}, integrity {stats['integrity']}; "
                          f"CLI stats {back['cli']}"),
        ("read back", f"{back_s:.1f} s in all: stats {back['stats_s']:.1f} s, CLI stats {back['cli_s']:.1f} s, "
                      f"3 searches {back['search_s']:.1f} s (in AgentDB {back['search_ms']} ms), found first "
                      f"{back['found_first']}; Node peak RSS (stats) {back['node_rss_mib']:,.0f} MiB"),
        ("baseline", f"AgentDB LearningSystem startSession + submitFeedback per row on {base['steps']:,} steps "
                     f"({base['sessions']:,} sessions): {base_s:.1f} s = {base['steps'] / base_s:,.0f} steps/s, "
                     f"Node peak RSS {base['node_rss_mib']:,.0f} MiB; EXTRAPOLATED to {asset['steps']:,} steps: "
                     f"{base_full_s:,.0f} s (sessions' and vectors' cost not included)"),
        ("speed-up", f"{base_full_s / asset_s:,.1f}x (extrapolated per-row steps alone / the whole asset)"),
    ])


if __name__ == "__main__":
    main()
