"""The vector store's pure logic: rows, byte batches, payloads, swap bookkeeping, measurements, rules."""

from __future__ import annotations

import datetime as dt

import grpc
import numpy as np
import polars as pl
import pytest
from pymilvus.exceptions import ConnectionConfigException, MilvusException, ParamError
from pymilvus.grpc_gen import schema_pb2

from tv5_assets.core.retry import backoff_delays, with_retries
from tv5_assets.vector_store import quality, rules
from tv5_assets.vector_store.batching import byte_batches, row_bytes
from tv5_assets.vector_store.day_upsert import vectors_of
from tv5_assets.vector_store.payload import insert_request
from tv5_assets.vector_store.rebuild import content_of, is_version_of, stale_versions, versioned_name
from tv5_assets.vector_store.resources import (
    MilvusConfigError,
    MilvusError,
    check_uri,
    is_auth_error,
    is_transient,
    lite_path,
    public_uri,
)
from tv5_assets.vector_store.rows import (
    ValueTooLongError,
    content_version,
    media_rows,
    probe_truth,
    user_rows,
    value_counts,
)
from tv5_assets.vector_store.schema import MEDIA, USERS, VectorIndex, filter_expression
from tv5_assets_tests.milvus_support import unit_vectors, vector_frame, write_source_lake


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    return write_source_lake(tmp_path_factory.mktemp("sources"), movies=120, users=50)


# ----------------------------------------------------------------------------- rows
def test_media_rows_join_titles_years_genres_and_platforms(sources: dict[str, pl.DataFrame]) -> None:
    rows = media_rows(sources["content_vectors"], sources["movies"], sources["availability"], MEDIA)
    frame = rows.frame
    assert frame.columns == ["id", "vector", "title", "year", "genres", "platforms"]
    assert frame.schema["id"] == pl.Int64 and rows.dimension == 384
    assert frame.height == sources["content_vectors"].height
    first = frame.row(0, named=True)
    assert first["id"] == 3 and first["title"] == "Le Film « 0 » éditée" and first["year"] == 0  # 0: unknown
    assert first["platforms"] == ["Netflix", "TV5MONDE"] and first["genres"] == []
    assert frame.filter(pl.col("id") == 6)["platforms"].item().to_list() == []  # not on any platform
    assert frame.filter(pl.col("id") == 9)["genres"].item().to_list() == ["Drama", "Comedy"]


def test_no_value_is_cut_a_value_that_does_not_fit_fails_naming_field_id_and_value() -> None:
    vectors = vector_frame("movie_id", np.array([1, 2]), np.eye(2, 4, dtype=np.float32))
    movies = pl.DataFrame({"movie_id": [1, 2], "title": ["a", "b"], "display_title": ["é" * 400, "short"],
                           "year": [1999, None], "genres": [["Drama"], None]})
    availability = pl.DataFrame({"movie_id": [1, 2], "platform": ["Criterion Channel", "MUBI"]})
    rows = media_rows(vectors, movies, availability, MEDIA)  # 800 bytes of title fit 1,024; 17-byte names fit 64
    assert rows.frame["title"][0] == "é" * 400 and rows.frame["platforms"][0].to_list() == ["Criterion Channel"]
    too_long = movies.with_columns(pl.Series("display_title", ["é" * 513, "short"]))  # 1,026 bytes
    with pytest.raises(ValueTooLongError, match=r"field 'title' \(1024 bytes a value\); first: id 1 with title = 'éé"):
        media_rows(vectors, too_long, availability, MEDIA)
    many = movies.with_columns(pl.Series("genres", [[f"g{i}" for i in range(40)], []]))
    with pytest.raises(ValueTooLongError, match=r"'genres' \(64 bytes a value, 32 elements\); first: id 1"):
        media_rows(vectors, many, availability, MEDIA)
    long_country = pl.DataFrame({"user_id": [7], "archetype": ["x"], "country": ["Côte d'Ivoire, Republic"]})
    with pytest.raises(ValueTooLongError, match="id 7 with country"):
        user_rows(vector_frame("user_id", np.array([7]), np.eye(1, 4, dtype=np.float32)), long_country, USERS)


def test_value_counts_and_every_value_found_both_ways() -> None:
    frame = pl.DataFrame({"id": [1, 2, 3], "platforms": [["MUBI", "Criterion Channel"], ["MUBI"], []],
                          "country": ["FR", "CA", "FR"]})
    counts = value_counts(frame, ["platforms", "country"])
    assert counts.rows() == [("country", "CA", 1), ("country", "FR", 2), ("platforms", "Criterion Channel", 1),
                             ("platforms", "MUBI", 2)]
    assert rules.every_value_found("c", counts.with_columns(found=pl.col("rows"))).passed
    cut = rules.every_value_found("c", counts.with_columns(found=pl.Series([1, 2, 0, 2])))
    assert not cut.passed and cut.metadata["wrong"] == ["platforms = 'Criterion Channel': 0 of 1"]


def test_repeated_ids_are_refused_before_anything_is_loaded() -> None:
    vectors = vector_frame("user_id", np.array([1, 1]), np.eye(2, 4, dtype=np.float32))
    with pytest.raises(ValueError, match="repeats"):
        user_rows(vectors, pl.DataFrame({"user_id": [1], "archetype": ["x"], "country": ["FR"]}), USERS)


def test_users_without_demographics_get_empty_attributes(sources: dict[str, pl.DataFrame]) -> None:
    rows = user_rows(sources["user_vectors"], sources["demographics"].head(10), USERS)
    assert rows.frame.height == 50 and (rows.frame["country"] == "").sum() == 40


def test_content_version_follows_rows_and_index(sources: dict[str, pl.DataFrame]) -> None:
    rows = user_rows(sources["user_vectors"], sources["demographics"], USERS)
    same = user_rows(sources["user_vectors"].reverse(), sources["demographics"], USERS)
    changed = user_rows(sources["user_vectors"], sources["demographics"].with_columns(country=pl.lit("DE")), USERS)
    assert content_version(rows, VectorIndex(), USERS) == content_version(same, VectorIndex(), USERS)
    assert content_version(rows, VectorIndex(), USERS) != content_version(changed, VectorIndex(), USERS)
    assert content_version(rows, VectorIndex(), USERS) != content_version(rows, VectorIndex(metric_type="L2"), USERS)


def test_probe_truth_keeps_a_present_value_and_falls_back_to_the_most_frequent(
        sources: dict[str, pl.DataFrame]) -> None:
    ids = sources["content_vectors"]["movie_id"]
    value, matched = probe_truth(ids, sources["availability"], "movie_id", "platform", "TV5MONDE")
    assert value == "TV5MONDE" and matched.to_list() == [3 * i + 3 for i in range(0, 120, 6)]
    value, matched = probe_truth(ids, sources["availability"], "movie_id", "platform", "Disney+")
    assert value == "Netflix" and matched.len() == 60
    value, matched = probe_truth(ids.head(0), sources["availability"], "movie_id", "platform", None)
    assert value is None and matched.len() == 0


def test_filter_expressions_quote_values() -> None:
    assert filter_expression(MEDIA, "platforms", "TV5MONDE") == 'ARRAY_CONTAINS(platforms, "TV5MONDE")'
    assert filter_expression(USERS, "country", 'F"R\\') == 'country == "F\\"R\\\\"'
    with pytest.raises(ValueError, match="not a scalar field"):
        filter_expression(USERS, "platforms", "x")


# ----------------------------------------------------------------------------- batches and payloads
def test_byte_batches_cover_all_rows_within_the_budget() -> None:
    sizes = np.array([100, 300, 50, 5000, 10, 10, 10, 400])
    batches = byte_batches(sizes, 400)
    assert batches == [(0, 2), (2, 3), (3, 4), (4, 7), (7, 8)]  # the 5000-byte row travels alone
    assert all(sizes[a:b].sum() <= 400 for a, b in batches if b - a > 1)
    assert byte_batches(sizes, 10_000, max_rows=3) == [(0, 3), (3, 6), (6, 8)]
    assert byte_batches(np.array([], dtype=np.int64), 10) == []
    with pytest.raises(ValueError):
        byte_batches(sizes, 0)


def test_row_bytes_count_vectors_strings_and_list_elements(sources: dict[str, pl.DataFrame]) -> None:
    rows = media_rows(sources["content_vectors"], sources["movies"], sources["availability"], MEDIA).frame
    sizes = row_bytes(rows)
    first = rows.row(0, named=True)
    expected = 8 + 384 * 4 + len(first["title"].encode()) + 4 + 8 + 4 + sum(len(p) + 4 for p in first["platforms"]) + 4
    assert sizes[0] == expected
    batches = byte_batches(sizes, 20_000)
    assert batches[0][0] == 0 and batches[-1][1] == len(sizes)
    assert all(a[1] == b[0] for a, b in zip(batches, batches[1:]))  # contiguous, nothing skipped
    assert all(sizes[a:b].sum() <= 20_000 < sizes[a:b + 1].sum() for a, b in batches[:-1])  # each as full as fits


def test_row_bytes_has_one_size_per_row_when_every_column_is_fixed_width() -> None:
    # id + vector only: the sizes are literals, which once summed to a single row (a 1-row batch plan,
    # so a 9,742-row load inserted 1 entity; the rebuild's count check caught it)
    rows = pl.DataFrame({"id": pl.Series([1, 2, 3], dtype=pl.Int64),
                         "vector": pl.Series(np.zeros((3, 4), np.float32), dtype=pl.Array(pl.Float32, 4))})
    assert row_bytes(rows).tolist() == [8 + 16] * 3
    assert byte_batches(row_bytes(rows), 10_000) == [(0, 3)]


def test_insert_request_carries_every_column_exactly(sources: dict[str, pl.DataFrame]) -> None:
    rows = media_rows(sources["content_vectors"], sources["movies"], sources["availability"], MEDIA).frame.head(7)
    request = insert_request("c", rows, MEDIA)
    fields = {f.field_name: f for f in request.fields_data}
    assert request.num_rows == 7 and list(fields) == ["id", "vector", "title", "year", "genres", "platforms"]
    assert list(fields["id"].scalars.long_data.data) == rows["id"].to_list()
    vectors = np.asarray(fields["vector"].vectors.float_vector.data, dtype=np.float32).reshape(7, -1)
    assert fields["vector"].vectors.dim == 384 and np.array_equal(vectors, rows["vector"].to_numpy())
    assert list(fields["title"].scalars.string_data.data) == rows["title"].to_list()
    platforms = [list(a.string_data.data) for a in fields["platforms"].scalars.array_data.data]
    assert platforms == rows["platforms"].to_list()


def test_returned_vectors_decode_from_their_packed_bytes() -> None:
    """What a query returns (a FieldData parsed off the wire) decodes to the same float32 matrix, bit for bit, as
    the repeated field read float by float; an empty column is (0, dim)."""
    vectors = np.random.default_rng(3).standard_normal((300, 384)).astype(np.float32)  # 460,800 bytes: 3-byte varint
    built = schema_pb2.FieldData(type=schema_pb2.DataType.FloatVector, field_name="vector")  # as a server builds it
    built.vectors.dim = 384
    built.vectors.float_vector.data.extend(vectors.ravel().tolist())
    field = schema_pb2.FieldData.FromString(built.SerializeToString())
    decoded = vectors_of(field)
    assert decoded.dtype == np.float32 and decoded.shape == (300, 384) and np.array_equal(decoded, vectors)
    assert np.array_equal(decoded, np.asarray(field.vectors.float_vector.data, dtype=np.float32).reshape(300, 384))
    empty = schema_pb2.FieldData(type=schema_pb2.DataType.FloatVector, field_name="vector")
    empty.vectors.dim = 384
    assert vectors_of(empty).shape == (0, 384)


# ----------------------------------------------------------------------------- versions
def test_a_versioned_name_carries_its_content_version() -> None:
    name = versioned_name("tv5_t_media_vectors", dt.datetime(2024, 1, 2, 3, 4, 5), "abcdef", content="0123456789abcdef01234567")
    assert name == "tv5_t_media_vectors__v20240102030405_abcdef_c0123456789abcdef01234567"
    assert content_of(name) == "0123456789abcdef01234567" and is_version_of(name, "tv5_t_media_vectors")
    assert content_of(versioned_name("media_vectors", token="abcdef")) is None  # built before names carried it
    assert content_of("media_vectors") is None


def test_versioned_names_sort_by_time_and_stale_versions_exclude_the_live_one() -> None:
    early = versioned_name("media_vectors", dt.datetime(2024, 1, 2, 3, 4, 5), "aaaaaa")
    late = versioned_name("media_vectors", dt.datetime(2024, 1, 2, 3, 4, 6), "000000")
    assert early == "media_vectors__v20240102030405_aaaaaa" and early < late
    assert is_version_of(late, "media_vectors") and not is_version_of(late, "media")
    names = [early, late, "media_vectors", "user_vectors__v20240101000000_abcdef", "media_vectors_copy"]
    assert stale_versions(names, "media_vectors", late) == [early]
    assert stale_versions(names, "media_vectors", None) == [early, late]


# ----------------------------------------------------------------------------- retries and errors
def test_backoff_doubles_up_to_the_cap() -> None:
    assert backoff_delays(5, 0.5, 3.0) == [0.5, 1.0, 2.0, 3.0]
    assert backoff_delays(1, 0.5, 3.0) == []


def test_transient_errors_are_retried_and_permanent_ones_are_not() -> None:
    waits: list[float] = []
    outcomes = iter([MilvusException(code=8, message="rate limit exceeded"), MilvusException(code=2, message="x"), 42])

    def flaky() -> int:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert with_retries(flaky, attempts=3, base_s=1, max_s=10, is_transient=is_transient, sleep=waits.append) == 42
    assert waits == [1, 2]

    calls = []

    def permanent() -> None:
        calls.append(1)
        raise ParamError(message="invalid dim")

    with pytest.raises(ParamError):
        with_retries(permanent, attempts=5, base_s=1, max_s=1, is_transient=is_transient, sleep=waits.append)
    assert len(calls) == 1

    def down() -> None:
        raise MilvusException(code=2, message="Fail connecting to server on 127.0.0.1:1")

    with pytest.raises(MilvusException, match="Fail connecting"):
        with_retries(down, attempts=3, base_s=0, max_s=0, is_transient=is_transient, sleep=lambda _: None)


class _RpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code


def test_error_classes() -> None:
    assert is_transient(_RpcError(grpc.StatusCode.UNAVAILABLE))
    assert not is_transient(_RpcError(grpc.StatusCode.INVALID_ARGUMENT))
    assert is_auth_error(_RpcError(grpc.StatusCode.UNAUTHENTICATED))
    assert is_auth_error(MilvusException(code=1800, message="user hasn't authenticated"))
    assert not is_transient(MilvusException(code=1800, message="user hasn't authenticated"))
    assert not is_transient(ConnectionConfigException(message="uri: ftp://x is illegal"))
    assert not is_transient(MilvusError("ours are final"))
    assert not is_transient(MilvusException(code=1100, message="invalid parameter"))


def test_uris() -> None:
    assert lite_path("data/milvus.db").name == "milvus.db" and lite_path("http://127.0.0.1:19530") is None
    assert check_uri("http://127.0.0.1:19530") and check_uri("/tmp/x/milvus.db")
    for wrong in ("data/milvus.sqlite", "ftp://host:1", "http://", "127.0.0.1:19530"):
        with pytest.raises(MilvusConfigError, match="neither a Milvus Lite file"):
            check_uri(wrong)
    assert public_uri("https://root:secret@host:19530/db") == "https://host:19530/db"


# ----------------------------------------------------------------------------- measurements
def test_exact_top_k_matches_a_full_sort_for_every_metric() -> None:
    rng = np.random.default_rng(3)
    corpus, queries = rng.normal(size=(300, 16)).astype(np.float32), rng.normal(size=(20, 16)).astype(np.float32)
    for metric in ("COSINE", "IP", "L2"):
        positions, best = quality.exact_top_k(corpus, queries, 5, metric, chunk=7)
        full = quality.scores(queries, corpus, metric)
        assert np.array_equal(positions, np.argsort(-full, axis=1, kind="stable")[:, :5])
        assert np.allclose(best, -np.sort(-full, axis=1)[:, :5], atol=1e-4)
    l2 = quality.scores(queries[:1], corpus[:1], "L2")[0, 0]
    assert np.isclose(-l2, ((queries[0] - corpus[0]) ** 2).sum(), rtol=1e-4)


def test_recall_counts_ties_and_misses() -> None:
    rng = np.random.default_rng(4)
    corpus = unit_vectors(rng, 200, rng.normal(size=(5, 8)))
    corpus[11] = corpus[10]  # an exact duplicate
    ids = np.arange(200) * 2
    queries = corpus[[10, 50, 90]]
    exact, _ = quality.exact_top_k(corpus, queries, 5, "COSINE")
    perfect = ids[exact]
    assert quality.recall_at_k(perfect, queries, ids, corpus, 5, "COSINE") == 1.0
    swapped = perfect.copy()
    swapped[0, [0, 1]] = swapped[0, [1, 0]]  # same set, tie order differs
    assert quality.recall_at_k(swapped, queries, ids, corpus, 5, "COSINE") == 1.0
    worse = perfect.copy()
    worse[:, -1] = ids[np.argsort(quality.scores(queries, corpus, "COSINE"), axis=1)[:, 0]]  # the farthest row
    assert quality.recall_at_k(worse, queries, ids, corpus, 5, "COSINE") == pytest.approx(0.8)
    repeated = np.repeat(perfect[:, :1], 5, axis=1)  # one right id five times is not recall 1
    assert quality.recall_at_k(repeated, queries, ids, corpus, 5, "COSINE") == 0.0
    assert quality.recall_at_k(quality.pad_ids([[], [], []], 5), queries, ids, corpus, 5, "COSINE") == 0.0


def test_self_retrieval_accepts_identical_vectors_only() -> None:
    rng = np.random.default_rng(5)
    corpus = unit_vectors(rng, 50, rng.normal(size=(3, 8)))
    corpus[1] = corpus[0]
    ids = np.arange(50) + 100
    result = quality.self_retrieval(ids[:3], corpus[:3], np.array([101, 100, 140]), ids, corpus, "COSINE")
    assert result.rate == pytest.approx(2 / 3) and result.own_id_rate == 0.0 and result.misses == [102]


def test_latency_summary_and_samples() -> None:
    summary = quality.latency_summary([0.001] * 98 + [0.050, 0.100])
    assert summary["queries"] == 100 and summary["p50_ms"] == 1.0 and 50 <= summary["p99_ms"] <= 100
    assert quality.latency_summary([])["queries"] == 0
    sample = quality.sample_positions(10, 20, 0)
    assert sorted(set(sample.tolist())) == list(range(10))
    assert np.array_equal(quality.sample_positions(1000, 5, 1), quality.sample_positions(1000, 5, 1))


# ----------------------------------------------------------------------------- rules, both ways
def test_entity_count_rule() -> None:
    assert rules.entity_count("c", 10, 10).passed
    bad = rules.entity_count("c", 9, 10)
    assert not bad.passed and "9 entities, which differs from the 10 source rows" in bad.description


def test_index_rule() -> None:
    reported = {"index_type": "HNSW", "metric_type": "COSINE", "params": {"M": 16, "efConstruction": 200}}
    assert rules.index_as_configured("c", reported, VectorIndex()).passed
    bad = rules.index_as_configured("c", {**reported, "metric_type": "L2", "params": {"M": 16}}, VectorIndex())
    assert not bad.passed and "metric_type" in bad.description and "efConstruction" in bad.description
    assert not rules.index_as_configured("c", {}, VectorIndex()).passed


def test_loaded_rule() -> None:
    assert rules.collection_loaded("c", "Loaded").passed
    assert rules.collection_loaded("c", "NotLoad").description == "c load state is NotLoad"
    assert not rules.collection_loaded("c", "NotLoad").passed
    reloaded = rules.collection_loaded("c", "Loaded", "NotLoad", "milvus-lite")
    assert reloaded.passed and "found NotLoad" in reloaded.description
    assert not rules.collection_loaded("c", "Loading", "NotLoad", "milvus-lite").passed


def test_quality_rules() -> None:
    good = quality.SelfRetrieval(0.995, 0.99, 1000, [])
    assert rules.self_retrieval("c", good, 0.99).passed
    bad = rules.self_retrieval("c", quality.SelfRetrieval(0.5, 0.5, 1000, [7]), 0.99)
    assert not bad.passed and "50.00% of 1000" in bad.description and bad.metadata["missed_ids"] == [7]
    assert not rules.self_retrieval("c", quality.SelfRetrieval(0.0, 0.0, 0, []), 0.99).passed
    assert rules.recall("c", 0.97, 0.95, 10, 200, {"ef": 100}).passed
    assert "recall@10 = 0.9000 over 200 queries at ef=100" in rules.recall("c", 0.9, 0.95, 10, 200, {"ef": 100}).description
    assert "at nprobe=64" in rules.recall("c", 0.97, 0.95, 10, 200, {"nprobe": 64}).description
    assert "exact (FLAT)" in rules.recall("c", 0.97, 0.95, 10, 200, {}).description
    assert not rules.recall("c", 0.9, 0.95, 10, 200, {"ef": 100}).passed
    fast = quality.latency_summary([0.005] * 50)
    assert rules.latency("c", fast, 100).passed and not rules.latency("c", fast, 1).passed


def test_filtered_search_rule() -> None:
    hits = [{"id": 3, "entity": {"platforms": ["TV5MONDE", "MUBI"]}}, {"id": 9, "entity": {"platforms": ["TV5MONDE"]}}]
    args = ("c", "ARRAY_CONTAINS(platforms, \"TV5MONDE\")", "platforms", "TV5MONDE")
    assert rules.filtered_search(*args, hits, 100, 2, [3, 9]).passed
    leaked = rules.filtered_search(*args, [*hits, {"id": 4, "entity": {"platforms": ["MUBI"]}}], 100, 3, [3, 9])
    assert not leaked.passed and "lacks 'TV5MONDE': [4]" in leaked.description
    short = rules.filtered_search(*args, hits[:1], 100, 1, [3, 9])
    assert not short.passed and "the filter counts 1 entities, the source 2" in short.description
    under_filled = rules.filtered_search(*args, hits[:1], 100, 2, [3, 9])  # reported, not failed
    assert under_filled.passed and "returned 1 of 2 possible hits" in under_filled.description
    empty = rules.filtered_search(*args, [], 100, 2, [3, 9])
    assert not empty.passed and "no hit returned although 2 source rows match" in empty.description
    assert rules.filtered_search("c", 'country == "FR"', "country", "FR", [{"id": 1, "entity": {"country": "FR"}}],
                                 1, 5, [1, 2, 3, 4, 5]).passed


def test_enough_timings_over_budget_decide_the_p99_of_all_planned_queries() -> None:
    from tv5_assets.vector_store import quality, rules

    for planned in (5, 20, 200, 1000):
        decisive = quality.over_budget_to_decide_p99(planned)
        worst_case_rest = np.zeros(planned)  # the queries not timed could all have been instant
        worst_case_rest[:decisive] = 101.0
        assert np.percentile(worst_case_rest, 99) > 100.0, planned
    assert quality.over_budget_to_decide_p99(200) == 3
    summary = quality.latency_summary([0.5, 0.6, 0.7])
    stopped = rules.latency("users", summary, 100.0, planned=200)
    assert not stopped.passed and "stopped after 3 of 200 queries" in stopped.description
    assert rules.latency("users", quality.latency_summary([0.001] * 20), 100.0, planned=20).passed
