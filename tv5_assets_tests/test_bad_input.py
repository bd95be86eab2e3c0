"""Every kind of bad input from the foundation issue: each is handled or fails naming file, line and rule."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tv5_assets.ingestion import movielens
from tv5_assets.ingestion.errors import MovieLensInputError
from tv5_assets.ingestion.parsing import enforce_reject_budget
from tv5_assets.ingestion.release import release_manifest

MOVIES = (
    "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
    '2,"City of Lost Children, The (Cité des enfants perdus, La) (1995)",Adventure|Drama|Fantasy|Mystery|Sci-Fi\n'
    "3,Death Note: Desu nôto (2006–2007),(no genres listed)\n"
)
LINKS = "movieId,imdbId,tmdbId\n1,0114709,862\n2,0112682,902\n3,0877057,\n"
RATINGS = (
    "userId,movieId,rating,timestamp\n"
    "1,1,4.0,964982703\n"
    "1,2,0.5,964981247\n"
    "2,3,5.0,964982224\n"
)
TAGS = "userId,movieId,tag,timestamp\n1,1, pixar ,1139045764\n2,2,\"dark, weird\",1141391765\n"


def write_release(directory: Path, **overrides: str | bytes | None) -> Path:
    """A tiny valid release; pass e.g. ratings='...' to replace a file, or ratings=None to omit it."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {"movies": MOVIES, "links": LINKS, "ratings": RATINGS, "tags": TAGS} | overrides
    for name, content in files.items():
        if content is None:
            continue
        path = directory / f"{name}.csv"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return directory


def parse_ratings(directory: Path) -> movielens.Parsed:
    movies = movielens.parse_movies(directory / "movies.csv", directory / "links.csv").kept
    return movielens.parse_ratings(directory / "ratings.csv", movies["movie_id"])


def test_good_release_parses_with_nothing_rejected(tmp_path: Path) -> None:
    release = write_release(tmp_path)
    parsed = parse_ratings(release)
    assert parsed.kept.height == 3 and parsed.rejected.height == 0
    assert parsed.rows_read == {"ratings.csv": 3}


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    release = write_release(tmp_path, ratings=None)
    with pytest.raises(MovieLensInputError) as err:
        release_manifest(release)
    assert err.value.rule == "file_present" and err.value.path.name == "ratings.csv"
    assert "ratings.csv" in str(err.value)


def test_missing_genome_files_are_handled_as_an_empty_genome(tmp_path: Path) -> None:
    release = write_release(tmp_path)
    parsed = movielens.parse_genome(release / "genome-scores.csv", release / "genome-tags.csv", 0.5, 10)
    assert parsed.kept.is_empty() and list(parsed.kept.columns) == list(movielens.GENOME_SCHEMA)


@pytest.mark.parametrize("header", ["userId,movie_id,rating,timestamp", "userId,movieId,timestamp"])
def test_missing_or_renamed_column_fails_on_line_1(tmp_path: Path, header: str) -> None:
    release = write_release(tmp_path, ratings=header + "\n1,1,4.0,964982703\n")
    with pytest.raises(MovieLensInputError) as err:
        parse_ratings(release)
    assert (err.value.rule, err.value.line) == ("required_columns", 1)
    assert "movieId" in str(err.value) or "rating" in str(err.value)
    assert "ratings.csv" in str(err.value)


def test_non_numeric_id_is_quarantined_with_its_line(tmp_path: Path) -> None:
    release = write_release(tmp_path, ratings=RATINGS + "abc,1,4.0,964982703\n")
    parsed = parse_ratings(release)
    assert parsed.kept.height == 3
    row = parsed.rejected.row(0, named=True)
    assert row == {"file": "ratings.csv", "line": 5, "rule": "userId_not_integer", "record": "abc,1,4.0,964982703"}


def test_wrong_delimiter_fails_on_line_1(tmp_path: Path) -> None:
    release = write_release(tmp_path, ratings=RATINGS.replace(",", ";"))
    with pytest.raises(MovieLensInputError) as err:
        parse_ratings(release)
    assert (err.value.rule, err.value.line) == ("comma_delimiter", 1)
    assert "';'" in str(err.value)


def test_empty_file_fails(tmp_path: Path) -> None:
    release = write_release(tmp_path, ratings="")
    with pytest.raises(MovieLensInputError) as err:
        parse_ratings(release)
    assert (err.value.rule, err.value.line) == ("non_empty", 1)


def test_header_only_ratings_fail(tmp_path: Path) -> None:
    release = write_release(tmp_path, ratings="userId,movieId,rating,timestamp\n")
    with pytest.raises(MovieLensInputError) as err:
        parse_ratings(release)
    assert err.value.rule == "has_rows"


def test_truncated_last_line_is_quarantined(tmp_path: Path) -> None:
    release = write_release(tmp_path, ratings=RATINGS + "2,1,4.")
    parsed = parse_ratings(release)
    assert parsed.kept.height == 3
    assert parsed.rejected.select("line", "rule").row(0) == (5, "timestamp_not_integer")


def test_extra_trailing_empty_columns_are_ignored(tmp_path: Path) -> None:
    padded = "\n".join(line + ",," for line in RATINGS.strip().split("\n")) + "\n"
    parsed = parse_ratings(write_release(tmp_path, ratings=padded))
    assert parsed.kept.height == 3 and parsed.rejected.height == 0


def test_a_surplus_field_is_quarantined_not_truncated(tmp_path: Path) -> None:
    parsed = parse_ratings(write_release(tmp_path, ratings=RATINGS + "2,1,4.0,964982703,oops\n"))
    assert parsed.rejected.select("line", "rule").row(0) == (5, "field_count")


def test_duplicate_rows_and_keys(tmp_path: Path) -> None:
    text = RATINGS + "1,1,4.0,964982703\n" + "2,3,3.0,964999999\n"
    parsed = parse_ratings(write_release(tmp_path, ratings=text))
    assert parsed.kept.height == 3
    assert dict(parsed.rejected.select("line", "rule").iter_rows()) == {5: "duplicate_row", 4: "duplicate_key"}
    # the latest rating of (2, 3) wins: the 3.0 given later
    assert parsed.kept.filter((pl.col("user_id") == 2) & (pl.col("movie_id") == 3))["rating"].item() == 3.0


def test_crlf_and_bom_parse_like_plain_lf(tmp_path: Path) -> None:
    plain = parse_ratings(write_release(tmp_path / "lf")).kept
    crlf = parse_ratings(write_release(tmp_path / "crlf", ratings=RATINGS.replace("\n", "\r\n"))).kept
    bom = parse_ratings(write_release(tmp_path / "bom", ratings=b"\xef\xbb\xbf" + RATINGS.encode())).kept
    assert crlf.equals(plain) and bom.equals(plain)
    movies_crlf = movielens.parse_movies(
        write_release(tmp_path / "m", movies=MOVIES.replace("\n", "\r\n"))  / "movies.csv", tmp_path / "m" / "links.csv"
    ).kept
    assert movies_crlf["title"].to_list()[0] == "Toy Story (1995)"


@pytest.mark.parametrize("value", ["5.5", "0.0", "3.3", "-1"])
def test_rating_out_of_range_is_quarantined(tmp_path: Path, value: str) -> None:
    parsed = parse_ratings(write_release(tmp_path, ratings=RATINGS + f"3,1,{value},964982703\n"))
    assert parsed.rejected.select("line", "rule").row(0) == (5, "rating_domain")


def test_unknown_movie_is_quarantined(tmp_path: Path) -> None:
    parsed = parse_ratings(write_release(tmp_path, ratings=RATINGS + "3,999,4.0,964982703\n"))
    assert parsed.rejected.select("line", "rule").row(0) == (5, "unknown_movie")


def test_a_mostly_bad_file_is_refused_naming_file_line_and_rule(tmp_path: Path) -> None:
    text = "userId,movieId,rating,timestamp\n" + "".join(f"{u},1,9.0,964982703\n" for u in range(1, 11))
    release = write_release(tmp_path, ratings=text)
    parsed = parse_ratings(release)
    with pytest.raises(MovieLensInputError) as err:
        enforce_reject_budget(parsed, release / "ratings.csv", max_fraction=0.01)
    message = str(err.value)
    assert "ratings.csv" in message and "line 2" in message and "rating_domain" in message


def test_movies_rules_and_title_parsing(tmp_path: Path) -> None:
    movies_text = MOVIES + "x,Bad id (2000),Drama\n" + "4,,Drama\n" + "1,Toy Story again (1995),Comedy\n"
    parsed = movielens.parse_movies(write_release(tmp_path, movies=movies_text) / "movies.csv", tmp_path / "links.csv")
    rules = dict(parsed.rejected.filter(pl.col("file") == "movies.csv").select("line", "rule").iter_rows())
    assert rules == {5: "movieId_not_integer", 6: "title_missing", 7: "duplicate_key"}
    by_id = {row["movie_id"]: row for row in parsed.kept.to_dicts()}
    assert by_id[2]["display_title"] == "The City of Lost Children (La Cité des enfants perdus)"
    assert by_id[2]["year"] == 1995
    assert by_id[3]["year"] is None and by_id[3]["genres"] == []
    assert by_id[1]["imdb_id"] == "tt0114709" and by_id[3]["tmdb_id"] is None


def test_tags_are_trimmed_and_quoted_commas_kept(tmp_path: Path) -> None:
    release = write_release(tmp_path)
    movies = movielens.parse_movies(release / "movies.csv", release / "links.csv").kept
    parsed = movielens.parse_tags(release / "tags.csv", movies["movie_id"])
    assert parsed.kept["tag"].to_list() == ["pixar", "dark, weird"]


def test_a_blank_line_is_quarantined_under_its_own_rule(tmp_path: Path) -> None:
    parsed = parse_ratings(write_release(tmp_path, ratings=RATINGS + "\n" + "3,1,4.0,964982703\n"))
    assert parsed.kept.height == 4
    assert parsed.rejected.select("line", "rule", "record").row(0) == (5, "blank_line", "")
