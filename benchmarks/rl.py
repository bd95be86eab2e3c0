"""Benchmark: `episodes` and `policies` on an ml-25m-shaped input, against a per-user pandas approach.

Run: `python -m benchmarks.rl [--baseline-users 1500]` (under `flock /tmp/tv5-bench.lock`). Target
(2 cores / 24 GiB): both assets in at most 90 s together, each under 8 GiB peak RSS.

Each asset runs in its own spawned process, doing what the asset does: `episodes` checks the input
order, computes its content hash (one streaming aggregate) and streams the lazy query to Parquet;
`policies` aggregates the written episodes per user and joins the archetypes. The input is the
ml-25m-shaped release of benchmarks.common; its demographics come from the synthetic stage's own
`build_demographics` (computed once, cached, not timed).

The baseline is the straightforward pandas way: `groupby("user_id").apply(...)` building each user's
states, next states and episode boundaries with shifts, then a groupby for the per-user figures. It is
timed on the first `--baseline-users` users and extrapolated linearly by steps to the whole input
(its cost is per user and per step); it writes nothing, so the ratio understates the speed-up.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import polars as pl

from benchmarks.common import BENCH_DIR, measure, ml25m_tables, report
from tv5_assets.core.storage import frame_fingerprint, write_parquet_atomic
from tv5_assets.rl import policies as policy_logic
from tv5_assets.rl import transitions

TABLES = BENCH_DIR / "tables"
OUT = BENCH_DIR / "rl"
SEED = 20_240_601
TARGET_S = 90.0
TARGET_RSS_MIB = 8 * 1024
GAP = transitions.DEFAULT_SESSION_GAP


def ensure_inputs() -> None:
    """The cached ml-25m-shaped tables and their demographics (built once, outside the timings)."""
    if not (TABLES / "ratings.parquet").exists():
        ml25m_tables()
    if not (OUT / "demographics.parquet").exists():
        from tv5_assets.synthetic.demographics import build_demographics

        built = build_demographics(pl.scan_parquet(TABLES / "ratings.parquet"),
                                   pl.read_parquet(TABLES / "movies.parquet"), SEED)
        write_parquet_atomic(built.users.select("user_id", "archetype"), OUT / "demographics.parquet")


def episodes_asset() -> dict[str, object]:
    ratings = pl.scan_parquet(TABLES / "ratings.parquet")
    start = time.perf_counter()
    presorted = transitions.in_step_order(ratings)
    frame = transitions.episodes_frame(ratings, GAP, presorted=presorted)
    summary = transitions.summarise(frame)
    frame.head(5).collect()  # the asset's preview
    hashed = time.perf_counter()
    write_parquet_atomic(frame, OUT / "episodes.parquet")
    return {**summary, "presorted": presorted, "hash_s": hashed - start, "sink_s": time.perf_counter() - hashed,
            "bytes": (OUT / "episodes.parquet").stat().st_size}


def policies_asset() -> dict[str, object]:
    episodes = pl.scan_parquet(OUT / "episodes.parquet")
    demographics = pl.read_parquet(OUT / "demographics.parquet")
    frame = policy_logic.build_policies(episodes, demographics)
    frame_fingerprint(frame)
    write_parquet_atomic(frame, OUT / "policies.parquet")
    return {"users": frame.height, "algorithms": dict(frame["algorithm"].value_counts().iter_rows())}


def _pandas_user(group, gap):
    """One user's steps, the pandas way: shifts within the user's frame."""
    group = group.sort_values(["timestamp", "movie_id"])
    out = group[["user_id", "timestamp"]].copy()
    history = [group["movie_id"].shift(k, fill_value=0) for k in range(transitions.HISTORY, 0, -1)]
    out["state"] = list(np.stack(history, axis=1))
    out["action"] = group["movie_id"]
    out["next_state"] = list(np.stack([*history[1:], group["movie_id"]], axis=1))
    out["reward"] = (group["rating"] - 0.5) / 4.5
    start = group["timestamp"].diff().gt(gap) | (np.arange(len(group)) == 0)
    out["episode"] = start.cumsum() - 1
    out["timeouts"] = start.shift(-1, fill_value=True)
    out["terminals"] = False
    return out


def pandas_baseline(n_users: int) -> tuple[int, float]:
    """(steps, seconds) for the groupby-apply approach, plus per-user figures, on users 1..n_users."""
    ratings = pl.scan_parquet(TABLES / "ratings.parquet")
    first = ratings.select(pl.col("user_id").unique().sort().head(n_users)).collect()["user_id"]
    frame = ratings.filter(pl.col("user_id").is_in(first.implode())).collect().to_pandas()
    start = time.perf_counter()
    steps = frame.groupby("user_id", group_keys=False).apply(_pandas_user, pd.Timedelta(GAP))
    steps.groupby("user_id").agg(steps=("action", "size"), mean_reward=("reward", "mean"),
                                 last_timestamp=("timestamp", "last"), episodes=("episode", "max"))
    return len(steps), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-users", type=int, default=1_500)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    _, prep_s, _ = measure(ensure_inputs)
    ep, ep_s, ep_rss = measure(episodes_asset)
    po, po_s, po_rss = measure(policies_asset)
    (base_steps, base_s), _, _ = measure(pandas_baseline, args.baseline_users)
    steps = int(ep["steps"])
    total_s = ep_s + po_s
    baseline_full_s = base_s * steps / base_steps
    ok_time, ok_rss = total_s <= TARGET_S, max(ep_rss, po_rss) <= TARGET_RSS_MIB
    report([
        ("input", f"ml-25m-shaped: {steps:,} ratings, {ep['users']:,} users (inputs ready in {prep_s:.1f} s, untimed)"),
        ("episodes", f"{ep_s:.1f} s, peak RSS {ep_rss:,.0f} MiB: order check + content hash {ep['hash_s']:.1f} s, "
                     f"sink to Parquet {ep['sink_s']:.1f} s ({ep['bytes'] / 2**20:,.0f} MiB); "
                     f"input already in step order: {ep['presorted']}"),
        ("", f"{ep['episodes']:,} episodes, {steps / max(int(ep['episodes']), 1):.1f} steps each, "
             f"mean reward {float(ep['mean_reward']):.4f}"),
        ("policies", f"{po_s:.1f} s, peak RSS {po_rss:,.0f} MiB: {po['users']:,} users, {po['algorithms']}"),
        ("total", f"{total_s:.1f} s (target <= {TARGET_S:.0f} s: {'PASS' if ok_time else 'FAIL'}), peak RSS "
                  f"{max(ep_rss, po_rss):,.0f} MiB (target <= {TARGET_RSS_MIB:,} MiB: {'PASS' if ok_rss else 'FAIL'})"),
        ("steps/s", f"{steps / ep_s:,.0f} (episodes alone), {steps / total_s:,.0f} (episodes + policies)"),
        ("baseline", f"pandas groupby-apply per user on the first {args.baseline_users:,} users ({base_steps:,} "
                     f"steps): {base_s:.1f} s = {base_steps / base_s:,.0f} steps/s, EXTRAPOLATED linearly to "
                     f"{steps:,} steps: {baseline_full_s:,.0f} s (writes nothing)"),
        ("speed-up", f"{baseline_full_s / total_s:,.1f}x (extrapolated baseline / measured episodes + policies)"),
    ])


if __name__ == "__main__":
    main()
