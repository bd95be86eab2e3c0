"""The int8 CPU default (OpenVINO, exported offline from the packaged model) and the fp32 path beside it.

The export into the model cache happens once per machine (about 15-30 s on 2 cores); the tests that
need a second export write it into a temporary cache.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from tv5_assets.core.settings import Settings
from tv5_assets.embeddings import openvino_model
from tv5_assets.embeddings.agreement import agreement
from tv5_assets.embeddings.cache import cache_path
from tv5_assets.embeddings.devices import DeviceUnavailableError, choose_backend, choose_runtime, requested_setting
from tv5_assets.embeddings.encoding import load_encoder, openvino_export
from tv5_assets.embeddings.model_source import OFFLINE_MODEL, model_cache_dir, model_revision, resolve_model
from tv5_assets.embeddings.resources import EncoderResource

TEXTS = ["Toy Story 2 (1999). Genres: Adventure, Animation, Children, Comedy, Fantasy.",
         "Toy Story (1995). Genres: Adventure, Animation, Children, Comedy, Fantasy.",
         "Schindler's List (1993). Genres: Drama, War. Tags: holocaust, history, true story, world war ii.",
         "Heat", "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001). Genres: Comedy, Romance."]


@pytest.fixture(scope="module")
def int8():
    return load_encoder(OFFLINE_MODEL, device="cpu")


@pytest.fixture(scope="module")
def fp32():
    return load_encoder(OFFLINE_MODEL, device="cpu", precision="fp32")


def test_runtime_choice() -> None:
    assert choose_runtime("auto", "auto", "cpu") == ("int8", "openvino")
    assert choose_runtime("fp32", "auto", "cpu") == ("fp32", "torch")
    assert choose_runtime("auto", "torch", "cpu") == ("fp32", "torch")  # a forced torch backend: its fp32
    assert choose_runtime("fp32", "openvino", "cpu") == ("fp32", "openvino")
    assert choose_runtime("auto", "auto", "cuda") == ("fp16", "torch")
    assert choose_runtime("auto", "onnx", "cuda") == ("fp32", "onnx")
    assert choose_runtime("auto", "auto", "mps") == ("fp32", "torch")
    with pytest.raises(ValueError, match="int8 is produced by the openvino backend"):
        choose_runtime("int8", "torch", "cpu")
    with pytest.raises(DeviceUnavailableError, match="openvino backend runs on the CPU"):
        choose_backend("openvino", "fp32", "cuda")
    with pytest.raises(ValueError, match="unknown backend"):
        choose_backend("tensorrt", "fp32", "cpu")


def test_precision_and_backend_from_the_environment() -> None:
    assert requested_setting("", Settings().tv5_encoder_precision) == "auto"
    assert requested_setting("auto", Settings(tv5_encoder_precision="FP32").tv5_encoder_precision) == "fp32"
    assert requested_setting("int8", "fp32") == "int8"


def test_model_cache_dir_setting(tmp_path: Path) -> None:
    assert model_cache_dir(Settings(tv5_model_cache=str(tmp_path))) == tmp_path
    assert model_cache_dir(Settings(tv5_model_cache="", xdg_cache_home=str(tmp_path))) == tmp_path / "tv5-assets" / "models"


def test_int8_is_the_cpu_default_and_says_so(int8, fp32) -> None:
    described = int8.describe()
    assert (described["backend"], described["precision"], described["recipe"]) == \
        ("openvino", "int8", openvino_model.INT8_RECIPE)
    assert described["revision"] == model_revision(resolve_model(OFFLINE_MODEL)) and described["dimension"] == 384
    assert (fp32.describe()["backend"], fp32.describe()["precision"]) == ("torch", "fp32")
    # the two never share an embedding cache file
    assert int8.identity() != fp32.identity()
    assert cache_path(Path("/lake"), int8.identity()) != cache_path(Path("/lake"), fp32.identity())


def test_fp32_stays_selectable_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TV5_ENCODER_PRECISION", "fp32")
    with dg.build_resources({"encoder": EncoderResource(device="cpu")}) as resources:
        assert resources.encoder.encoder.describe()["precision"] == "fp32"
        assert resources.encoder.encoder.describe()["backend"] == "torch"


def test_int8_vectors_match_fp32_and_do_not_depend_on_their_batch(int8, fp32) -> None:
    vectors = int8.encode(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.sum(vectors * fp32.encode(TEXTS), axis=1).min() >= 0.99
    assert np.array_equal(int8.encode(TEXTS), vectors)  # deterministic
    alone = np.vstack([int8.encode([text]) for text in TEXTS])
    np.testing.assert_allclose(alone, vectors, atol=1e-5)  # per-token quantization: batch mates do not matter
    assert vectors[1] @ vectors[0] > vectors[1] @ vectors[2]


def test_openvino_fp32_reproduces_torch(fp32) -> None:
    ov32 = load_encoder(OFFLINE_MODEL, device="cpu", precision="fp32", backend="openvino")
    assert ov32.describe()["recipe"] == "fp32"
    assert np.sum(ov32.encode(TEXTS) * fp32.encode(TEXTS), axis=1).min() > 0.99999


def _digest(directory: Path) -> str:
    return hashlib.sha256((directory / "model.bin").read_bytes()).hexdigest()


def test_export_is_offline_deterministic_and_reused(int8, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = resolve_model(OFFLINE_MODEL)
    revision = model_revision(source)
    shared = openvino_export(source, revision, "int8")  # the one the `int8` fixture loaded
    assert shared.parent == model_cache_dir() and openvino_model.is_exported(shared)
    monkeypatch.setenv("TV5_MODEL_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fresh = openvino_export(source, revision, "int8")
    assert fresh.parent == tmp_path and _digest(fresh) == _digest(shared)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging directory left

    def no_export(*_args, **_kwargs):
        raise AssertionError("exported again although the cache holds the export")

    monkeypatch.setattr(openvino_model, "export_model", no_export)
    assert load_encoder(OFFLINE_MODEL, device="cpu").describe()["precision"] == "int8"


@pytest.mark.realdata
@pytest.mark.extended
def test_int8_quality_on_ml_latest_small(ml_latest_small: Path, int8, fp32) -> None:
    """Every 4th movie of the real catalogue (2,436 texts): cosine >= 0.99 to fp32 for each text."""
    from tv5_assets.embeddings.texts import movie_texts
    from tv5_assets.ingestion.movielens import parse_movies

    movies = parse_movies(ml_latest_small / "movies.csv", ml_latest_small / "links.csv").kept
    genome = pl.DataFrame(schema={"movie_id": pl.Int32, "tag_id": pl.Int32, "tag": pl.String,
                                  "relevance": pl.Float32, "rank": pl.Int32})
    texts = movie_texts(movies, genome)["text"].to_list()[::4]
    result = agreement(fp32.encode(texts), int8.encode(texts))
    assert result.cosine_min >= 0.99 and result.below == 0, str(result)
    assert result.overlap >= 0.9, str(result)
