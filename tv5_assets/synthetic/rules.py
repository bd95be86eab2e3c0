"""Validation rules of the synthetic stage, as plain functions over frames (checks wrap them)."""

from __future__ import annotations

import polars as pl

from tv5_assets.core.checking import RuleResult
from tv5_assets.synthetic import platforms as pf
from tv5_assets.synthetic import regions as rg
from tv5_assets.synthetic.codes import COUNTRY_CODES, LANGUAGE_CODES
from tv5_assets.synthetic.people import age_band

ARCHETYPE_TOLERANCE = 0.01
PLATFORM_TOLERANCE = 0.015
MIN_COVERAGE = 0.85


def _examples(frame: pl.DataFrame, limit: int = 5) -> list[dict]:
    return [{k: str(v) for k, v in row.items()} for row in frame.head(limit).to_dicts()]


def _shares(values: pl.Series, total: int, targets: dict[str, float], tolerance: float,
            what: str) -> RuleResult:
    counts = dict(values.value_counts().iter_rows())
    actual = {name: counts.get(name, 0) / max(total, 1) for name in targets}
    off = {name: round(100 * (actual[name] - share), 2) for name, share in targets.items()
           if abs(actual[name] - share) > tolerance + 1e-12}
    unknown = sorted(set(counts) - set(targets))
    meta = {"actual_pct": {k: round(100 * v, 2) for k, v in actual.items()}, "tolerance_pp": round(100 * tolerance, 2)}
    if off or unknown:
        return RuleResult(False, f"{what} off target by more than {100 * tolerance:.2f} pp (deviation in pp): {off}"
                                 + (f"; unknown values {unknown}" if unknown else ""), meta)
    return RuleResult(True, f"every {what} within {100 * tolerance:.2f} pp of its target", meta)


def archetype_shares(users: pl.DataFrame, targets: dict[str, float]) -> RuleResult:
    """Shares within 1 pp; with fewer than 100 users, within one user (1/n) as quotas round to whole users."""
    tolerance = max(ARCHETYPE_TOLERANCE, 1.0 / max(users.height, 1))
    return _shares(users["archetype"], users.height, targets, tolerance, "archetype share")


def platform_shares(availability: pl.DataFrame, n_movies: int, targets: dict[str, float]) -> RuleResult:
    return _shares(availability["platform"], n_movies, targets, PLATFORM_TOLERANCE, "platform share")


def coverage(availability: pl.DataFrame, n_movies: int, minimum: float = MIN_COVERAGE) -> RuleResult:
    covered = availability["movie_id"].n_unique()
    share = covered / max(n_movies, 1)
    meta = {"covered_movies": covered, "movies": n_movies, "coverage_pct": round(100 * share, 2)}
    if share < minimum:
        return RuleResult(False, f"only {100 * share:.2f}% of movies ({covered}/{n_movies}) are on a platform; "
                                 f"at least {100 * minimum:.0f}% required", meta)
    return RuleResult(True, f"{100 * share:.2f}% of movies are on at least one platform", meta)


def one_row_per_user(users: pl.DataFrame, rating_users: pl.Series) -> RuleResult:
    """Exactly one row per user who rated, and no one else."""
    ids = users["user_id"]
    repeated = ids.filter(ids.is_duplicated()).unique().sort()
    raters = rating_users.unique()
    missing = raters.filter(~raters.is_in(ids.implode())).sort()
    extra = ids.filter(~ids.is_in(raters.implode())).unique().sort()
    meta = {"users": users.height, "rating_users": raters.len(), "repeated": repeated.len(),
            "missing": missing.len(), "extra": extra.len()}
    problems = [f"{s.len()} {what}, e.g. {s.head(5).to_list()}"
                for s, what in ((repeated, "user(s) with several rows"), (missing, "rating user(s) without a row"),
                                (extra, "user(s) who never rated"))
                if s.len()]
    if problems:
        return RuleResult(False, "; ".join(problems), meta)
    return RuleResult(True, f"one row for each of the {raters.len()} rating users", meta)


def non_null(frame: pl.DataFrame, columns: list[str], non_empty_lists: tuple[str, ...] = ()) -> RuleResult:
    """No nulls in `columns`, no empty list in `non_empty_lists`."""
    nulls = frame.select([pl.col(c).null_count() for c in columns]).row(0, named=True)
    empty = frame.select([(pl.col(c).list.len() == 0).sum() for c in non_empty_lists]).row(0, named=True) \
        if non_empty_lists else {}
    bad = {**{c: n for c, n in nulls.items() if n}, **{f"{c} (empty)": n for c, n in empty.items() if n}}
    if bad:
        return RuleResult(False, f"required field(s) null or empty: {bad}",
                          {"null_counts": nulls, "empty_lists": empty})
    return RuleResult(True, f"no nulls in {columns}" + (f", no empty {list(non_empty_lists)}" if empty else ""),
                      {"null_counts": nulls})


def valid_codes(users: pl.DataFrame) -> RuleResult:
    """ISO 3166-1 alpha-2 countries, ISO 639-1 languages, a secondary language other than the preferred."""
    countries, languages = sorted(COUNTRY_CODES), sorted(LANGUAGE_CODES)
    c, p, s = pl.col("country"), pl.col("preferred_language"), pl.col("secondary_language")
    bad = users.filter(
        ~c.is_in(countries) | ~p.is_in(languages) | (s.is_not_null() & (~s.is_in(languages) | (s == p)))
    ).select("user_id", "country", "preferred_language", "secondary_language")
    if bad.height:
        return RuleResult(False, f"{bad.height} user(s) with an invalid country or language code (or the same "
                                 f"language twice), e.g. {_examples(bad)}", {"invalid_rows": bad.height})
    return RuleResult(True, "countries are ISO 3166-1 alpha-2, languages ISO 639-1", {"invalid_rows": 0})


def signup_before_first_rating(users: pl.DataFrame, first_ratings: pl.DataFrame) -> RuleResult:
    """signup_date on or before the date (UTC) of the user's first rating."""
    late = (
        users.select("user_id", "signup_date")
        .join(first_ratings.select("user_id", pl.col("first_rating").dt.date().alias("first_rating")), on="user_id")
        .filter(pl.col("signup_date") > pl.col("first_rating"))
    )
    if late.height:
        return RuleResult(False, f"{late.height} user(s) signed up after their first rating, e.g. {_examples(late)}",
                          {"late_signups": late.height})
    return RuleResult(True, "every signup is on or before the user's first rating", {"late_signups": 0})


def region_and_platforms(users: pl.DataFrame) -> RuleResult:
    """Region is the country's; platforms are known, unrepeated and offered in the user's region."""
    country_region = pl.DataFrame({"country": [c.code for c in rg.COUNTRIES],
                                   "expected": [c.region for c in rg.COUNTRIES]})
    offered = pl.DataFrame([(r, p.name) for p in pf.PLATFORMS for r in p.regions], schema=["region", "platform"],
                           orient="row").with_columns(pl.lit(True).alias("offered"))
    wrong_region = users.join(country_region, on="country", how="left").filter(
        pl.col("expected").is_null() | (pl.col("expected") != pl.col("region")))
    pairs = users.select("user_id", "region", pl.col("platforms").alias("platform")).explode("platform")
    unavailable = pairs.join(offered, on=["region", "platform"], how="left").filter(pl.col("offered").is_null())
    repeated = users.filter(pl.col("platforms").list.n_unique() != pl.col("platforms").list.len())
    meta = {"wrong_region": wrong_region.height, "platforms_not_offered": unavailable.height,
            "repeated_platforms": repeated.height}
    problems = []
    if wrong_region.height:
        problems.append(f"{wrong_region.height} region(s) not the country's, e.g. "
                        f"{_examples(wrong_region.select('user_id', 'country', 'region'))}")
    if unavailable.height:
        problems.append(f"{unavailable.height} subscription(s) to a platform unknown or not offered in the "
                        f"user's region, e.g. {_examples(unavailable.select('user_id', 'region', 'platform'))}")
    if repeated.height:
        problems.append(f"{repeated.height} user(s) list a platform twice")
    if problems:
        return RuleResult(False, "; ".join(problems), meta)
    return RuleResult(True, "regions match countries; every platform is offered in the user's region", meta)


def age_in_band(users: pl.DataFrame) -> RuleResult:
    bad = users.filter(
        pl.col("age").is_null() | (pl.col("age") < 18) | (pl.col("age") > 100)
        | (age_band(pl.col("age")) != pl.col("age_band"))
    ).select("user_id", "age", "age_band")
    if bad.height:
        return RuleResult(False, f"{bad.height} user(s) with an age outside 18-100 or in the wrong band, "
                                 f"e.g. {_examples(bad)}", {"bad_ages": bad.height})
    return RuleResult(True, "ages within 18-100 and in their band", {"bad_ages": 0})


def platform_and_model(availability: pl.DataFrame) -> RuleResult:
    known = pl.DataFrame({"platform": list(pf.PLATFORM_NAMES), "expected": [p.business_model for p in pf.PLATFORMS]})
    bad = availability.join(known, on="platform", how="left").filter(
        pl.col("expected").is_null() | (pl.col("expected") != pl.col("business_model"))
    ).select("movie_id", "platform", "business_model").unique()
    if bad.height:
        return RuleResult(False, f"{bad.height} row(s) with an unknown platform or the wrong business model, "
                                 f"e.g. {_examples(bad)}", {"bad_rows": bad.height})
    return RuleResult(True, "known platforms, each with its business model (TV5MONDE free, others subscription)",
                      {"bad_rows": 0})


def quality_and_languages(availability: pl.DataFrame) -> RuleResult:
    """quality within HD/4K/HDR/Dolby Atmos with HD; ISO 639-1 audio and subtitles; regions in the footprint."""
    languages, qualities = sorted(LANGUAGE_CODES), list(pf.QUALITIES)
    footprint = pl.DataFrame([(p.name, r) for p in pf.PLATFORMS for r in p.regions], schema=["platform", "region"],
                             orient="row").group_by("platform").agg(pl.col("region").alias("footprint"))

    def outside(column: str, allowed: list[str]) -> pl.Expr:
        return pl.col(column).list.eval(~pl.element().is_in(allowed)).list.any()

    checked = availability.join(footprint, on="platform", how="left").with_columns(
        outside("quality", qualities).alias("bad_quality"),
        (~pl.col("quality").list.contains("HD")).alias("no_hd"),
        outside("audio_languages", languages).alias("bad_audio"),
        outside("subtitle_languages", languages).alias("bad_subtitles"),
        pl.col("regions").list.set_difference(pl.col("footprint")).list.len().gt(0).alias("bad_regions"),
    )
    flags = ["bad_quality", "no_hd", "bad_audio", "bad_subtitles", "bad_regions"]
    counts = checked.select([pl.col(f).fill_null(True).sum() for f in flags]).row(0, named=True)
    if any(counts.values()):
        bad = checked.filter(pl.any_horizontal([pl.col(f).fill_null(True) for f in flags]))
        example = bad.select("movie_id", "platform", "quality", "audio_languages", "subtitle_languages", "regions")
        problems = {k: v for k, v in counts.items() if v}
        return RuleResult(False, f"invalid arrays {problems}, e.g. {_examples(example)}", counts)
    return RuleResult(True, "quality options, ISO 639-1 audio/subtitle languages and regions are valid", counts)


def window_ordered(availability: pl.DataFrame) -> RuleResult:
    bad = availability.filter(~(pl.col("available_from") < pl.col("available_until")).fill_null(False))
    if bad.height:
        example = bad.select("movie_id", "platform", "available_from", "available_until")
        return RuleResult(False, f"{bad.height} row(s) where available_from is not before available_until, e.g. "
                                 f"{_examples(example)}", {"bad_windows": bad.height})
    return RuleResult(True, "available_from is before available_until on every row", {"bad_windows": 0})


def same_content(asset: str, stored: str, recomputed: str, recorded: str | None) -> RuleResult:
    """The stored asset, a recomputation from the same inputs and config, and the recorded hash agree."""
    meta = {"stored_hash": stored, "recomputed_hash": recomputed, "recorded_hash": recorded or ""}
    if recorded is None:
        return RuleResult(False, f"the last materialization of {asset} recorded no content_hash", meta)
    if recomputed != recorded:
        return RuleResult(False, f"{asset} is not deterministic: recomputing from the same inputs and config gives "
                                 f"{recomputed}, the materialization recorded {recorded}", meta)
    if stored != recorded:
        return RuleResult(False, f"the stored {asset} (hash {stored}) differs from what its materialization wrote "
                                 f"and what the same inputs and config give ({recorded})", meta)
    return RuleResult(True, f"same inputs and config give the same {asset} (hash {stored})", meta)
