"""A synthetic person per user: every field a function of (seed, user_id) given the archetype.

Each user's uniforms come from `draws` keyed by MD5(seed, user_id), one stream per field, so a row
never depends on which other users are in the dataset or in what order:
- age: a triangular draw within the archetype's age range (Young Adult 18-29, Senior 60-85, ...),
  and its band;
- country by the market weights of `regions`; preferred language by the country's mix; a secondary
  language (never the preferred one) for half the users, for nearly all International users;
- platforms: each platform offered in the user's region, with the archetype's uptake (TV5MONDE
  x1.5 for French speakers); a user left with none gets the likeliest platform of the region;
- name: a first and a last name from a pool of Faker names of the country's locale (built once
  per locale with a fixed Faker seed: a few hundred Faker calls instead of one per user and field);
  email: the transliterated name + user_id (unique) at a reserved example domain;
- signup_date: up to three years before the first rating (never after it, never before 1995 unless
  the first rating is).
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cache

import numpy as np
import polars as pl
from faker import Faker
from faker.decode import unidecode

from tv5_assets.synthetic import archetypes as a
from tv5_assets.synthetic import platforms as pf
from tv5_assets.synthetic import regions as rg
from tv5_assets.synthetic.draws import categorical, key_seeds, uniform

USER_DOMAIN = "user"
POOL_SIZE = 300
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")  # reserved (RFC 2606): never a real mailbox
AGE_RANGES: dict[str, tuple[int, int]] = {
    a.CINEPHILE: (25, 70), a.CASUAL: (18, 75), a.FAMILY: (28, 50), a.YOUNG_ADULT: (18, 29),
    a.SENIOR: (60, 85), a.INTERNATIONAL: (22, 65), a.GENRE_SPECIALIST: (18, 60),
}
AGE_BANDS: tuple[tuple[int, str], ...] = ((25, "18-24"), (35, "25-34"), (45, "35-44"), (55, "45-54"),
                                          (65, "55-64"), (200, "65+"))
SECONDARY_RATE: dict[str, float] = {a.INTERNATIONAL: 0.95, a.CINEPHILE: 0.65}
DEFAULT_SECONDARY_RATE = 0.5
FRENCH_TV5_BOOST = 1.5
MAX_SIGNUP_LEAD_DAYS = 3 * 365
EARLIEST_SIGNUP = dt.date(1995, 1, 1)
# one stream per field: never renumber, only append
(TIEBREAK, AGE_1, AGE_2, COUNTRY, LANGUAGE, HAS_SECONDARY, SECONDARY, SEX, FIRST_NAME, LAST_NAME, DOMAIN,
 SIGNUP) = range(12)
PLATFORM_BASE = 32


def user_seeds(seed: int, user_ids: np.ndarray) -> np.ndarray:
    return key_seeds(seed, np.asarray(user_ids).tolist(), USER_DOMAIN)


def age_band(age: pl.Expr) -> pl.Expr:
    """'18-24', '25-34', ..., '65+'."""
    expr = pl.when(age < AGE_BANDS[0][0]).then(pl.lit(AGE_BANDS[0][1]))
    for upper, label in AGE_BANDS[1:]:
        expr = expr.when(age < upper).then(pl.lit(label))
    return expr


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", unidecode(text).lower()) or "user"


@cache
def name_pool(locale: str, size: int = POOL_SIZE) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(first names: half female then half male, last names) of a locale; fixed Faker seed, so stable."""
    fake = Faker(locale, providers=["faker.providers.person"])  # the other providers cost 0.25 s a locale
    fake.seed_instance(f"tv5-names-{locale}")
    half = size // 2
    first = [fake.first_name_female() for _ in range(half)] + [fake.first_name_male() for _ in range(size - half)]
    last = [re.sub(r"^(.*), (\S+)$", r"\2 \1", fake.last_name()) for _ in range(size)]  # "Berg, van den"
    return tuple(first), tuple(last)


def _names(locale_index: np.ndarray, u_sex: np.ndarray, u_first: np.ndarray, u_last: np.ndarray,
           locales: list[str]) -> tuple[pl.Series, pl.Series, pl.Series, pl.Series]:
    """(first, last, first slug, last slug) per user, gathered from the locale pools."""
    pools = [name_pool(loc) for loc in locales]
    firsts = [name for first, _ in pools for name in first]
    lasts = [name for _, last in pools for name in last]
    first_sizes = np.array([len(f) for f, _ in pools])
    last_sizes = np.array([len(la) for _, la in pools])
    first_off = np.concatenate([[0], np.cumsum(first_sizes)[:-1]])
    last_off = np.concatenate([[0], np.cumsum(last_sizes)[:-1]])
    half = first_sizes[locale_index] // 2
    male = u_sex < 0.5
    within = np.where(male, half, 0) + np.floor(u_first * np.where(male, first_sizes[locale_index] - half, half))
    first_idx = first_off[locale_index] + within.astype(np.int64)
    last_idx = last_off[locale_index] + np.floor(u_last * last_sizes[locale_index]).astype(np.int64)
    first_s, last_s = pl.Series(firsts, dtype=pl.String), pl.Series(lasts, dtype=pl.String)
    first_slug = pl.Series([_slug(n) for n in firsts], dtype=pl.String)
    last_slug = pl.Series([_slug(n) for n in lasts], dtype=pl.String)
    return (first_s.gather(first_idx), last_s.gather(last_idx), first_slug.gather(first_idx),
            last_slug.gather(last_idx))


def _languages(seeds: np.ndarray, country: np.ndarray, archetype_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    langs = rg.LANGUAGES
    preferred_w = np.array([[dict(c.languages).get(lang, 0.0) for lang in langs] for c in rg.COUNTRIES])
    secondary_w = np.array([[dict(rg.SECONDARY_LANGUAGES[p]).get(lang, 0.0) for lang in langs] for p in langs])
    preferred = categorical(uniform(seeds, LANGUAGE), preferred_w[country])
    secondary = categorical(uniform(seeds, SECONDARY), secondary_w[preferred])
    rate = np.array([SECONDARY_RATE.get(name, DEFAULT_SECONDARY_RATE) for name in a.ARCHETYPES])[archetype_idx]
    secondary = np.where(uniform(seeds, HAS_SECONDARY) < rate, secondary, -1)
    return preferred, secondary


def _platforms(seeds: np.ndarray, region: np.ndarray, archetype_idx: np.ndarray, french: np.ndarray) -> pl.Series:
    names = pf.PLATFORM_NAMES
    offered = np.array([[r in p.regions for p in pf.PLATFORMS] for r in rg.REGIONS])[region]
    uptake = np.array([[p.uptake[name] for p in pf.PLATFORMS] for name in a.ARCHETYPES])[archetype_idx]
    tv5 = names.index("TV5MONDE")
    uptake[:, tv5] = np.where(french, np.minimum(uptake[:, tv5] * FRENCH_TV5_BOOST, 0.95), uptake[:, tv5])
    uptake = np.where(offered, uptake, 0.0)
    draws = np.column_stack([uniform(seeds, PLATFORM_BASE + j) for j in range(len(names))]) if len(seeds) \
        else np.zeros((0, len(names)))
    subscribed = draws < uptake
    none = ~subscribed.any(axis=1)
    subscribed[np.flatnonzero(none), uptake[none].argmax(axis=1)] = True
    flags = pl.DataFrame({n: subscribed[:, j] for j, n in enumerate(names)})
    return flags.select(
        pl.concat_list([pl.when(pl.col(n)).then(pl.lit(n)) for n in names]).list.drop_nulls().alias("platforms")
    ).to_series()


def _signup(seeds: np.ndarray, first_rating: pl.Series) -> pl.Series:
    first = first_rating.dt.date().to_numpy().astype("datetime64[D]")
    lead = np.floor(uniform(seeds, SIGNUP) ** 2 * (MAX_SIGNUP_LEAD_DAYS + 1)).astype(np.int64)
    floor = np.minimum(first, np.datetime64(EARLIEST_SIGNUP, "D"))
    return pl.Series("signup_date", np.maximum(first - lead.astype("timedelta64[D]"), floor), dtype=pl.Date)


def draw_people(user_ids: np.ndarray, seeds: np.ndarray, archetype: np.ndarray,
                first_rating: pl.Series) -> pl.DataFrame:
    """The demographics rows (contract columns) of these users, given `seeds = user_seeds(seed, user_ids)`;
    row i depends only on seeds[i], user i's id, archetype and first rating."""
    user_ids = np.asarray(user_ids)
    archetype_idx = pl.Series(archetype, dtype=pl.String).replace_strict(
        list(a.ARCHETYPES), list(range(len(a.ARCHETYPES))), return_dtype=pl.Int64).to_numpy()
    low = np.array([AGE_RANGES[name][0] for name in a.ARCHETYPES])[archetype_idx]
    high = np.array([AGE_RANGES[name][1] for name in a.ARCHETYPES])[archetype_idx]
    triangular = (uniform(seeds, AGE_1) + uniform(seeds, AGE_2)) / 2
    age = np.minimum(low + np.floor(triangular * (high - low + 1)), high).astype(np.int32)

    country = categorical(uniform(seeds, COUNTRY), np.array([c.weight for c in rg.COUNTRIES]))
    region = np.array([rg.REGIONS.index(c.region) for c in rg.COUNTRIES])[country]
    preferred, secondary = _languages(seeds, country, archetype_idx)
    languages = pl.Series(rg.LANGUAGES, dtype=pl.String)
    locales = sorted({c.locale for c in rg.COUNTRIES})
    locale_index = np.array([locales.index(c.locale) for c in rg.COUNTRIES])[country]
    first, last, first_slug, last_slug = _names(
        locale_index, uniform(seeds, SEX), uniform(seeds, FIRST_NAME), uniform(seeds, LAST_NAME), locales)
    domain = categorical(uniform(seeds, DOMAIN), np.ones(len(EMAIL_DOMAINS)))
    french = preferred == rg.LANGUAGES.index("fr")
    return pl.DataFrame({
        "user_id": user_ids.astype(np.int32),
        "archetype": pl.Series(archetype, dtype=pl.String),
        "age": age,
        "country": pl.Series([c.code for c in rg.COUNTRIES], dtype=pl.String).gather(country),
        "region": pl.Series(rg.REGIONS, dtype=pl.String).gather(region),
        "preferred_language": languages.gather(preferred),
        "secondary_language": languages.gather(np.maximum(secondary, 0)).scatter(np.flatnonzero(secondary < 0), None),
        "platforms": _platforms(seeds, region, archetype_idx, french),
        "first": first, "last": last, "first_slug": first_slug, "last_slug": last_slug,
        "domain": pl.Series(EMAIL_DOMAINS, dtype=pl.String).gather(domain),
        "signup_date": _signup(seeds, first_rating),
    }).select(
        "user_id", "archetype", "age", age_band(pl.col("age")).alias("age_band"), "country", "region",
        "preferred_language", "secondary_language", "platforms",
        pl.concat_str("first", pl.lit(" "), "last").alias("name"),
        pl.concat_str("first_slug", pl.lit("."), "last_slug", pl.col("user_id").cast(pl.String), pl.lit("@"),
                      "domain").alias("email"),
        "signup_date",
    )
