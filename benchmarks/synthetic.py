"""Benchmark: `demographics` and `availability` on an ml-25m-shaped input, against per-user Faker calls.

Run: `python -m benchmarks.synthetic [--baseline-users 2000]`. Target (2 cores / 24 GiB): both assets in
at most 60 s together (the seed quotes 75 minutes for this phase).

Each asset runs in its own spawned process, as the asset would: ratings scanned from Parquet, the
result written to Parquet atomically. The baseline is the naive way to synthesise people: per user, a
Faker seeded from MD5(seed, user_id) and one Python call per field (name, email, age, country,
languages, platforms, signup date). It is timed on a slice of users and extrapolated linearly to all
users (its cost is per user); it covers only the person-synthesis step, so comparing it with the whole
`demographics` asset (which also reads 25M ratings and computes behaviour) understates the speed-up.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import random
import time

import polars as pl

from benchmarks.common import BENCH_DIR, measure, ml25m_tables, report
from tv5_assets.core.storage import write_parquet_atomic
from tv5_assets.synthetic import archetypes, people
from tv5_assets.synthetic import platforms as pf
from tv5_assets.synthetic import regions as rg
from tv5_assets.synthetic.availability import AvailabilityRules, build_availability, rating_counts
from tv5_assets.synthetic.demographics import build_demographics

TABLES = BENCH_DIR / "tables"
OUT = BENCH_DIR / "synthetic"
SEED = 20_240_601
TARGET_S = 60.0


def _inputs() -> tuple[pl.LazyFrame, pl.DataFrame]:
    return pl.scan_parquet(TABLES / "ratings.parquet"), pl.read_parquet(TABLES / "movies.parquet")


def demographics_asset() -> dict[str, float]:
    ratings, movies = _inputs()
    start = time.perf_counter()
    built = build_demographics(ratings, movies, SEED)
    computed = time.perf_counter()
    write_parquet_atomic(built.users, OUT / "demographics.parquet")
    return {"users": built.users.height, "compute_s": computed - start, "write_s": time.perf_counter() - computed}


def people_step() -> float:
    """Seconds for the vectorised person synthesis alone (name pools built inside), on the benchmark's users."""
    users = pl.read_parquet(OUT / "demographics.parquet", columns=["user_id", "archetype", "signup_date"])
    ids = users["user_id"].to_numpy()
    first_rating = users["signup_date"].cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    start = time.perf_counter()
    people.draw_people(ids, people.user_seeds(SEED, ids), users["archetype"].to_numpy(), first_rating)
    return time.perf_counter() - start


def availability_asset() -> dict[str, float]:
    ratings, movies = _inputs()
    start = time.perf_counter()
    frame = build_availability(movies, rating_counts(ratings), AvailabilityRules())
    computed = time.perf_counter()
    write_parquet_atomic(frame, OUT / "availability.parquet")
    return {"rows": frame.height, "movies": movies.height, "coverage": frame["movie_id"].n_unique() / movies.height,
            "compute_s": computed - start, "write_s": time.perf_counter() - computed}


def naive_people(n_users: int) -> float:
    """Seconds for the per-user, per-field Faker approach on users 1..n_users (fresh Faker instances)."""
    from faker import Faker

    fakers: dict[str, Faker] = {}
    countries = rg.COUNTRIES
    weights = [c.weight for c in countries]
    names = list(archetypes.ARCHETYPES)
    start = time.perf_counter()
    rows = []
    for user_id in range(1, n_users + 1):
        seed = int.from_bytes(hashlib.md5(f"user|{SEED}|{user_id}".encode()).digest()[:8], "little")
        rng = random.Random(seed)
        archetype = rng.choice(names)
        country = rng.choices(countries, weights)[0]
        if country.locale not in fakers:  # one Faker per locale, created on first use
            fakers[country.locale] = Faker(country.locale)
        fake = fakers[country.locale]
        fake.seed_instance(seed)
        langs, lang_w = zip(*country.languages, strict=True)
        preferred = rng.choices(langs, lang_w)[0]
        low, high = people.AGE_RANGES[archetype]
        rows.append({
            "user_id": user_id, "archetype": archetype, "age": rng.randint(low, high), "country": country.code,
            "region": country.region, "preferred_language": preferred,
            "platforms": [p.name for p in pf.PLATFORMS
                          if country.region in p.regions and rng.random() < p.uptake[archetype]],
            "name": f"{fake.first_name()} {fake.last_name()}", "email": fake.email(),
            "signup_date": fake.date_between(dt.date(1995, 1, 1), dt.date(2019, 11, 21)),
        })
    pl.DataFrame(rows)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-users", type=int, default=2_000, help="size of the baseline's timed slice")
    args = parser.parse_args()
    if not all((TABLES / f"{n}.parquet").exists() for n in ("movies", "ratings")):
        ml25m_tables()  # generates and caches the ml-25m-shaped release once (a few minutes)
    n_ratings = pl.scan_parquet(TABLES / "ratings.parquet").select(pl.len()).collect().item()

    demo, demo_s, demo_mib = measure(demographics_asset)
    avail, avail_s, avail_mib = measure(availability_asset)
    step_s, _, _ = measure(people_step)
    naive_s, _, naive_mib = measure(naive_people, args.baseline_users)
    naive_full_s = naive_s * demo["users"] / args.baseline_users
    total = demo_s + avail_s
    report([
        ("input", f"ml-25m-shaped: {demo['users']:,} users, {avail['movies']:,} movies, {n_ratings:,} ratings"),
        ("demographics wall", f"{demo_s:.2f} s (compute incl. reading 25M ratings {demo['compute_s']:.2f} s, "
                              f"write {demo['write_s']:.2f} s)"),
        ("demographics rows/s", f"{demo['users'] / demo_s:,.0f} users/s; {n_ratings / demo_s:,.0f} ratings read/s"),
        ("demographics peak RSS", f"{demo_mib:,.0f} MiB"),
        ("availability wall", f"{avail_s:.2f} s (compute incl. counting ratings {avail['compute_s']:.2f} s, "
                              f"write {avail['write_s']:.2f} s)"),
        ("availability rows/s", f"{avail['rows'] / avail_s:,.0f} (movie, platform) rows/s; {avail['rows']:,} rows, "
                                f"coverage {100 * avail['coverage']:.2f}%"),
        ("availability peak RSS", f"{avail_mib:,.0f} MiB"),
        ("both assets", f"{total:.2f} s (target <= {TARGET_S:.0f} s: {'PASS' if total <= TARGET_S else 'FAIL'})"),
        ("baseline", f"naive per-user Faker, one call per field: {naive_s:.2f} s for {args.baseline_users:,} users, "
                     f"EXTRAPOLATED x{demo['users'] / args.baseline_users:.1f} to {naive_full_s:,.0f} s "
                     f"for {demo['users']:,} users (peak RSS {naive_mib:,.0f} MiB)"),
        ("ratio, person step", f"{naive_full_s / step_s:,.0f}x faster (vectorised person step: {step_s:.2f} s for "
                               f"the same users, Faker name pools built inside)"),
        ("ratio, whole asset", f"{naive_full_s / demo_s:,.1f}x faster (whole demographics asset, incl. 25M-rating "
                               f"behaviour features, vs the baseline's person step alone)"),
    ])


if __name__ == "__main__":
    main()
