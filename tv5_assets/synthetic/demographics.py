"""The `demographics` table: behaviour -> archetype (population quotas) -> person (per-user draws)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from tv5_assets.synthetic import archetypes, people
from tv5_assets.synthetic.behaviour import user_behaviour
from tv5_assets.synthetic.draws import uniform


@dataclass(frozen=True)
class Demographics:
    users: pl.DataFrame  # the asset: contract columns, sorted by user_id
    behaviour: pl.DataFrame  # the features each archetype was assigned from, with the archetype


def build_demographics(ratings: pl.DataFrame | pl.LazyFrame, movies: pl.DataFrame, seed: int,
                       shares: dict[str, float] | None = None) -> Demographics:
    """One row per user who rated: archetype from behaviour, every other field keyed by (seed, user_id)."""
    shares = dict(archetypes.TARGET_SHARES if shares is None else shares)
    behaviour = user_behaviour(ratings, movies)
    user_ids = behaviour["user_id"].to_numpy()
    seeds = people.user_seeds(seed, user_ids)
    archetype = archetypes.assign_archetypes(behaviour, uniform(seeds, people.TIEBREAK), shares)
    users = people.draw_people(user_ids, seeds, archetype, behaviour["first_rating"])
    return Demographics(users, behaviour.with_columns(pl.Series("archetype", archetype, dtype=pl.String)))
