"""Synthetic stage: `demographics` and `availability` (thin Dagster wiring around the pure modules)."""


import datetime as dt
import time

import dagster as dg
import polars as pl
from pydantic import Field

from tv5_assets.core.metadata import markdown_table
from tv5_assets.core.storage import frame_fingerprint
from tv5_assets.core.versioning import versioned_asset
from tv5_assets.synthetic import archetypes, report
from tv5_assets.synthetic import platforms as pf
from tv5_assets.synthetic.availability import AvailabilityRules, build_availability, rating_counts
from tv5_assets.synthetic.demographics import build_demographics

GROUP = "synthetic"
OWNERS = ["team:data-platform"]
CONTENT_HASH = "content_hash"  # metadata key the determinism checks compare against
CONFIG = "config"
_RULES = AvailabilityRules()


class DemographicsConfig(dg.Config):
    seed: int = Field(default=20_240_601, description="every user's draws are keyed by MD5(seed, user_id)")
    archetype_shares: dict[str, float] = Field(
        default=dict(archetypes.TARGET_SHARES), description="target share of users per archetype (sums to 1)"
    )


class AvailabilityConfig(dg.Config):
    seed: int = Field(default=_RULES.seed, description="draws are keyed by (seed, rule digest, movie_id, platform)")
    platform_shares: dict[str, float] = Field(default=dict(pf.DEFAULT_SHARES),
                                              description="target share of the catalogue per platform")
    min_coverage: float = Field(default=_RULES.min_coverage,
                                description="share of films given a home platform first (coverage floor)")
    popularity_weight: float = Field(default=_RULES.popularity_weight, description="weight of popularity in scores")
    recency_weight: float = Field(default=_RULES.recency_weight, description="weight of release recency in scores")
    affinity_weight: float = Field(default=_RULES.affinity_weight,
                                   description="weight of platform affinities (French, kids, art-house, ...)")
    noise_weight: float = Field(default=_RULES.noise_weight, description="weight of the keyed random term")
    catalogue_date: str = Field(default=_RULES.catalogue_date.isoformat(),
                                description="ISO date: availability windows start on or before it")
    min_window_days: int = Field(default=_RULES.min_window_days, description="shortest availability window")
    max_window_days: int = Field(default=_RULES.max_window_days, description="longest availability window")


def availability_rules(config: dict) -> AvailabilityRules:
    """The pure rules from an AvailabilityConfig's values (also read back from metadata by the checks)."""
    values = dict(config)
    return AvailabilityRules(
        seed=values.pop("seed"), shares=dict(values.pop("platform_shares")),
        catalogue_date=dt.date.fromisoformat(values.pop("catalogue_date")), **values,
    )


def _output(frame: pl.DataFrame, metadata: dict[str, object], config: dg.Config, started: float) -> dg.Output:
    fingerprint = frame_fingerprint(frame)
    metadata = {
        **metadata,
        CONTENT_HASH: fingerprint,
        CONFIG: dg.MetadataValue.json(config.model_dump()),
        "preview": dg.MetadataValue.md(markdown_table(frame)),
        "wall_time_s": round(time.perf_counter() - started, 3),
    }
    return dg.Output(frame, metadata=metadata, data_version=dg.DataVersion(fingerprint))


@versioned_asset(
    group_name=GROUP,
    kinds={"polars", "parquet", "faker"},
    owners=OWNERS,
    description=(
        "One synthetic person per user who rated: user_id, archetype, age and age_band, country (ISO 3166-1 "
        "alpha-2) and region, preferred_language and secondary_language (ISO 639-1; secondary nullable), "
        "platforms, name, email, signup_date. Archetypes follow behaviour measured on `ratings` x `movies`: "
        "Genre Specialists have the lowest genre entropy, International users the most non-English titles "
        "(read from the title text: parenthesised original titles, accents, foreign articles), Family users "
        "the most Children/Animation, Seniors the most pre-1980 films, Cinephiles rate most and most broadly, "
        "Young Adults watch recent action-like films, Casual users are the rest; quotas by largest remainder "
        "meet the target shares (Cinephile 12%, Casual 30%, Family 15%, Young Adult 20%, Senior 8%, "
        "International 10%, Genre Specialist 5%) within 1 pp. Markets are francophone first (France, Belgium, "
        "Switzerland, Luxembourg, Canada-Quebec, francophone Africa, Haiti, Lebanon: 68%) plus other markets. "
        "Every other field is drawn from the user's own keyed stream (MD5(seed, user_id), splitmix64), so it "
        "is identical whatever the dataset size or order: age within the archetype's range, language mix of "
        "the country, platforms offered in the region with the archetype's uptake, a Faker name of the "
        "country's locale (precomputed pools), an email at a reserved example domain, and a signup date up "
        "to three years before the first rating."
    ),
)
def demographics(
    context: dg.AssetExecutionContext, config: DemographicsConfig, ratings: pl.LazyFrame, movies: pl.DataFrame
) -> dg.Output[pl.DataFrame]:
    started = time.perf_counter()
    built = build_demographics(ratings, movies, config.seed, config.archetype_shares)
    users = built.users
    shares = report.archetype_shares(users, config.archetype_shares)
    agreement = archetypes.agreement(built.behaviour, built.behaviour["archetype"])
    countries = users["country"].value_counts(sort=True).head(12)
    context.log.info(f"demographics: {users.height} users, archetypes {shares['users'].to_list()}")
    return _output(users, {
        "users": users.height,
        "archetype_shares": dg.MetadataValue.md(markdown_table(shares, rows=len(shares))),
        "archetype_chart": dg.MetadataValue.md(report.target_chart(shares, "archetype", "Archetype shares (%)")),
        "archetype_pct": dg.MetadataValue.json(dict(zip(shares["archetype"], shares["actual_pct"], strict=True))),
        "behaviour_by_archetype": dg.MetadataValue.md(markdown_table(agreement, rows=len(agreement))),
        "behaviour_agreement": dg.MetadataValue.json(agreement.to_dicts()),
        "top_countries": dg.MetadataValue.md(markdown_table(countries, rows=len(countries))),
        "francophone_pct": round(100 * users["preferred_language"].eq("fr").mean(), 2),
        "mean_platforms": round(float(users["platforms"].list.len().mean() or 0.0), 3),
    }, config, started)


@versioned_asset(
    group_name=GROUP,
    kinds={"polars", "parquet"},
    owners=OWNERS,
    description=(
        "One row per (movie, platform) where the movie is available: movie_id, platform, business_model "
        "(TV5MONDE free, the others subscription), regions, quality (HD, 4K, HDR, Dolby Atmos), "
        "audio_languages and subtitle_languages (ISO 639-1), available_from < available_until. Each platform "
        "carries exactly its target share of the catalogue (TV5MONDE 15%, Netflix 35%, Amazon Prime 30%, "
        "Disney+ 20%, HBO Max 25%, Apple TV+ 15%, MUBI 10%, Criterion Channel 8%): its best-scoring films, "
        "where a film's score on a platform weighs popularity (ratings count) and recency with the platform's "
        "affinities (TV5MONDE French-language titles, Disney+ Children/Animation, MUBI and Criterion old, "
        "non-English, art-house titles) and keyed noise. Shares drawn independently would cover ~84% of films; "
        "instead `min_coverage` (90%) of the films, those that fit some platform best, first get a home "
        "platform (niche platforms choose first), then each platform fills the rest of its share with its best "
        "films, so popular films are on several services and coverage stays >= 85%. Regions, quality, "
        "languages and dates are drawn per (seed, rules, movie_id, platform): same config, same bytes; any "
        "config change re-draws and changes the data version."
    ),
)
def availability(
    context: dg.AssetExecutionContext, config: AvailabilityConfig, ratings: pl.LazyFrame, movies: pl.DataFrame
) -> dg.Output[pl.DataFrame]:
    started = time.perf_counter()
    rules = availability_rules(config.model_dump())
    counts = rating_counts(ratings)
    frame = build_availability(movies, counts, rules)
    table = report.platform_coverage(frame, movies.height, rules.shares)
    by_popularity = report.platforms_by_popularity(frame, movies["movie_id"], counts)
    covered = frame["movie_id"].n_unique() / max(movies.height, 1)
    context.log.info(f"availability: {frame.height} rows, coverage {100 * covered:.2f}%")
    return _output(frame, {
        "rows": frame.height,
        "coverage_pct": round(100 * covered, 2),
        "platform_coverage": dg.MetadataValue.md(markdown_table(table, rows=len(table))),
        "platform_chart": dg.MetadataValue.md(
            report.target_chart(table, "platform", "Catalogue share per platform (%)")),
        "platform_pct": dg.MetadataValue.json(dict(zip(table["platform"], table["actual_pct"], strict=True))),
        "platforms_by_popularity": dg.MetadataValue.md(markdown_table(by_popularity, rows=4)),
    }, config, started)


assets = [demographics, availability]
