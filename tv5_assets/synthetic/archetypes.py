"""Viewer archetypes, assigned from what users rated so that they agree with observed behaviour.

Each archetype has a score from the user's behaviour (see `behaviour`), built from percentile ranks
so that features on different scales weigh alike:
- Genre Specialist: narrow taste, the lowest genre entropy;
- International: the largest share of non-English titles;
- Family: the largest share of Children/Animation films;
- Senior: the largest share of films from before 1980;
- Cinephile: heavy raters (60%) with broad genre coverage (40%);
- Young Adult: recent films (mean release year, 50%) and action-like genres (50%);
- Casual: everyone left (light raters, by construction of the others).
Quotas make the shares exact: n x share rounded by largest remainder (within 1/n of the target, so
within 1 percentage point from 100 users on). Archetypes are filled in ASSIGNMENT_ORDER, the most
distinctive first, each taking its highest-scoring users among those still free; ties are broken by
the user's own keyed draw, never by row order. The assignment is a rank within the population, so
it is the one field of a user's row that depends on the other users.
"""

from __future__ import annotations

import numpy as np
import polars as pl

CINEPHILE, CASUAL, FAMILY, YOUNG_ADULT = "Cinephile", "Casual", "Family", "Young Adult"
SENIOR, INTERNATIONAL, GENRE_SPECIALIST = "Senior", "International", "Genre Specialist"
TARGET_SHARES: dict[str, float] = {
    CINEPHILE: 0.12, CASUAL: 0.30, FAMILY: 0.15, YOUNG_ADULT: 0.20, SENIOR: 0.08, INTERNATIONAL: 0.10,
    GENRE_SPECIALIST: 0.05,
}
ARCHETYPES: tuple[str, ...] = tuple(TARGET_SHARES)
ASSIGNMENT_ORDER: tuple[str, ...] = (
    GENRE_SPECIALIST, INTERNATIONAL, FAMILY, SENIOR, CINEPHILE, YOUNG_ADULT, CASUAL,
)


def validate_shares(shares: dict[str, float]) -> None:
    if set(shares) != set(ARCHETYPES):
        raise ValueError(f"archetype shares must name exactly {sorted(ARCHETYPES)}, got {sorted(shares)}")
    if min(shares.values()) < 0 or abs(sum(shares.values()) - 1.0) > 1e-9:
        raise ValueError(f"archetype shares must be non-negative and sum to 1, got {shares}")


def quotas(n: int, shares: dict[str, float]) -> dict[str, int]:
    """Users per archetype: floor(n x share), left-overs to the largest remainders (ties: ARCHETYPES order)."""
    validate_shares(shares)
    exact = np.array([n * shares[a] for a in ARCHETYPES])
    whole = np.floor(exact).astype(np.int64)
    order = np.lexsort((np.arange(len(ARCHETYPES)), -(exact - whole)))
    whole[order[: n - int(whole.sum())]] += 1
    return dict(zip(ARCHETYPES, whole.tolist(), strict=True))


def scores(behaviour: pl.DataFrame) -> dict[str, np.ndarray]:
    """Higher = fits the archetype better; percentile ranks in (0, 1] of the behaviour features."""
    n = max(behaviour.height, 1)
    year = pl.col("mean_year")
    pct = behaviour.select(
        *[(pl.col(c).rank("average") / n).alias(c) for c in
          ("ratings", "genre_entropy", "kids_share", "non_english_share", "classic_share", "action_share")],
        (year.fill_nan(None).fill_null(year.fill_nan(None).median()).rank("average") / n).alias("mean_year"),
    )
    col = {c: pct[c].to_numpy() for c in pct.columns}
    return {
        GENRE_SPECIALIST: 1.0 - col["genre_entropy"],
        INTERNATIONAL: col["non_english_share"],
        FAMILY: col["kids_share"],
        SENIOR: col["classic_share"],
        CINEPHILE: 0.6 * col["ratings"] + 0.4 * col["genre_entropy"],
        YOUNG_ADULT: 0.5 * col["mean_year"] + 0.5 * col["action_share"],
        CASUAL: 1.0 - col["ratings"],
    }


def assign_archetypes(behaviour: pl.DataFrame, tiebreak: np.ndarray, shares: dict[str, float]) -> np.ndarray:
    """Archetype name per behaviour row: quota filling by score, ties broken by `tiebreak` (per-user draws)."""
    n = behaviour.height
    quota = quotas(n, shares)
    fit = scores(behaviour)
    assigned = np.full(n, -1, dtype=np.int64)
    for name in ASSIGNMENT_ORDER:
        free = np.flatnonzero(assigned < 0)
        best = free[np.lexsort((tiebreak[free], -fit[name][free]))[: quota[name]]]
        assigned[best] = ARCHETYPES.index(name)
    return np.asarray(ARCHETYPES, dtype=object)[assigned]


def agreement(behaviour: pl.DataFrame, archetype: np.ndarray | pl.Series) -> pl.DataFrame:
    """How each archetype actually behaves: the evidence that assignment follows behaviour."""
    return (
        behaviour.with_columns(pl.Series("archetype", archetype, dtype=pl.String))
        .group_by("archetype")
        .agg(
            pl.len().alias("users"),
            pl.col("ratings").median().alias("median_ratings"),
            pl.col("genre_entropy").mean().round(3).alias("mean_genre_entropy"),
            pl.col("kids_share").mean().round(3).alias("children_animation_share"),
            pl.col("non_english_share").mean().round(3).alias("non_english_share"),
            pl.col("classic_share").mean().round(3).alias("pre_1980_share"),
            pl.col("mean_year").mean().round(1).alias("mean_release_year"),
        )
        .sort(pl.col("archetype").replace_strict(list(ARCHETYPES), list(range(len(ARCHETYPES)))))
    )
