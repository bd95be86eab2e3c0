"""The rows AgentDB gets, in its own tables' layout, built as whole polars frames (no per-row Python).

- `learning_sessions`: one per user (id `user-<user_id>`); session_type = the policy's algorithm (our six
  names are AgentDB's); config = the hyperparameters as JSON, with the keys LearningSystem reads
  (learningRate, discountFactor, explorationRate) beside the full set; start/end = first/last step (ms);
  status `active` (LearningSystem.predict and submitFeedback accept only active sessions); metadata =
  archetype, last_items, counts, mean reward and how many steps are in the file.
- `learning_experiences`: the last `per_user` steps of each user (time order), state/next_state as JSON
  arrays, action = movie id as text, reward, success = a rating of 3.5 stars or more, timestamp (ms),
  metadata = episode, step, terminal, timeout (so episode ends stay visible).
- `episodes` + `episode_embeddings`: one episode per user vector (id = user_id, task `user_vector`,
  session_id = the user's session), its embedding a float32 BLOB (ReflexionMemory's layout).
"""

from __future__ import annotations

import polars as pl

from tv5_assets.rl import transitions

SESSION_PREFIX = "user-"
VECTOR_TASK = "user_vector"
STATUS = "active"
SUCCESS_STARS = 3.5
SUCCESS_REWARD = (SUCCESS_STARS - transitions.MIN_RATING) / (transitions.MAX_RATING - transitions.MIN_RATING)
STEP_COLUMNS = ["user_id", "episode_id", "step", "timestamp", "state", "action", "reward", "next_state",
                "terminals", "timeouts"]

SESSION_COLUMNS = ["id", "user_id", "session_type", "config", "start_time", "end_time", "status", "metadata"]
EXPERIENCE_COLUMNS = ["id", "session_id", "state", "action", "reward", "next_state", "success", "timestamp",
                      "metadata"]
EPISODE_COLUMNS = ["id", "ts", "session_id", "task", "reward", "success", "tags", "metadata", "created_at"]


def session_id(user_id: pl.Expr) -> pl.Expr:
    return pl.concat_str(pl.lit(SESSION_PREFIX), user_id.cast(pl.String))


def user_spans(episodes: pl.LazyFrame) -> pl.LazyFrame:
    """Per user: the stored position of their last step and their first step's time (one streaming pass)."""
    return (episodes.select("user_id", "timestamp").with_row_index("row")
            .group_by("user_id")
            .agg(pl.col("row").max().alias("last_row"), pl.col("timestamp").min().alias("first_timestamp")))


def recent_steps(episodes: pl.LazyFrame, spans: pl.DataFrame, per_user: int) -> pl.DataFrame:
    """The last `per_user` steps of every user, in step order.

    `episodes` is stored sorted by user, timestamp, action with each user's steps contiguous (its blocking
    `steps_in_time_order` check), so a user's last N steps are the N stored rows ending at their last row.
    """
    bounds = spans.lazy().select("user_id", (pl.col("last_row").cast(pl.Int64) - per_user).alias("before"))
    return (episodes.select(STEP_COLUMNS).with_row_index("row")
            .join(bounds, on="user_id")
            .filter(pl.col("row").cast(pl.Int64) > pl.col("before"))
            .sort("row").drop("row", "before")
            .collect())


def _json_array(column: str) -> pl.Expr:
    items = [pl.col(column).arr.get(i).cast(pl.String) for i in range(transitions.HISTORY)]
    return pl.concat_str([pl.lit("["), pl.concat_str(items, separator=","), pl.lit("]")])


def experiences(steps: pl.DataFrame, first_id: int = 1) -> pl.DataFrame:
    """`learning_experiences` rows for the selected steps (ids consecutive from `first_id`, in step order)."""
    return steps.select(
        (pl.int_range(pl.len(), dtype=pl.Int64) + first_id).alias("id"),
        session_id(pl.col("user_id")).alias("session_id"),
        _json_array("state").alias("state"),
        pl.col("action").cast(pl.String).alias("action"),
        pl.col("reward").cast(pl.Float64).round(6).alias("reward"),
        _json_array("next_state").alias("next_state"),
        (pl.col("reward") >= SUCCESS_REWARD - 1e-6).cast(pl.Int64).alias("success"),
        pl.col("timestamp").dt.epoch("ms").alias("timestamp"),
        pl.struct(episode=pl.col("episode_id"), step=pl.col("step"), terminal=pl.col("terminals"),
                  timeout=pl.col("timeouts")).struct.json_encode().alias("metadata"),
    )


def _config() -> pl.Expr:
    hp = pl.col("hyperparameters")
    return pl.struct(
        learningRate=hp.struct.field("learning_rate"),
        discountFactor=hp.struct.field("discount"),
        explorationRate=hp.struct.field("epsilon_end").fill_null(0.0),
        hyperparameters=hp,
    ).struct.json_encode()


def sessions(policies: pl.DataFrame, spans: pl.DataFrame, per_user: int) -> pl.DataFrame:
    """`learning_sessions` rows, one per policy (sorted by user)."""
    frame = policies.sort("user_id").join(spans.select("user_id", "first_timestamp"), on="user_id", how="left")
    in_file = pl.min_horizontal(pl.col("steps").cast(pl.Int64), pl.lit(per_user, pl.Int64))
    metadata = pl.struct(
        user_id=pl.col("user_id"), archetype=pl.col("archetype"),
        last_items=pl.col("last_items").cast(pl.List(pl.Int32)),
        last_timestamp=pl.col("last_timestamp").dt.epoch("ms"),
        episodes=pl.col("episodes"), steps=pl.col("steps"),
        mean_reward=pl.col("mean_reward").cast(pl.Float64).round(6),
        steps_in_agentdb=in_file,
    ).struct.json_encode()
    return frame.select(
        session_id(pl.col("user_id")).alias("id"),
        pl.col("user_id").cast(pl.String).alias("user_id"),
        pl.col("algorithm").alias("session_type"),
        _config().alias("config"),
        pl.col("first_timestamp").fill_null(pl.col("last_timestamp")).dt.epoch("ms").alias("start_time"),
        pl.col("last_timestamp").dt.epoch("ms").alias("end_time"),
        pl.lit(STATUS).alias("status"),
        metadata.alias("metadata"),
    )


def vector_episodes(user_vectors: pl.DataFrame, policies: pl.DataFrame) -> pl.DataFrame:
    """`episodes` rows, one per user vector (id = user_id), sorted by user; the embeddings go in by the same ids."""
    frame = (user_vectors.select("user_id").sort("user_id")
             .join(policies.select("user_id", "archetype", "algorithm", "mean_reward", "last_timestamp"),
                   on="user_id", how="left"))
    seconds = pl.col("last_timestamp").dt.epoch("s").fill_null(0)
    return frame.select(
        pl.col("user_id").cast(pl.Int64).alias("id"),
        seconds.alias("ts"),
        session_id(pl.col("user_id")).alias("session_id"),
        pl.lit(VECTOR_TASK).alias("task"),
        pl.col("mean_reward").cast(pl.Float64).round(6).fill_null(0.0).alias("reward"),
        (pl.col("mean_reward").fill_null(0.0) >= SUCCESS_REWARD).cast(pl.Int64).alias("success"),
        pl.lit(f'["{VECTOR_TASK}"]').alias("tags"),
        pl.struct(user_id=pl.col("user_id"), archetype=pl.col("archetype"), algorithm=pl.col("algorithm"))
        .struct.json_encode().alias("metadata"),
        seconds.alias("created_at"),
    )
