"""Asset checks of the MovieLens stage: thin wrappers around `rules`.

One multi-check per asset, so a 25M-row table is loaded once for all its rules. Checks whose
failure would corrupt what is built downstream (keys, domains, referential integrity, lost rows)
are blocking; cosmetic ones (plausible years, id format) warn.
"""


import dagster as dg
import polars as pl

from tv5_assets.core.checking import RuleResult, check_result, latest_metadata
from tv5_assets.core.lake import DataLake
from tv5_assets.ingestion import rules
from tv5_assets.ingestion.parsing import count_by

# check names, per asset
UNIQUE_KEY = "unique_key"
REQUIRED_FIELDS = "required_fields"
MOVIE_KNOWN = "movie_id_in_movies"
RATING_DOMAIN = "rating_domain"
YEAR_PLAUSIBLE = "year_plausible"
IMDB_FORMAT = "imdb_id_format"
RELEVANCE_RANGE = "relevance_in_0_1"
GENOME_RANKS = "ranked_top_k"
ROWS_ACCOUNTED = "kept_plus_rejected_equals_read"

_WARN_ONLY = {YEAR_PLAUSIBLE, IMDB_FORMAT}


def _spec(asset: str, name: str, description: str, reads: tuple[str, ...] = ()) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name, asset=asset, description=description, blocking=name not in _WARN_ONLY, additional_deps=reads
    )


def to_check_result(asset: str, name: str, result: RuleResult) -> dg.AssetCheckResult:
    return check_result(asset, name, result, warn_only=name in _WARN_ONLY)


def accounting_result(context: dg.AssetCheckExecutionContext, lake: DataLake, asset: str,
                      stored: pl.DataFrame) -> RuleResult:
    """Reconcile the last materialization's reported counts with the stored asset and its quarantine."""
    meta = latest_metadata(context, asset)
    if meta is None:
        return RuleResult(False, f"{asset} has no materialization to reconcile against")
    if "rows_read_by_file" not in meta:
        return RuleResult(False, f"the last materialization of {asset} did not report its row counts")
    quarantine_path = lake.quarantine_path(asset)
    if not quarantine_path.exists():
        return RuleResult(False, f"quarantine file {quarantine_path} is missing")
    quarantined = count_by(pl.read_parquet(quarantine_path), "file")
    return rules.rows_accounted(
        meta["rows_read_by_file"], meta["rows_valid_by_file"], quarantined, meta["rows_kept"], stored.height,
    )


@dg.multi_asset_check(
    specs=[
        _spec("movies", UNIQUE_KEY, "movie_id is unique"),
        _spec("movies", REQUIRED_FIELDS, "movie_id, title, display_title and genres are never null"),
        _spec("movies", YEAR_PLAUSIBLE, "years lie between 1874 and next year + 1"),
        _spec("movies", IMDB_FORMAT, "imdb_id is 'tt' + 7 (or 8) digits"),
        _spec("movies", ROWS_ACCOUNTED, "rows read = rows kept + rows quarantined, per file"),
    ],
    ins={"movies": dg.AssetIn("movies")},
)
def movies_checks(context: dg.AssetCheckExecutionContext, lake: DataLake, movies: pl.DataFrame):
    yield to_check_result("movies", UNIQUE_KEY, rules.unique_key(movies, ["movie_id"]))
    yield to_check_result("movies", REQUIRED_FIELDS,
                          rules.required_non_null(movies, ["movie_id", "title", "display_title", "genres"]))
    yield to_check_result("movies", YEAR_PLAUSIBLE, rules.year_plausible(movies))
    yield to_check_result("movies", IMDB_FORMAT, rules.imdb_id_format(movies))
    yield to_check_result("movies", ROWS_ACCOUNTED, accounting_result(context, lake, "movies", movies))


@dg.multi_asset_check(
    specs=[
        _spec("ratings", UNIQUE_KEY, "(user_id, movie_id) is unique"),
        _spec("ratings", REQUIRED_FIELDS, "no field is null"),
        _spec("ratings", MOVIE_KNOWN, reads=("movies",), description="every rated movie exists in movies"),
        _spec("ratings", RATING_DOMAIN, "ratings are 0.5..5.0 in half steps"),
        _spec("ratings", ROWS_ACCOUNTED, "rows read = rows kept + rows quarantined"),
    ],
    ins={"ratings": dg.AssetIn("ratings"), "movies": dg.AssetIn("movies")},
)
def ratings_checks(context: dg.AssetCheckExecutionContext, lake: DataLake, ratings: pl.DataFrame,
                   movies: pl.DataFrame):
    yield to_check_result("ratings", UNIQUE_KEY, rules.unique_key(ratings, ["user_id", "movie_id"]))
    yield to_check_result("ratings", REQUIRED_FIELDS, rules.required_non_null(ratings, ratings.columns))
    yield to_check_result("ratings", MOVIE_KNOWN, rules.movie_ids_known(ratings, movies, "rating"))
    yield to_check_result("ratings", RATING_DOMAIN, rules.rating_domain(ratings))
    yield to_check_result("ratings", ROWS_ACCOUNTED, accounting_result(context, lake, "ratings", ratings))


@dg.multi_asset_check(
    specs=[
        _spec("tags", REQUIRED_FIELDS, "no field is null"),
        _spec("tags", MOVIE_KNOWN, reads=("movies",), description="every tagged movie exists in movies"),
        _spec("tags", ROWS_ACCOUNTED, "rows read = rows kept + rows quarantined"),
    ],
    ins={"tags": dg.AssetIn("tags"), "movies": dg.AssetIn("movies")},
)
def tags_checks(context: dg.AssetCheckExecutionContext, lake: DataLake, tags: pl.DataFrame, movies: pl.DataFrame):
    yield to_check_result("tags", REQUIRED_FIELDS, rules.required_non_null(tags, tags.columns))
    yield to_check_result("tags", MOVIE_KNOWN, rules.movie_ids_known(tags, movies, "tag"))
    yield to_check_result("tags", ROWS_ACCOUNTED, accounting_result(context, lake, "tags", tags))


@dg.multi_asset_check(
    specs=[
        _spec("genome", UNIQUE_KEY, "(movie_id, tag_id) is unique"),
        _spec("genome", RELEVANCE_RANGE, "relevance lies in [0, 1]"),
        _spec("genome", GENOME_RANKS, "ranks run 1..n (n <= top_k) by decreasing relevance"),
        _spec("genome", MOVIE_KNOWN, reads=("movies",), description="every genome movie exists in movies"),
        _spec("genome", ROWS_ACCOUNTED, "rows read = rows valid + rows quarantined, per file"),
    ],
    ins={"genome": dg.AssetIn("genome"), "movies": dg.AssetIn("movies")},
)
def genome_checks(context: dg.AssetCheckExecutionContext, lake: DataLake, genome: pl.DataFrame,
                  movies: pl.DataFrame):
    top_k = (latest_metadata(context, "genome") or {}).get("top_k", 10)
    yield to_check_result("genome", UNIQUE_KEY, rules.unique_key(genome, ["movie_id", "tag_id"]))
    yield to_check_result("genome", RELEVANCE_RANGE, rules.relevance_range(genome))
    yield to_check_result("genome", GENOME_RANKS, rules.genome_ranks(genome, top_k))
    yield to_check_result("genome", MOVIE_KNOWN, rules.movie_ids_known(genome, movies, "genome"))
    yield to_check_result("genome", ROWS_ACCOUNTED, accounting_result(context, lake, "genome", genome))


asset_checks = [movies_checks, ratings_checks, tags_checks, genome_checks]
