"""The movies a day brings in, as pure functions: the strict movies day file, what a re-delivery sets or withdraws,
and the movie side of the global models for a new movie (no services)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tv5_assets.ingestion import day_catalogue, days
from tv5_assets.ingestion.errors import MovieLensInputError
from tv5_assets.taste import day_movies, factors, hybrid

SERVED = pl.Series([1, 2, 3], dtype=pl.Int32)


def _movies_file(tmp_path: Path, body: str, name: str = "movies-2024-03-02.csv",
                 header: str = "movieId,title,genres") -> Path:
    path = tmp_path / name
    path.write_text(f"{header}\n{body}")
    return path


def test_a_movies_day_file_reads_as_the_movies_table(tmp_path: Path) -> None:
    path = _movies_file(tmp_path, '10,"City of Lost Children, The (1995)",Adventure|Drama\n11,Untitled,'
                                  "(no genres listed)\n")
    frame = days.read_day_movies(path, SERVED)
    assert frame.schema == pl.Schema(days.MOVIES_SCHEMA)
    assert frame.rows() == [(10, "City of Lost Children, The (1995)", "The City of Lost Children", 1995,
                             ["Adventure", "Drama"], None, None), (11, "Untitled", "Untitled", None, [], None, None)]
    assert days.day_of(path) is not None and days.day_of(path)[0] == days.MOVIES_KIND


@pytest.mark.parametrize(("body", "rule", "line"), [
    ("10,New (2024),Drama\n2,Known (1999),Drama\n", "known_movie", 3),
    ("10,New (2024),Drama\n10,Again (2024),Comedy\n", "duplicate_movie", 3),
    ("x,New (2024),Drama\n", "movieId_not_integer", 2),
    ("10, ,Drama\n", "title_missing", 2),
    ("10,New (2024),\n", "genres_missing", 2),
])
def test_a_bad_movie_refuses_the_whole_file_naming_line_and_rule(tmp_path: Path, body: str, rule: str,
                                                                  line: int) -> None:
    with pytest.raises(MovieLensInputError) as refused:
        days.read_day_movies(_movies_file(tmp_path, body), SERVED)
    assert refused.value.rule == rule and refused.value.line == line
    assert "movies-2024-03-02.csv" in str(refused.value) and "nothing was loaded" in str(refused.value)


def test_a_movies_day_file_with_another_header_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MovieLensInputError) as refused:
        days.read_day_movies(_movies_file(tmp_path, "New,10,Drama\n", header="title,movieId,genres"), SERVED)
    assert refused.value.rule == "header" and refused.value.line == 1


def _rows(*rows: tuple[int, str, list[str]]) -> pl.DataFrame:
    return pl.DataFrame([{"movie_id": m, "title": t, "display_title": t, "year": 2024, "genres": g,
                          "imdb_id": None, "tmdb_id": None} for m, t, g in rows]).cast(days.MOVIES_SCHEMA)


def test_a_re_delivery_sets_only_new_or_changed_movies_and_withdraws_the_dropped() -> None:
    before = _rows((10, "A", ["Drama"]), (11, "B", ["Comedy"]), (12, "C", []))
    now = _rows((10, "A", ["Drama"]), (11, "B2", ["Comedy"]), (13, "D", ["War"]))
    to_set, withdrawn = day_catalogue.changed(now, before)
    assert to_set["movie_id"].to_list() == [11, 13] and withdrawn.to_list() == [12]
    same, none = day_catalogue.changed(before, before)
    assert same.is_empty() and none.is_empty()


def test_a_dropped_movie_another_published_day_rates_is_refused(tmp_path: Path) -> None:
    before = _rows((10, "A", ["Drama"]), (11, "B", ["Comedy"]))
    other_days = pl.DataFrame({"user_id": [5], "movie_id": [11]}, schema={"user_id": pl.Int32, "movie_id": pl.Int32})
    path = tmp_path / "movies-2024-03-02.csv"
    day_catalogue.refuse_withdrawn(path, before.head(1).vstack(before.tail(1)), before, other_days)  # keeps both
    day_catalogue.refuse_withdrawn(path, before.tail(1), before, other_days)  # drops 10, which nobody else rates
    with pytest.raises(MovieLensInputError) as refused:
        day_catalogue.refuse_withdrawn(path, before.head(1), before, other_days)  # drops 11, rated on another day
    assert refused.value.rule == "withdrawn_movie" and "[11]" in str(refused.value)


def test_the_catalogue_keeps_the_release_rows_and_adds_the_days() -> None:
    base = _rows((1, "Base", ["Drama"]), (2, "Base2", []))
    published = _rows((10, "A", ["Drama"]), (1, "Not a base row", []))
    catalogue = day_catalogue.catalogue(base, published, _rows((11, "B", ["War"])))
    assert catalogue["movie_id"].to_list() == [1, 2, 10, 11] and catalogue.row(0)[1] == "Base"


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_a_new_movie_gets_the_factors_the_full_build_gives_an_unrated_movie() -> None:
    rng = np.random.default_rng(3)
    content = pl.DataFrame({"movie_id": pl.Series(np.arange(1, 41), dtype=pl.Int32),
                            "vector": pl.Series(_unit(rng, 40, 16), dtype=pl.Array(pl.Float32, 16))})
    rated = np.arange(1, 40)  # movie 40: nobody rated it
    ratings = pl.DataFrame({"user_id": np.repeat(np.arange(1, 31), 6).astype(np.int32),
                            "movie_id": rng.choice(rated, 180).astype(np.int32),
                            "timestamp": np.arange(180, dtype=np.int64) + 1_500_000_000})
    ratings = ratings.unique(["user_id", "movie_id"])
    settings = factors.FactorSettings(factors=8, iterations=5)
    full = factors.movie_factors(ratings.lazy(), content, settings).frame
    assert full.filter(pl.col("movie_id") == 40)["cold"].item()
    served = full.filter(pl.col("movie_id") != 40)  # as served before the day that brings movie 40
    new = content.filter(pl.col("movie_id") == 40)
    predicted = day_movies.cold_factors(content.filter(pl.col("movie_id") != 40), served, new, settings.cold_ridge)
    assert predicted["cold"].to_list() == [True] and predicted["ratings"].to_list() == [0]
    expected = np.asarray(full.filter(pl.col("movie_id") == 40)["vector"].to_list(), np.float32)
    assert np.abs(np.asarray(predicted["vector"].to_list(), np.float32) - expected).max() <= 1e-5
    combined = day_movies.hybrid_movies(new, predicted.select("movie_id", "vector"), served)
    layout = hybrid.layout_for(16, np.asarray(served["vector"].to_list(), np.float32), hybrid.CONTENT_WEIGHT)
    assert combined.schema["vector"].size == layout.dimension
    assert np.allclose(np.asarray(combined["vector"].to_list())[0, 16:],
                       np.asarray(predicted["vector"].to_list())[0] * layout.factor_scale, atol=1e-6)
