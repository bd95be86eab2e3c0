"""RL stage: `episodes` (offline-RL transitions) and `policies` (one per user) (thin Dagster wiring)."""


import time
from datetime import timedelta

import dagster as dg
import polars as pl
from pydantic import Field

from tv5_assets.core.metadata import markdown_table
from tv5_assets.core.storage import frame_fingerprint
from tv5_assets.core.versioning import versioned_asset
from tv5_assets.rl import policies as policy_logic
from tv5_assets.rl import transitions

GROUP = "rl"
OWNERS = ["team:data-platform"]
SESSION_GAP_DAYS = "session_gap_days"  # metadata key the boundary check reads back
DEFAULT_GAP_DAYS = transitions.DEFAULT_SESSION_GAP / timedelta(days=1)


class EpisodesConfig(dg.Config):
    session_gap_days: float = Field(
        default=DEFAULT_GAP_DAYS, gt=0,
        description="a new episode starts when a user's gap since their previous rating exceeds this many days",
    )


@versioned_asset(
    group_name=GROUP,
    kinds={"polars", "parquet"},
    owners=OWNERS,
    description=(
        "One offline-RL step per rating, in the flat layout of d3rlpy's MDPDataset / Minari (episodes back to "
        "back): user_id, episode_id (global, consecutive), step (0-based within the episode), timestamp, state, "
        "action, reward, next_state, terminals, timeouts. Each user's ratings are ordered by timestamp, ties (same "
        "second) broken by movie_id. state = the last 5 movie ids the user rated before this step, most recent "
        "last, 0-padded (history runs across episodes); action = movie_id; reward = (rating - 0.5) / 4.5, so "
        "0.5 stars -> 0 and 5 stars -> 1; next_state = state with the action appended. A new episode starts at a "
        "user's first rating and when the gap since their previous rating exceeds `session_gap_days` (default "
        "30). The last step of an episode is a truncation (timeouts = True): the log pauses, the user did not "
        "leave for good, so terminals is always False. States are Array(Int32, 5) so that they load as one "
        "(N, 5) block (see rl.loaders.load_mdp_dataset). Written by streaming a lazy query to Parquet (bounded "
        "memory at 25M steps); the input sort is skipped when ratings are already in step order. The data "
        "version is a content hash of the rows (one streaming aggregate), so an unchanged result keeps "
        "`policies` fresh."
    ),
)
def episodes(context: dg.AssetExecutionContext, config: EpisodesConfig, ratings: pl.LazyFrame) -> dg.Output[pl.LazyFrame]:
    started = time.perf_counter()
    presorted = transitions.in_step_order(ratings)
    frame = transitions.episodes_frame(ratings, timedelta(days=config.session_gap_days), presorted=presorted)
    summary = transitions.summarise(frame)
    context.log.info(f"episodes: {summary['steps']} steps in {summary['episodes']} episodes "
                     f"({'ratings already in step order' if presorted else 'ratings sorted first'})")
    return dg.Output(
        frame,
        data_version=dg.DataVersion(summary["fingerprint"]),
        metadata={
            "dagster/row_count": summary["steps"],
            "steps": summary["steps"],
            "episodes": summary["episodes"],
            "users": summary["users"],
            "mean_steps_per_episode": round(summary["steps"] / max(summary["episodes"], 1), 2),
            "mean_reward": round(float(summary["mean_reward"] or 0.0), 4),
            "reward_formula": "(rating - 0.5) / 4.5",
            SESSION_GAP_DAYS: config.session_gap_days,
            "input_already_in_step_order": presorted,
            "content_hash": summary["fingerprint"],
            "preview": dg.MetadataValue.md(markdown_table(frame.head(5).collect())),
            "plan_and_hash_time_s": round(time.perf_counter() - started, 3),
        },
    )


@versioned_asset(
    group_name=GROUP,
    kinds={"polars", "parquet"},
    owners=OWNERS,
    description=(
        "One policy per user of `episodes`: user_id, archetype (from `demographics`), algorithm, hyperparameters "
        "(struct: learning_rate, discount, exploration, epsilon_start/end/decay_steps, entropy_coef, clip_range, "
        "batch_size, context_length; null where an algorithm has no such setting), the state snapshot "
        "(last_items: the state after the user's last step; last_timestamp), episodes, steps and mean_reward. "
        f"{policy_logic.describe_mapping()} A user without an archetype fails the run rather than getting a "
        "default. Replay buffers per algorithm are views, not copies: rl.policies.replay_buffer(episodes, "
        "policies, algorithm) is a lazy filter of `episodes` to that algorithm's users."
    ),
)
def policies(
    context: dg.AssetExecutionContext, episodes: pl.LazyFrame, demographics: pl.LazyFrame
) -> dg.Output[pl.DataFrame]:
    started = time.perf_counter()
    frame = policy_logic.build_policies(episodes, demographics.select("user_id", "archetype").collect())
    shares = (
        frame.group_by("algorithm").agg(pl.len().alias("users"), pl.col("steps").sum().alias("replay_steps"),
                                        pl.col("mean_reward").mean().round(4).alias("mean_reward"))
        .with_columns((100 * pl.col("users") / max(frame.height, 1)).round(2).alias("users_pct"))
        .sort("users", descending=True)
    )
    context.log.info(f"policies: {frame.height} users, algorithms {dict(shares.select('algorithm', 'users').iter_rows())}")
    return dg.Output(
        frame,
        data_version=dg.DataVersion(frame_fingerprint(frame)),
        metadata={
            "users": frame.height,
            "algorithm_shares": dg.MetadataValue.md(markdown_table(shares, rows=len(shares))),
            "algorithm_pct": dg.MetadataValue.json(dict(zip(shares["algorithm"], shares["users_pct"]))),
            "preview": dg.MetadataValue.md(markdown_table(frame.drop("hyperparameters"))),
            "wall_time_s": round(time.perf_counter() - started, 3),
        },
    )


assets = [episodes, policies]
