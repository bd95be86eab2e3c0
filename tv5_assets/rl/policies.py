"""One policy record per user: which RL algorithm serves them, with what settings, from what state.

The archetype decides the algorithm (ALGORITHM_BY_ARCHETYPE, with the reason); the algorithm decides
the hyperparameters (HYPERPARAMETERS). The snapshot (last 5 items, last timestamp) and the episode,
step and reward figures come from `episodes`, aggregated per user in one pass.

Replay buffers are views: `replay_buffer` filters `episodes` to one algorithm's users lazily, so six
algorithms never mean six copies of 25M steps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import polars as pl

from tv5_assets.rl.transitions import HISTORY, PAD, STATE
from tv5_assets.synthetic import archetypes as arc

Q_LEARNING, SARSA, DQN = "Q-Learning", "SARSA", "DQN"
ACTOR_CRITIC, PPO, DECISION_TRANSFORMER = "Actor-Critic", "PPO", "Decision Transformer"
ALGORITHMS: tuple[str, ...] = (Q_LEARNING, SARSA, DQN, ACTOR_CRITIC, PPO, DECISION_TRANSFORMER)

# archetype -> (algorithm, why)
ALGORITHM_BY_ARCHETYPE: dict[str, tuple[str, str]] = {
    arc.CASUAL: (Q_LEARNING, "few ratings each: a cheap value update over the 5-item state is enough"),
    arc.SENIOR: (SARSA, "stable tastes: on-policy updates stay close to what was actually shown"),
    arc.FAMILY: (SARSA, "on-policy and conservative: no risky off-policy exploration for households with children"),
    arc.YOUNG_ADULT: (DQN, "a fast-moving catalogue of recent films: function approximation, replay, epsilon-greedy"),
    arc.GENRE_SPECIALIST: (ACTOR_CRITIC, "narrow taste: a stochastic policy concentrated on few genres, critic-guided"),
    arc.INTERNATIONAL: (PPO, "a heterogeneous language mix: clipped updates stay stable across sub-populations"),
    arc.CINEPHILE: (DECISION_TRANSFORMER, "the longest histories: a return-conditioned sequence model uses them"),
}


@dataclass(frozen=True)
class Hyperparameters:
    """Training settings of one algorithm; None where a setting does not apply to it."""

    learning_rate: float
    discount: float
    exploration: str
    epsilon_start: float | None = None
    epsilon_end: float | None = None
    epsilon_decay_steps: int | None = None
    entropy_coef: float | None = None
    clip_range: float | None = None
    batch_size: int | None = None
    context_length: int | None = None

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self).items() if v is not None)


HYPERPARAMETERS: dict[str, Hyperparameters] = {
    Q_LEARNING: Hyperparameters(0.1, 0.9, "epsilon-greedy, linear decay", 1.0, 0.05, 10_000),
    SARSA: Hyperparameters(0.05, 0.9, "epsilon-greedy, linear decay", 0.5, 0.05, 10_000),
    DQN: Hyperparameters(1e-4, 0.99, "epsilon-greedy, linear decay", 1.0, 0.01, 100_000, batch_size=64),
    ACTOR_CRITIC: Hyperparameters(3e-4, 0.99, "entropy bonus", entropy_coef=0.01, batch_size=64),
    PPO: Hyperparameters(3e-4, 0.99, "entropy bonus, clipped updates", entropy_coef=0.01, clip_range=0.2,
                         batch_size=256),
    DECISION_TRANSFORMER: Hyperparameters(1e-4, 1.0, "return-conditioned (target return = best seen)",
                                          batch_size=64, context_length=20),
}

HYPERPARAMETER_DTYPE = pl.Struct({
    "learning_rate": pl.Float64, "discount": pl.Float64, "exploration": pl.String,
    "epsilon_start": pl.Float64, "epsilon_end": pl.Float64, "epsilon_decay_steps": pl.Int32,
    "entropy_coef": pl.Float64, "clip_range": pl.Float64, "batch_size": pl.Int32, "context_length": pl.Int32,
})
SCHEMA = pl.Schema({
    "user_id": pl.Int32,
    "archetype": pl.String,
    "algorithm": pl.String,
    "hyperparameters": HYPERPARAMETER_DTYPE,
    "last_items": STATE,
    "last_timestamp": pl.Datetime("us", "UTC"),
    "episodes": pl.UInt32,
    "steps": pl.UInt32,
    "mean_reward": pl.Float32,
})


def algorithm_table() -> pl.DataFrame:
    """archetype, algorithm, hyperparameters: the mapping as a frame to join on."""
    rows = [
        {"archetype": name, "algorithm": algo, "hyperparameters": asdict(HYPERPARAMETERS[algo])}
        for name, (algo, _) in ALGORITHM_BY_ARCHETYPE.items()
    ]
    return pl.DataFrame(rows, schema={k: SCHEMA[k] for k in ("archetype", "algorithm", "hyperparameters")})


def describe_mapping() -> str:
    """The mapping and every algorithm's settings in words (for the asset description)."""
    mapping = "; ".join(f"{a} -> {algo} ({why})" for a, (algo, why) in ALGORITHM_BY_ARCHETYPE.items())
    settings = "; ".join(f"{algo}: {HYPERPARAMETERS[algo].describe()}" for algo in ALGORITHMS)
    return f"Archetype -> algorithm: {mapping}. Hyperparameters: {settings}."


def user_summaries(episodes: pl.LazyFrame) -> pl.LazyFrame:
    """Per user: snapshot (state after the last step, its time), episode and step counts, mean reward.

    The state after the last step is the user's last HISTORY actions, 0-padded on the left: built
    from the flat action column, so the 25M-row state arrays are never read. Episode ids are
    consecutive within a user, so max - min + 1 counts them without a distinct.
    """
    padding = pl.lit([PAD] * HISTORY, dtype=pl.List(pl.Int32))
    padded = pl.concat_list(padding, pl.col("last_items")).list.tail(HISTORY).list.to_array(HISTORY)
    return episodes.group_by("user_id").agg(
        pl.col("action").tail(HISTORY).alias("last_items"),
        pl.col("timestamp").last().alias("last_timestamp"),
        (pl.col("episode_id").max() - pl.col("episode_id").min() + 1).cast(pl.UInt32).alias("episodes"),
        pl.len().cast(pl.UInt32).alias("steps"),
        pl.col("reward").mean().cast(pl.Float32).alias("mean_reward"),
    ).with_columns(padded.alias("last_items"))


def build_policies(episodes: pl.LazyFrame, demographics: pl.DataFrame) -> pl.DataFrame:
    """The `policies` table: one row per user of `episodes`, sorted by user_id.

    Raises when a user has no archetype or an archetype has no algorithm: a silent default would
    train the wrong model for them.
    """
    users = user_summaries(episodes).collect()
    joined = users.join(demographics.select("user_id", "archetype"), on="user_id", how="left")
    missing = joined.filter(pl.col("archetype").is_null())["user_id"]
    if missing.len():
        raise ValueError(f"{missing.len()} user(s) of episodes have no archetype in demographics, "
                         f"e.g. {missing.sort().head(5).to_list()}")
    unknown = sorted(set(joined["archetype"].unique()) - set(ALGORITHM_BY_ARCHETYPE))
    if unknown:
        raise ValueError(f"archetype(s) without an algorithm: {unknown}; known: {sorted(ALGORITHM_BY_ARCHETYPE)}")
    return joined.join(algorithm_table(), on="archetype", how="left").select(SCHEMA.names()).sort("user_id")


def replay_buffer(episodes: pl.LazyFrame, policies: pl.LazyFrame | pl.DataFrame, algorithm: str) -> pl.LazyFrame:
    """The steps of `algorithm`'s users: a lazy filter over `episodes` (a view, not a copy), order kept."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; known: {list(ALGORITHMS)}")
    users = policies.lazy().filter(pl.col("algorithm") == algorithm).select("user_id").collect()["user_id"]
    return episodes.filter(pl.col("user_id").is_in(users.implode()))
