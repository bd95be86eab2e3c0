"""The project's own MovieLens-format release: layout, counts, invariants and real-data quirks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest

from tv5_assets.sample.generator import (
    FIRST_RATING,
    LAST_RATING,
    SampleSpec,
    main,
    write_sample_release,
)
from tv5_assets.sample.vocab import GENRES, NO_GENRES

SPEC = SampleSpec(seed=7, movies=1_500, users=200, ratings=20_000, tags=1_500, genome_movies=120,
                  genome_tags=300)
HEADERS = {
    "movies.csv": "movieId,title,genres",
    "links.csv": "movieId,imdbId,tmdbId",
    "ratings.csv": "userId,movieId,rating,timestamp",
    "tags.csv": "userId,movieId,tag,timestamp",
    "genome-tags.csv": "tagId,tag",
    "genome-scores.csv": "movieId,tagId,relevance",
}
MONTH = 30 * 86_400


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_sample_release(tmp_path_factory.mktemp("release"), SPEC)


def _read(paths: dict[str, Path], name: str) -> pl.DataFrame:
    return pl.read_csv(paths[name], schema_overrides={"imdbId": pl.String})


def _digests(paths: dict[str, Path]) -> dict[str, str]:
    return {name: hashlib.sha256(p.read_bytes()).hexdigest() for name, p in paths.items()}


def test_writes_the_six_files_with_movielens_headers_utf8_and_lf(release):
    assert set(release) == set(HEADERS)
    for name, path in release.items():
        raw = path.read_bytes()
        assert b"\r" not in raw
        assert raw.decode("utf-8").split("\n", 1)[0] == HEADERS[name]
        assert raw.endswith(b"\n")


def test_row_counts_match_the_spec(release):
    expected = {"movies.csv": SPEC.movies, "links.csv": SPEC.movies, "ratings.csv": SPEC.ratings,
                "tags.csv": SPEC.tags, "genome-tags.csv": SPEC.genome_tags,
                "genome-scores.csv": SPEC.genome_movies * SPEC.genome_tags}
    for name, rows in expected.items():
        assert _read(release, name).height == rows, name


def test_movie_ids_increase_with_gaps_and_genres_are_movielens_ones(release):
    movies = _read(release, "movies.csv")
    steps = movies["movieId"].diff().drop_nulls()
    assert (steps > 0).all() and (steps > 1).any()
    listed = movies["genres"].str.split("|").explode()
    assert set(listed.unique()) <= set(GENRES) | {NO_GENRES}
    per_movie = movies["genres"].str.split("|").list.len()
    assert per_movie.min() >= 1 and per_movie.max() <= 4
    # Genres come in sensible company: Animation is mostly a children's genre.
    animation = movies.filter(pl.col("genres").str.contains("Animation"))
    children_share = movies["genres"].str.contains("Children").mean()
    assert animation["genres"].str.contains("Children").mean() > 2 * children_share


def test_titles_carry_the_real_data_quirks(release):
    titles = _read(release, "movies.csv")["title"]
    assert (~titles.str.contains(r"\(\d{4}\)\s*$") & ~titles.str.contains("–")).any()  # no year
    assert titles.str.contains(r"\(\d{4}–\d{4}\)$").any()
    assert titles.str.contains(r", The \(\d{4}\)$").any()
    assert titles.str.contains(r"\(.+, (La|Le|Les|L')\) \(\d{4}\)$").any()  # alternate title
    assert titles.str.contains(r"\S $").any()  # trailing space
    assert titles.str.contains('"').any()
    assert titles.str.contains(r"[^\x00-\x7F]").any()
    assert (titles.str.contains(r" \(\d{4}\)$").mean() or 0) > 0.9  # most end in " (YYYY)"
    raw = release["movies.csv"].read_text(encoding="utf-8")
    assert ',"' in raw and '""' in raw  # comma titles quoted, inner quotes doubled
    assert f",{NO_GENRES}\n" in raw


def test_links_have_padded_imdb_ids_and_some_missing_tmdb_ids(release):
    links = _read(release, "links.csv")
    assert links["imdbId"].str.contains(r"^\d{7}$").all()
    assert links["imdbId"].str.starts_with("0").any()
    assert links["imdbId"].n_unique() == links.height
    assert 0 < links["tmdbId"].null_count() <= 0.02 * links.height
    assert (links["movieId"] == _read(release, "movies.csv")["movieId"]).all()


def test_ratings_are_unique_valid_and_cover_every_user(release):
    ratings = _read(release, "ratings.csv")
    assert ratings.select("userId", "movieId").is_unique().all()
    assert set(ratings["movieId"].unique()) <= set(_read(release, "movies.csv")["movieId"])
    assert set(ratings["rating"].unique()) <= {x / 2 for x in range(1, 11)}
    assert ratings["userId"].unique().sort().to_list() == list(range(1, SPEC.users + 1))
    assert ratings.group_by("userId").len()["len"].min() >= 20
    text = release["ratings.csv"].read_text().splitlines()[1].split(",")[2]
    assert text in {f"{x / 2:.1f}" for x in range(1, 11)}  # written like "4.0"


def test_popularity_and_activity_are_long_tailed(release):
    ratings = _read(release, "ratings.csv")
    per_movie = ratings.group_by("movieId").len()["len"]
    per_user = ratings.group_by("userId").len()["len"]
    assert per_movie.max() > 8 * per_movie.median()
    assert per_user.max() > 5 * per_user.median()


def test_ratings_are_sorted_and_timestamps_stay_in_range(release):
    ratings = _read(release, "ratings.csv")
    assert ratings.equals(ratings.sort("userId", "timestamp", maintain_order=True))
    assert ratings["timestamp"].min() >= FIRST_RATING
    assert ratings["timestamp"].max() <= LAST_RATING
    years = pl.from_epoch(ratings["timestamp"]).dt.year()
    assert years.min() >= 1996 and years.max() <= 2019


def test_users_rate_in_sessions_with_short_and_long_gaps(release):
    gaps = (_read(release, "ratings.csv")
            .select(pl.col("timestamp").diff().over("userId").alias("gap"))["gap"].drop_nulls())
    assert (gaps < 3_600).mean() > 0.5  # bursts inside a session
    assert ((gaps > 86_400) & (gaps < MONTH)).any()  # a new session within the month
    assert (gaps > MONTH).any()  # the RL stage cuts an episode here


def test_whole_stars_only_before_half_stars_existed(release):
    ratings = _read(release, "ratings.csv")
    early = ratings.filter(pl.col("timestamp") < 1_045_526_400)["rating"]
    assert early.len() > 0 and (early == early.round(0)).all()
    assert (ratings["rating"] % 1 == 0.5).any()


def test_tags_come_from_known_users_and_movies_with_quirky_text(release):
    tags = _read(release, "tags.csv")
    assert set(tags["userId"].unique()) <= set(range(1, SPEC.users + 1))
    assert set(tags["movieId"].unique()) <= set(_read(release, "movies.csv")["movieId"])
    assert tags["tag"].str.contains(r"^\s|\s$").any()
    assert tags["tag"].str.contains(",").any()
    assert tags["tag"].str.contains('"').any()
    assert tags["timestamp"].is_between(FIRST_RATING, LAST_RATING).all()


def test_genome_covers_most_rated_movies_with_sparse_high_relevance(release):
    names = _read(release, "genome-tags.csv")
    assert names["tagId"].to_list() == list(range(1, SPEC.genome_tags + 1))
    assert names["tag"].n_unique() == SPEC.genome_tags
    scores = _read(release, "genome-scores.csv")
    assert scores.equals(scores.sort("movieId", "tagId"))
    assert scores["relevance"].is_between(0.0, 1.0).all()
    assert scores["relevance"].median() < 0.2
    high = scores.filter(pl.col("relevance") > 0.5).group_by("movieId").len()["len"]
    assert 2 <= high.median() <= 30
    counts = _read(release, "ratings.csv").group_by("movieId").len()
    ranked = counts.sort("len", "movieId", descending=[True, False])
    assert set(scores["movieId"].unique()) == set(ranked["movieId"].head(SPEC.genome_movies))


def test_genome_relevance_follows_genres(release):
    """A tag named after a genre scores higher on movies of that genre."""
    genre_of_tag = {g.lower(): g for g in GENRES}
    names = _read(release, "genome-tags.csv").filter(pl.col("tag").is_in(list(genre_of_tag)))
    assert names.height >= 3
    scores = (_read(release, "genome-scores.csv")
              .join(names, on="tagId")
              .join(_read(release, "movies.csv"), on="movieId")
              .with_columns(pl.col("tag").replace_strict(genre_of_tag).alias("genre")))
    matched = scores.select(pl.col("genres").str.split("|").list.contains(pl.col("genre")))
    by_match = scores.group_by(matched.to_series().alias("m")).agg(pl.col("relevance").mean())
    mean = dict(zip(by_match["m"], by_match["relevance"], strict=True))
    assert mean[True] > 2 * mean[False]


def test_same_seed_gives_identical_bytes_and_other_seed_differs(release, tmp_path):
    again = write_sample_release(tmp_path / "again", SPEC)
    other = write_sample_release(tmp_path / "other", SampleSpec(**{**SPEC.__dict__, "seed": 8}))
    assert _digests(again) == _digests(release)
    differing = {n for n, d in _digests(other).items() if d != _digests(release)[n]}
    assert differing >= set(HEADERS) - {"genome-tags.csv"}


def test_few_ratings_still_give_every_user_one(tmp_path):
    spec = SampleSpec(seed=1, movies=60, users=50, ratings=120, tags=10, genome_movies=5,
                      genome_tags=20)
    ratings = _read(write_sample_release(tmp_path, spec), "ratings.csv")
    assert ratings.height == 120 and ratings["userId"].n_unique() == 50
    assert ratings.select("userId", "movieId").is_unique().all()


@pytest.mark.parametrize("bad", [dict(ratings=10), dict(genome_movies=3_000),
                                 dict(ratings=300 * 1_700), dict(genome_tags=100_000)])
def test_impossible_specs_are_refused(bad):
    with pytest.raises(ValueError):
        SampleSpec(**bad)


def test_ml25m_has_the_ml25m_shape():
    spec = SampleSpec.ml25m(seed=3)
    assert (spec.seed, spec.movies, spec.users, spec.ratings, spec.tags, spec.genome_movies,
            spec.genome_tags) == (3, 62_423, 162_541, 25_000_095, 1_093_360, 13_816, 1_128)


def test_cli_writes_a_release_and_reports_it(tmp_path, capsys):
    main(["--out", str(tmp_path), "--seed", "5", "--movies", "300", "--users", "40",
          "--ratings", "1000", "--tags", "50", "--genome-movies", "20", "--genome-tags", "30"])
    out = capsys.readouterr().out
    assert "ratings.csv" in out and " s" in out
    assert _read({"r": tmp_path / "ratings.csv"}, "r").height == 1_000
