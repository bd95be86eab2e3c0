"""What goes into the AgentDB file, from the three input assets, and its content hash (the data version)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import polars as pl

from tv5_assets.agentdb import rows
from tv5_assets.agentdb.writer import Contents
from tv5_assets.core.storage import frame_fingerprint


@dataclass(frozen=True)
class Built:
    contents: Contents
    fingerprint: str


def user_vector_matrix(user_vectors: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray]:
    """`user_vectors` sorted by user and its vectors as one (users, dim) float32 block."""
    frame = user_vectors.sort("user_id")
    if frame.height == 0:
        return frame, np.zeros((0, 0), dtype=np.float32)
    vectors = frame["vector"].to_numpy()
    if vectors.ndim != 2:
        raise ValueError(f"user_vectors.vector must be a fixed-size array, got {frame.schema['vector']}")
    return frame, np.ascontiguousarray(vectors, dtype=np.float32)


def build(policies: pl.DataFrame, episodes: pl.LazyFrame, user_vectors: pl.DataFrame, per_user: int) -> Built:
    """All rows of the database: sessions from `policies`, the last `per_user` steps per user of `episodes`
    (two streaming passes, never the whole 25M rows in memory) and one embedded episode per user vector."""
    spans = rows.user_spans(episodes).collect()
    steps = rows.recent_steps(episodes, spans, per_user)
    vector_frame, vectors = user_vector_matrix(user_vectors)
    contents = Contents(
        sessions=rows.sessions(policies, spans, per_user),
        experiences=rows.experiences(steps),
        episodes=rows.vector_episodes(vector_frame, policies),
        vectors=vectors,
    )
    digest = hashlib.sha256()
    for frame in (contents.sessions, contents.experiences, contents.episodes):
        digest.update(frame_fingerprint(frame).encode())
    digest.update(str(vectors.shape).encode())
    digest.update(vectors.tobytes())
    return Built(contents=contents, fingerprint=digest.hexdigest()[:24])
