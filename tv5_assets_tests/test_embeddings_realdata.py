"""The embeddings stage on real MovieLens ml-latest-small: semantic checks pass, and fail on random vectors.

The only test module that encodes a whole real catalogue (9,742 texts, about a minute on 2 CPU
cores): the module fixture materializes once and every test reads its results.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from tv5_assets.embeddings import rules
from tv5_assets.embeddings.cache import vector_column
from tv5_assets_tests.harness import check_results, materialize, release_config
from tv5_assets_tests.test_embeddings_assets import data_version, failed_checks, metadata

pytestmark = [pytest.mark.realdata, pytest.mark.extended]


@pytest.fixture(scope="module")
def real_run(ml_latest_small: Path, tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("real-lake")
    instance = dg.DagsterInstance.ephemeral()
    assert materialize("group:movielens", base, release_config(source=str(ml_latest_small)), instance=instance).success
    result = materialize("group:embeddings", base, instance=instance)
    return base, instance, result


def test_real_catalogue_materializes_with_every_check_green(real_run) -> None:
    base, _, result = real_run
    assert result.success and failed_checks(result) == {}
    meta = metadata(result, "content_vectors")
    assert (meta["texts"], meta["texts_encoded"], meta["texts_reused"]) == (9_742, 9_742, 0)
    assert metadata(result, "user_vectors")["users"] == 610
    toy_story = check_results(result)[("content_vectors", "toy_story_2_near_toy_story")]
    assert toy_story.passed and toy_story.metadata["applicable"].value is True
    assert "is neighbour #" in toy_story.description
    coherence = check_results(result)[("content_vectors", "genre_coherence")].metadata
    assert coherence["genre_coherence"].value > 0.8 and coherence["lift"].value > 0.6
    text = pl.read_parquet(base / "content_vectors.parquet").filter(pl.col("movie_id") == 1)["text"][0]
    assert text == "Toy Story (1995). Genres: Adventure, Animation, Children, Comedy, Fantasy."


def test_rerun_on_unchanged_release_encodes_nothing(real_run) -> None:
    base, instance, first = real_run
    second = materialize("content_vectors", base, instance=instance)
    meta = metadata(second, "content_vectors")
    assert (meta["texts_encoded"], meta["texts_reused"]) == (0, 9_742)
    assert data_version(second, "content_vectors") == data_version(first, "content_vectors")


def test_semantic_rules_fail_on_random_vectors(real_run) -> None:
    base, _, _ = real_run
    movies = pl.read_parquet(base / "movies.parquet")
    content = pl.read_parquet(base / "content_vectors.parquet")
    noise = np.random.default_rng(0).standard_normal((content.height, 384)).astype(np.float32)
    random = content.with_columns(vector_column(noise / np.linalg.norm(noise, axis=1, keepdims=True)))
    neighbour = rules.neighbour_in_top_k(random, movies, "Toy Story (1995)", "Toy Story 2 (1999)")
    assert not neighbour.passed and "is not among the 10 nearest neighbours" in neighbour.description
    coherence = rules.genre_coherent(random, movies)
    assert not coherence.passed and "below the floor" in coherence.description
    assert abs(coherence.metadata["lift"]) < 0.1
