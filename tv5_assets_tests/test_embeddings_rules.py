"""Pure logic of the embeddings stage: text template, cache, user vectors, similarity and the rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tv5_assets.embeddings import rules
from tv5_assets.embeddings.cache import (
    IDENTITY_FIELDS,
    cache_key,
    cache_path,
    empty_cache,
    encode_with_cache,
    model_slug,
    read_cache,
    vector_column,
    write_cache,
)
from tv5_assets.embeddings.similarity import genre_coherence, genre_masks, nearest
from tv5_assets.embeddings.texts import movie_texts, text_hash
from tv5_assets.embeddings.user_vectors import dense_codes, sparse_dot, user_vectors, weight_matrix

DIM = 8


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def vectors_frame(ids: list[int], matrix: np.ndarray, key: str = "movie_id") -> pl.DataFrame:
    return pl.DataFrame({key: pl.Series(ids, dtype=pl.Int32)}).with_columns(vector_column(matrix))


MOVIES = pl.DataFrame({
    "movie_id": pl.Series([1, 2, 3, 4], dtype=pl.Int32),
    "title": ["Toy Story (1995)", "Heat (1995)", "Unknown Thing", "Toy Story 2 (1999)"],
    "display_title": ["Toy Story", "Heat", "Unknown Thing", "Toy Story 2"],
    "year": pl.Series([1995, 1995, None, 1999], dtype=pl.Int32),
    "genres": [["Animation", "Comedy"], ["Action", "Crime"], [], ["Animation"]],
})
GENOME = pl.DataFrame({
    "movie_id": pl.Series([1] * 12 + [2], dtype=pl.Int32),
    "tag_id": pl.Series(list(range(12)) + [50], dtype=pl.Int32),
    "tag": [f"tag{i}" for i in range(12)] + ["heist"],
    "relevance": pl.Series([0.99 - i / 100 for i in range(12)] + [0.9], dtype=pl.Float32),
    "rank": pl.Series(list(range(12, 0, -1)) + [1], dtype=pl.Int32),  # rank 1 = tag11 for movie 1
})


def test_text_template_leaves_out_missing_parts_and_keeps_top_ten_tags_by_rank() -> None:
    texts = movie_texts(MOVIES, GENOME)
    by_id = dict(zip(texts["movie_id"].to_list(), texts["text"].to_list()))
    top_ten = ", ".join(f"tag{i}" for i in range(11, 1, -1))  # ranks 1..10 are tag11..tag2
    assert by_id[1] == f"Toy Story (1995). Genres: Animation, Comedy. Tags: {top_ten}."
    assert by_id[2] == "Heat (1995). Genres: Action, Crime. Tags: heist."
    assert by_id[3] == "Unknown Thing."  # no year, no genres, no tags
    assert by_id[4] == "Toy Story 2 (1999). Genres: Animation."
    assert texts["text_hash"].to_list() == [text_hash(t) for t in texts["text"]]
    assert text_hash("Heat (1995).") == "753910d67075fe3438c5af7e42d66b8b"  # sha256: the same on every machine
    assert len(text_hash("x")) == 32 and text_hash("x") != text_hash("x ")


def _fake_encode(calls: list[list[str]]):
    """A deterministic stand-in for the model in pure cache tests: the vector is derived from the text."""
    def encode(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        seeds = [int(text_hash(t)[:8], 16) for t in texts]
        return unit_rows(np.vstack([np.random.default_rng(s).standard_normal(DIM) for s in seeds]))
    return encode


FP32 = {"model": "sentence-transformers/all-MiniLM-L6-v2", "revision": "989cb896bc4eebf6", "backend": "torch",
        "precision": "fp32", "recipe": "fp32", "normalisation": "l2"}
INT8 = {**FP32, "backend": "openvino", "precision": "int8", "recipe": "int8-wasym-perchannel-dq64"}


def test_cache_encodes_only_new_texts_and_round_trips(tmp_path: Path) -> None:
    texts = movie_texts(MOVIES, GENOME)
    calls: list[list[str]] = []
    first = encode_with_cache(texts, empty_cache(DIM), _fake_encode(calls))
    assert (first.encoded, first.reused) == (4, 0) and first.frame["movie_id"].to_list() == [1, 2, 3, 4]
    path = write_cache(first.cache, cache_path(tmp_path, FP32))
    assert path.name.startswith("sentence-transformers--all-MiniLM-L6-v2--torch-fp32-")
    stored = read_cache(path, DIM)
    again = encode_with_cache(texts, stored, _fake_encode(calls))
    assert (again.encoded, again.reused) == (0, 4) and len(calls) == 1
    assert again.frame.equals(first.frame)
    changed = movie_texts(MOVIES.with_columns(
        pl.when(pl.col("movie_id") == 2).then(pl.lit(["Drama"])).otherwise("genres").alias("genres")), GENOME)
    third = encode_with_cache(changed, stored, _fake_encode(calls))
    assert (third.encoded, third.reused) == (1, 3) and calls[-1] == ["Heat (1995). Genres: Drama. Tags: heist."]
    assert third.cache.height == 5  # old entries are kept


def test_cache_key_changes_with_everything_that_changes_a_vector(tmp_path: Path) -> None:
    """fp32 and int8 (or another revision, recipe, normalisation) never share a cache file."""
    keys = {cache_key(FP32)}
    for name in IDENTITY_FIELDS:
        keys.add(cache_key({**FP32, name: FP32[name] + "-other"}))
    assert len(keys) == 1 + len(IDENTITY_FIELDS)
    assert cache_key(dict(reversed(FP32.items()))) == cache_key(FP32)  # order does not matter
    assert cache_path(tmp_path, FP32) != cache_path(tmp_path, INT8)
    assert cache_path(tmp_path, INT8).name.startswith("sentence-transformers--all-MiniLM-L6-v2--openvino-int8-")
    with pytest.raises(ValueError, match="missing: \\['revision'\\]"):
        cache_key({**FP32, "revision": ""})
    # vectors written under fp32 are not read back for int8: int8 encodes every text itself
    texts = movie_texts(MOVIES, GENOME)
    write_cache(encode_with_cache(texts, empty_cache(DIM), _fake_encode([])).cache, cache_path(tmp_path, FP32))
    calls: list[list[str]] = []
    int8 = encode_with_cache(texts, read_cache(cache_path(tmp_path, INT8), DIM), _fake_encode(calls))
    assert (int8.encoded, int8.reused) == (4, 0) and len(calls) == 1


def test_identical_texts_are_encoded_once() -> None:
    texts = pl.DataFrame({"movie_id": [1, 2], "text": ["Same.", "Same."], "text_hash": [text_hash("Same.")] * 2})
    calls: list[list[str]] = []
    result = encode_with_cache(texts, empty_cache(DIM), _fake_encode(calls))
    assert result.encoded == 1 and calls == [["Same."]] and result.frame.height == 2


def test_a_cache_of_another_width_is_ignored(tmp_path: Path) -> None:
    path = write_cache(empty_cache(4).vstack(pl.DataFrame({"text_hash": ["a"]}).with_columns(
        vector_column(np.ones((1, 4))))), tmp_path / "c.parquet")
    assert read_cache(path, 4).height == 1
    assert read_cache(path, DIM).height == 0
    assert read_cache(tmp_path / "absent.parquet", DIM).height == 0
    assert model_slug("/models/my model") == "models--my--model"


def naive_user_vectors(ratings: pl.DataFrame, content: pl.DataFrame) -> dict[int, np.ndarray]:
    """The seed's per-user loop (with the clipping fix), as an independent reference."""
    index = {m: i for i, m in enumerate(content["movie_id"].to_list())}
    matrix = content["vector"].to_numpy()
    out = {}
    for user, group in ratings.group_by("user_id"):
        rows = [index[m] for m in group["movie_id"].to_list()]
        weights = np.clip((group["rating"].to_numpy() - 1) / 4, 0, None)
        if weights.sum() == 0:
            weights = np.ones_like(weights)
        mean = (weights[:, None] * matrix[rows]).sum(axis=0) / weights.sum()
        out[user[0]] = mean / np.linalg.norm(mean)
    return out


def test_user_vectors_match_the_per_user_reference() -> None:
    rng = np.random.default_rng(3)
    content = vectors_frame(list(range(10, 60)), unit_rows(rng.standard_normal((50, DIM))))
    n = 400
    ratings = pl.DataFrame({
        "user_id": pl.Series(rng.integers(1, 30, n), dtype=pl.Int32),
        "movie_id": pl.Series(rng.integers(10, 60, n), dtype=pl.Int32),
        "rating": pl.Series(rng.integers(1, 11, n) / 2, dtype=pl.Float32),
    }).unique(["user_id", "movie_id"])
    # user 99 rated only 0.5 and 1.0 stars: all weights zero -> unweighted mean
    low = pl.DataFrame({"user_id": pl.Series([99, 99], dtype=pl.Int32),
                        "movie_id": pl.Series([10, 11], dtype=pl.Int32),
                        "rating": pl.Series([0.5, 1.0], dtype=pl.Float32)})
    ratings = pl.concat([ratings, low])
    result = user_vectors(ratings.lazy(), content)
    expected = naive_user_vectors(ratings, content)
    assert result.frame["user_id"].to_list() == sorted(expected)
    assert result.frame.schema["vector"] == pl.Array(pl.Float32, DIM) and result.frame.schema["user_id"] == pl.Int32
    got = dict(zip(result.frame["user_id"].to_list(), result.frame["vector"].to_numpy()))
    for user, vector in expected.items():
        np.testing.assert_allclose(got[user], vector, atol=1e-5)
    fallback = unit_rows(content["vector"].to_numpy()[:2].sum(axis=0, keepdims=True))[0]
    np.testing.assert_allclose(got[99], fallback, atol=1e-6)
    assert result.zero_weight_users >= 1 and result.ratings_used == ratings.height
    assert result.ratings_without_vector == 0


def test_half_star_ratings_weigh_nothing_and_unknown_movies_are_counted() -> None:
    content = vectors_frame([1, 2], np.eye(2, DIM))
    ratings = pl.DataFrame({"user_id": pl.Series([7, 7, 7], dtype=pl.Int32),
                            "movie_id": pl.Series([1, 2, 3], dtype=pl.Int32),
                            "rating": pl.Series([5.0, 0.5, 4.0], dtype=pl.Float32)})
    result = user_vectors(ratings, content)
    np.testing.assert_allclose(result.frame["vector"].to_numpy()[0], np.eye(1, DIM)[0], atol=1e-6)
    assert (result.ratings_used, result.ratings_without_vector, result.zero_weight_users) == (2, 1, 0)


def test_nearest_matches_brute_force_and_excludes_the_query() -> None:
    rng = np.random.default_rng(0)
    matrix = unit_rows(rng.standard_normal((40, DIM)))
    queries = np.array([0, 5, 39])
    got = nearest(matrix, queries, 5)
    for row, q in zip(got, queries):
        scores = matrix @ matrix[q]
        scores[q] = -np.inf
        assert row.tolist() == np.argsort(-scores)[:5].tolist()


def test_genre_coherence_is_high_for_genre_clusters_and_at_chance_for_random_vectors() -> None:
    rng = np.random.default_rng(1)
    genres = pl.Series([["A"], ["B"], ["C"], ["D"]] * 100)
    masks = genre_masks(genres)
    assert masks[:4].tolist() == [1, 2, 4, 8]
    centres = unit_rows(rng.standard_normal((4, DIM)))
    clustered = unit_rows(np.vstack([centres[i % 4] + 0.1 * rng.standard_normal(DIM) for i in range(400)]))
    good = genre_coherence(clustered, masks, k=10, sample=100)
    random = genre_coherence(unit_rows(rng.standard_normal((400, DIM))), masks, k=10, sample=100)
    assert good.coherence == 1.0 and abs(good.chance - 99 / 399) < 1e-9
    assert abs(random.coherence - random.chance) < 0.08


# ---- rules, each both ways -------------------------------------------------------------------

def good_vectors() -> pl.DataFrame:
    return vectors_frame([1, 2, 3, 4], unit_rows(np.random.default_rng(0).standard_normal((4, DIM))))


def test_dimension_rule() -> None:
    assert rules.vector_dimension(good_vectors(), DIM).passed
    wrong = rules.vector_dimension(good_vectors(), 384)
    assert not wrong.passed and "expected Array(Float32, 384)" in wrong.description
    as_f64 = good_vectors().with_columns(pl.col("vector").cast(pl.Array(pl.Float64, DIM)))
    assert not rules.vector_dimension(as_f64, DIM).passed
    assert "not recorded" in rules.vector_dimension(good_vectors(), None).description


def test_finite_and_norm_rules() -> None:
    assert rules.finite_vectors(good_vectors()).passed and rules.unit_norms(good_vectors()).passed
    matrix = good_vectors()["vector"].to_numpy().copy()
    matrix[1, 0] = np.nan
    matrix[2] *= 1.01
    bad = vectors_frame([1, 2, 3, 4], matrix)
    finite = rules.finite_vectors(bad)
    assert not finite.passed and finite.description == "1 vector(s) hold NaN or Inf"
    norms = rules.unit_norms(bad)
    assert not norms.passed and norms.metadata["off_norm_vectors"] == 2  # the NaN one and the scaled one
    assert "further than 0.001 from 1" in norms.description


def test_one_vector_per_key_rule() -> None:
    expected = pl.Series([1, 2, 3, 4], dtype=pl.Int32)
    assert rules.one_vector_per_key(good_vectors(), "movie_id", expected, "movies").passed
    bad = pl.concat([good_vectors().filter(pl.col("movie_id") != 3), good_vectors().head(1),
                     vectors_frame([9], np.eye(1, DIM))])
    result = rules.one_vector_per_key(bad, "movie_id", expected, "movies")
    assert not result.passed
    assert result.description == ("movies: 2 duplicated row(s), 1 without a vector (e.g. [3]), "
                                  "1 unexpected (e.g. [9])")


def test_model_recorded_rule() -> None:
    assert rules.model_recorded({"model": "sentence-transformers/all-MiniLM-L6-v2", "dimension": 384}).passed
    assert not rules.model_recorded({}).passed
    assert "model=''" in rules.model_recorded({"model": "", "dimension": 384}).description


def test_neighbour_rule_passes_fails_and_says_when_not_applicable() -> None:
    near = np.array([[1, 0], [0, 1], [0.6, 0.8], [0.99, 0.05]])  # Toy Story 2 (id 4) closest to Toy Story
    frame = vectors_frame([1, 2, 3, 4], unit_rows(np.pad(near, ((0, 0), (0, DIM - 2)))))
    ok = rules.neighbour_in_top_k(frame, MOVIES, "Toy Story (1995)", "Toy Story 2 (1999)", k=1)
    assert ok.passed and ok.metadata["rank"] == 1
    far = frame.with_columns(vector_column(unit_rows(np.pad(near[[0, 3, 2, 1]], ((0, 0), (0, DIM - 2))))))
    bad = rules.neighbour_in_top_k(far, MOVIES, "Toy Story (1995)", "Toy Story 2 (1999)", k=1)
    assert not bad.passed and "is not among the 1 nearest neighbours" in bad.description
    assert bad.metadata["neighbours"] == ["Heat (1995)"]
    absent = rules.neighbour_in_top_k(frame, MOVIES, "Alien (1979)", "Aliens (1986)")
    assert absent.passed and absent.metadata["applicable"] is False


def test_genre_coherence_rule_fails_on_random_vectors() -> None:
    rng = np.random.default_rng(2)
    ids = list(range(1, 401))
    movies = pl.DataFrame({"movie_id": pl.Series(ids, dtype=pl.Int32),
                           "genres": [[g] for g in ["A", "B", "C", "D"] * 100]})
    centres = unit_rows(rng.standard_normal((4, DIM)))
    clustered = vectors_frame(ids, unit_rows(np.vstack([centres[i % 4] + 0.2 * rng.standard_normal(DIM)
                                                        for i in range(400)])))
    assert rules.genre_coherent(clustered, movies).passed
    random = rules.genre_coherent(vectors_frame(ids, unit_rows(rng.standard_normal((400, DIM)))), movies)
    assert not random.passed and "below the floor" in random.description
    assert random.metadata["lift"] < 0.1
    no_genres = rules.genre_coherent(clustered, movies.with_columns(pl.lit([], dtype=pl.List(pl.String))
                                                                    .alias("genres")))
    assert not no_genres.passed


@pytest.mark.parametrize("bad_value", [np.inf, -np.inf])
def test_infinite_values_are_caught(bad_value: float) -> None:
    matrix = good_vectors()["vector"].to_numpy().copy()
    matrix[0, 3] = bad_value
    assert not rules.finite_vectors(vectors_frame([1, 2, 3, 4], matrix)).passed


def test_sparse_building_blocks_agree_on_both_paths() -> None:
    rng = np.random.default_rng(4)
    ids = rng.integers(5, 50, 200).astype(np.int32)
    distinct, codes = dense_codes(ids)
    assert distinct.tolist() == sorted(set(ids.tolist())) and (distinct[codes] == ids).all()
    sparse_ids = ids.astype(np.int64) * 10**9  # not compact: the np.unique path
    distinct_far, codes_far = dense_codes(sparse_ids)
    assert (distinct_far[codes_far] == sparse_ids).all() and (codes_far == codes).all()
    rows, cols = codes, rng.integers(0, 30, ids.size)
    weights = rng.random(ids.size).astype(np.float32)
    order = np.argsort(rows, kind="stable")
    unsorted = weight_matrix(rows, cols, weights, (distinct.size, 30))  # COO path
    grouped = weight_matrix(rows[order], cols[order], weights[order], (distinct.size, 30))  # direct CSR path
    dense = rng.standard_normal((30, DIM)).astype(np.float32)
    np.testing.assert_allclose(sparse_dot(grouped, dense, workers=3), unsorted.toarray() @ dense, atol=1e-5)
    np.testing.assert_allclose(grouped.toarray(), unsorted.toarray(), atol=1e-6)
