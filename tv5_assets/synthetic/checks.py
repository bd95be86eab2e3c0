"""Asset checks of the synthetic stage: thin wrappers around `rules`.

One multi-check per asset, so the inputs are loaded once. Each recomputes its asset from the same
inputs with the config recorded by the last materialization: the recomputation is the reference for
the determinism check, and gives the rating users and first ratings the other rules need. Every check
blocks: a wrong share, code or date would mislead every consumer downstream.
"""


import dagster as dg
import polars as pl

from tv5_assets.core.checking import RuleResult, check_result, latest_metadata
from tv5_assets.core.storage import frame_fingerprint
from tv5_assets.ingestion.rules import movie_ids_known, unique_key
from tv5_assets.synthetic import rules
from tv5_assets.synthetic.assets import (
    CONFIG,
    CONTENT_HASH,
    AvailabilityConfig,
    DemographicsConfig,
    availability_rules,
)
from tv5_assets.synthetic.availability import build_availability, rating_counts
from tv5_assets.synthetic.demographics import build_demographics

# check names
ARCHETYPE_SHARES = "archetype_shares"
ONE_ROW_PER_USER = "one_row_per_rating_user"
REQUIRED_FIELDS = "required_fields"
VALID_CODES = "valid_country_and_language_codes"
SIGNUP_BEFORE_FIRST_RATING = "signup_before_first_rating"
REGION_AND_PLATFORMS = "platforms_offered_in_region"
AGE_IN_BAND = "age_in_band"
DETERMINISTIC = "same_config_same_hash"
PLATFORM_SHARES = "platform_shares"
COVERAGE = "coverage_at_least_85_pct"
UNIQUE_KEY = "unique_key"
MOVIE_KNOWN = "movie_id_in_movies"
PLATFORM_MODEL = "known_platform_and_model"
QUALITY_AND_LANGUAGES = "quality_and_languages_valid"
WINDOW = "available_from_before_until"

DEMOGRAPHICS_REQUIRED = ["user_id", "archetype", "age", "age_band", "country", "region", "preferred_language",
                         "platforms", "name", "email", "signup_date"]
AVAILABILITY_REQUIRED = ["movie_id", "platform", "business_model", "regions", "quality", "audio_languages",
                         "subtitle_languages", "available_from", "available_until"]


def _spec(asset: str, name: str, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=asset, description=description, blocking=True,
                             additional_deps=("ratings", "movies"))


@dg.multi_asset_check(
    specs=[
        _spec("demographics", ARCHETYPE_SHARES, "archetype shares within 1 pp of the targets (1/n below 100 users)"),
        _spec("demographics", ONE_ROW_PER_USER, "exactly one row per user who appears in ratings"),
        _spec("demographics", REQUIRED_FIELDS, "no nulls except secondary_language; platforms never empty"),
        _spec("demographics", VALID_CODES, "ISO 3166-1 alpha-2 countries, ISO 639-1 languages"),
        _spec("demographics", SIGNUP_BEFORE_FIRST_RATING, "signup_date on or before the first rating"),
        _spec("demographics", REGION_AND_PLATFORMS, "region is the country's; platforms are offered there"),
        _spec("demographics", AGE_IN_BAND, "age within 18-100 and in its age_band"),
        _spec("demographics", DETERMINISTIC,
              "recomputing from the same inputs and config gives the recorded and stored hash"),
    ],
    ins={"demographics": dg.AssetIn("demographics"), "ratings": dg.AssetIn("ratings"), "movies": dg.AssetIn("movies")},
)
def demographics_checks(context: dg.AssetCheckExecutionContext, demographics: pl.DataFrame, ratings: pl.LazyFrame,
                        movies: pl.DataFrame):
    recorded = latest_metadata(context, "demographics") or {}
    config = DemographicsConfig(**recorded.get(CONFIG, {}))
    again = build_demographics(ratings, movies, config.seed, config.archetype_shares)
    first_ratings = again.behaviour.select("user_id", "first_rating")

    def result(name: str, outcome: RuleResult) -> dg.AssetCheckResult:
        return check_result("demographics", name, outcome)

    yield result(ARCHETYPE_SHARES, rules.archetype_shares(demographics, config.archetype_shares))
    yield result(ONE_ROW_PER_USER, rules.one_row_per_user(demographics, first_ratings["user_id"]))
    yield result(REQUIRED_FIELDS, rules.non_null(demographics, DEMOGRAPHICS_REQUIRED, ("platforms",)))
    yield result(VALID_CODES, rules.valid_codes(demographics))
    yield result(SIGNUP_BEFORE_FIRST_RATING, rules.signup_before_first_rating(demographics, first_ratings))
    yield result(REGION_AND_PLATFORMS, rules.region_and_platforms(demographics))
    yield result(AGE_IN_BAND, rules.age_in_band(demographics))
    yield result(DETERMINISTIC, rules.same_content(
        "demographics", frame_fingerprint(demographics), frame_fingerprint(again.users), recorded.get(CONTENT_HASH)))


@dg.multi_asset_check(
    specs=[
        _spec("availability", PLATFORM_SHARES, "each platform's share of the catalogue within 1.5 pp of its target"),
        _spec("availability", COVERAGE, "at least 85% of movies are on at least one platform"),
        _spec("availability", UNIQUE_KEY, "(movie_id, platform) is unique"),
        _spec("availability", MOVIE_KNOWN, "every movie exists in movies"),
        _spec("availability", REQUIRED_FIELDS, "no nulls; regions, quality and language lists never empty"),
        _spec("availability", PLATFORM_MODEL, "known platforms with their business model"),
        _spec("availability", QUALITY_AND_LANGUAGES,
              "quality within HD/4K/HDR/Dolby Atmos, ISO 639-1 languages, regions within the footprint"),
        _spec("availability", WINDOW, "available_from is before available_until"),
        _spec("availability", DETERMINISTIC,
              "recomputing from the same inputs and config gives the recorded and stored hash"),
    ],
    ins={"availability": dg.AssetIn("availability"), "ratings": dg.AssetIn("ratings"), "movies": dg.AssetIn("movies")},
)
def availability_checks(context: dg.AssetCheckExecutionContext, availability: pl.DataFrame, ratings: pl.LazyFrame,
                        movies: pl.DataFrame):
    recorded = latest_metadata(context, "availability") or {}
    rule_set = availability_rules(AvailabilityConfig(**recorded.get(CONFIG, {})).model_dump())
    again = build_availability(movies, rating_counts(ratings), rule_set)

    def result(name: str, outcome: RuleResult) -> dg.AssetCheckResult:
        return check_result("availability", name, outcome)

    yield result(PLATFORM_SHARES, rules.platform_shares(availability, movies.height, rule_set.shares))
    yield result(COVERAGE, rules.coverage(availability, movies.height))
    yield result(UNIQUE_KEY, unique_key(availability, ["movie_id", "platform"]))
    yield result(MOVIE_KNOWN, movie_ids_known(availability, movies, "availability"))
    yield result(REQUIRED_FIELDS, rules.non_null(
        availability, AVAILABILITY_REQUIRED, ("regions", "quality", "audio_languages", "subtitle_languages")))
    yield result(PLATFORM_MODEL, rules.platform_and_model(availability))
    yield result(QUALITY_AND_LANGUAGES, rules.quality_and_languages(availability))
    yield result(WINDOW, rules.window_ordered(availability))
    yield result(DETERMINISTIC, rules.same_content(
        "availability", frame_fingerprint(availability), frame_fingerprint(again), recorded.get(CONTENT_HASH)))


asset_checks = [demographics_checks, availability_checks]
