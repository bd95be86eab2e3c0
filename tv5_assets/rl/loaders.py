"""Load `episodes` (or a replay-buffer view of it) into d3rlpy, copying the data once.

Why state is a `pl.Array(pl.Int32, 5)` column: Arrow stores a fixed-size list as one contiguous
buffer of N x 5 values, row-major, which is exactly the (N, 5) C-order `observations` array d3rlpy
(and Minari) take; a batch's state column is therefore a (rows, 5) NumPy view, and one memcpy puts it
in place. Five int columns would need an interleaving copy, and Parquet compresses the array form
better (consecutive states overlap in 4 of 5 items, which zstd finds in one column, not across five).

The copy: the final arrays are allocated once at full size, and Parquet is decoded batch by batch
straight into them, so peak memory is the arrays plus one batch (no whole decoded table beside them).
d3rlpy's `MDPDataset` then slices those arrays into episodes as views: one copy in all.

d3rlpy keeps no observation after a truncation, so the last step of each episode yields no
transition there and one-step episodes are left out of its buffer; `episodes` itself loses nothing
(its next_state column holds that observation, as Minari's N + 1 observations per episode would).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from tv5_assets.rl.transitions import HISTORY

if TYPE_CHECKING:
    from d3rlpy.dataset import MDPDataset


@dataclass(frozen=True)
class StepArrays:
    """The flat step arrays of the d3rlpy / D4RL convention (one row per step, episodes back to back)."""

    observations: np.ndarray  # (N, HISTORY) int32: the state
    actions: np.ndarray  # (N,) int32: the movie id
    rewards: np.ndarray  # (N,) float32
    terminals: np.ndarray  # (N,) float32, 1.0 = absorbing end (never, here)
    timeouts: np.ndarray  # (N,) float32, 1.0 = truncated (last step of an episode)

    def __len__(self) -> int:
        return len(self.actions)


def step_arrays(episodes: pl.LazyFrame) -> StepArrays:
    """Decode the step columns of `episodes` (in its order) into preallocated NumPy arrays."""
    steps = episodes.select("state", "action", "reward", "terminals", "timeouts")
    n = steps.select(pl.len()).collect().item()
    arrays = StepArrays(
        observations=np.empty((n, HISTORY), dtype=np.int32), actions=np.empty(n, dtype=np.int32),
        rewards=np.empty(n, dtype=np.float32), terminals=np.empty(n, dtype=np.float32),
        timeouts=np.empty(n, dtype=np.float32),
    )
    start = 0
    for batch in steps.collect_batches():
        end = start + batch.height
        if end > n:
            raise RuntimeError(f"episodes changed while loading: more than the {n} steps counted")
        arrays.observations[start:end] = batch["state"].to_numpy()
        arrays.actions[start:end] = batch["action"].to_numpy()
        arrays.rewards[start:end] = batch["reward"].to_numpy()
        arrays.terminals[start:end] = batch["terminals"].to_numpy()
        arrays.timeouts[start:end] = batch["timeouts"].to_numpy()
        start = end
    if start != n:
        raise RuntimeError(f"episodes changed while loading: {start} steps read, {n} counted")
    return arrays


def load_mdp_dataset(episodes: pl.LazyFrame, action_size: int | None = None) -> MDPDataset:
    """A d3rlpy `MDPDataset` (discrete actions = movie ids) over `episodes` or a `replay_buffer` view.

    `action_size` defaults to the largest movie id + 1, so actions index Q-values directly.
    """
    try:
        from d3rlpy import ActionSpace
        from d3rlpy.dataset import MDPDataset
    except ImportError as exc:  # an optional dependency: the asset graph runs without it
        raise ImportError("loading episodes into d3rlpy needs the `rl` extra: pip install 'tv5-assets[rl]'") from exc
    arrays = step_arrays(episodes)
    if not len(arrays):
        raise ValueError("episodes is empty: nothing to load")
    return MDPDataset(
        observations=arrays.observations, actions=arrays.actions, rewards=arrays.rewards,
        terminals=arrays.terminals, timeouts=arrays.timeouts, action_space=ActionSpace.DISCRETE,
        action_size=action_size or int(arrays.actions.max()) + 1,
    )
