"""The encoder: device/precision/batch decisions (no GPU needed), offline model resolution, real encoding."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from tv5_assets.core.settings import Settings
from tv5_assets.embeddings.devices import (
    Accelerators,
    DeviceUnavailableError,
    choose_batch_size,
    choose_device,
    choose_precision,
    detect_accelerators,
)
from tv5_assets.embeddings.encoding import hub_offline, load_encoder
from tv5_assets.embeddings.model_source import (
    OFFLINE_MODEL,
    PRODUCTION_MODEL,
    ModelUnavailableError,
    packaged_model_dir,
    requested_model,
    resolve_model,
)
from tv5_assets.embeddings.preloading import PreloadingEncoderResource
from tv5_assets.embeddings.resources import EncoderResource

NONE, CUDA, MPS, BOTH = Accelerators(False, False), Accelerators(True, False), Accelerators(False, True), \
    Accelerators(True, True)


@pytest.mark.parametrize(("available", "expected"), [(BOTH, "cuda"), (CUDA, "cuda"), (MPS, "mps"), (NONE, "cpu")])
def test_auto_device_prefers_cuda_then_mps_then_cpu(available: Accelerators, expected: str) -> None:
    assert choose_device("auto", available) == expected


def test_forced_devices_are_kept_when_present_and_refused_when_absent() -> None:
    assert choose_device("cpu", BOTH) == "cpu"
    assert choose_device("cuda:1", CUDA) == "cuda:1"
    assert choose_device("mps", MPS) == "mps"
    with pytest.raises(DeviceUnavailableError, match="torch sees no CUDA GPU"):
        choose_device("cuda", MPS)
    with pytest.raises(DeviceUnavailableError, match="MPS is not available"):
        choose_device("mps", CUDA)
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        choose_device("tpu", BOTH)


def test_half_precision_only_on_cuda_and_int8_by_default_on_the_cpu() -> None:
    assert choose_precision("auto", "cuda") == "fp16"
    assert choose_precision("auto", "cuda:0") == "fp16"
    assert choose_precision("auto", "cpu") == "int8"
    assert choose_precision("fp32", "cpu") == "fp32"
    assert choose_precision("auto", "mps") == "fp32"
    with pytest.raises(DeviceUnavailableError, match="int8 runs on the CPU"):
        choose_precision("int8", "cuda")
    assert choose_precision("fp32", "cuda") == "fp32"
    with pytest.raises(DeviceUnavailableError, match="fp16 is only supported on CUDA"):
        choose_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="unknown precision"):
        choose_precision("bf8", "cuda")


def test_batch_size_per_device_unless_overridden() -> None:
    assert choose_batch_size(0, "cpu") < choose_batch_size(0, "cuda:0")
    assert choose_batch_size(0, "mps") > 0
    assert choose_batch_size(17, "cuda") == 17
    with pytest.raises(ValueError, match="batch_size must be positive"):
        choose_batch_size(-1, "cpu")


def test_model_selection_config_then_env_then_offline_default() -> None:
    assert requested_model("", "") == OFFLINE_MODEL
    assert requested_model("", Settings(tv5_encoder_model=PRODUCTION_MODEL).tv5_encoder_model) == PRODUCTION_MODEL
    assert requested_model("/models/x", PRODUCTION_MODEL) == "/models/x"


def test_offline_default_resolves_to_the_packaged_copy() -> None:
    source = resolve_model(OFFLINE_MODEL)
    assert source.offline and Path(source.location) == packaged_model_dir()
    assert resolve_model("all-MiniLM-L6-v2") == source  # bare names are sentence-transformers models
    local = resolve_model(str(packaged_model_dir()))
    assert local.offline and local.name == local.location == str(packaged_model_dir().resolve())


@pytest.fixture
def empty_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_a_model_not_on_this_machine_fails_saying_how_to_provide_it(empty_hub_cache: Path) -> None:
    with pytest.raises(ModelUnavailableError) as error:
        resolve_model("paraphrase-multilingual-MiniLM-L12-v2")
    message = str(error.value)
    assert "not available offline" in message and "local directory" in message
    assert "allow_download=true" in message and "hf download sentence-transformers/paraphrase" in message
    with pytest.raises(ModelUnavailableError, match="no model directory at './no/such/model'"):
        resolve_model("./no/such/model")
    # only an explicit allow_download hands a hub id to sentence-transformers
    allowed = resolve_model("paraphrase-multilingual-MiniLM-L12-v2", allow_download=True)
    assert (allowed.location, allowed.offline) == (PRODUCTION_MODEL, False)


def test_a_model_in_the_hugging_face_cache_loads_offline(empty_hub_cache: Path) -> None:
    """The production route without network: weights placed in the HF cache, found by name."""
    snapshot = empty_hub_cache / "models--acme--tiny-minilm" / "snapshots" / "0123abcd"
    shutil.copytree(packaged_model_dir(), snapshot, copy_function=os.symlink)  # as the HF cache does
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0123abcd")
    source = resolve_model("acme/tiny-minilm")
    assert (source.name, Path(source.location), source.offline) == ("acme/tiny-minilm", snapshot, True)
    encoder = load_encoder("acme/tiny-minilm", device="cpu")
    assert encoder.name == "acme/tiny-minilm" and encoder.dimension == 384


def test_hub_offline_sets_and_restores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with hub_offline(True):
        assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert "HF_HUB_OFFLINE" not in os.environ


def test_resource_exposes_model_dimension_device_and_keeps_input_order() -> None:
    with dg.build_resources({"encoder": EncoderResource(device="auto")}) as resources:
        encoder: EncoderResource = resources.encoder
        assert encoder.model_name == OFFLINE_MODEL and encoder.dimension == 384
        expected_device = choose_device("auto", detect_accelerators())
        assert encoder.active_device == expected_device
        assert encoder.encoder.describe()["precision"] == choose_precision("auto", expected_device)
        texts = ["Toy Story 2 (1999). Genres: Adventure, Animation, Children, Comedy, Fantasy.",
                 "Toy Story (1995). Genres: Adventure, Animation, Children, Comedy, Fantasy.",
                 "Schindler's List (1993). Genres: Drama, War.", "Heat"]
        progress: list[str] = []
        vectors = encoder.encoder.encode(texts, progress=progress.append)
        assert vectors.dtype == np.float32 and vectors.shape == (4, 384)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        # input order is kept although texts are encoded longest first
        one_by_one = np.vstack([encoder.encoder.encode([t]) for t in texts])
        np.testing.assert_allclose(vectors, one_by_one, atol=1e-4)
        assert vectors[1] @ vectors[0] > vectors[1] @ vectors[2]
        assert progress and "texts/s" in progress[-1]


def test_resource_refuses_a_missing_device_and_use_before_setup() -> None:
    with pytest.raises(RuntimeError, match="not set up"):
        _ = EncoderResource().dimension
    if detect_accelerators().cuda:
        pytest.skip("this machine has a CUDA GPU: forcing cuda is legitimate here")
    with pytest.raises(dg.DagsterResourceFunctionError) as error:
        with dg.build_resources({"encoder": EncoderResource(device="cuda")}):
            pass
    assert isinstance(error.value.user_exception, DeviceUnavailableError)
    assert "torch sees no CUDA GPU" in str(error.value.user_exception)


def test_preloading_resource_encodes_as_the_base_and_raises_a_failed_load_at_first_use() -> None:
    """The runs' resource (`PreloadingEncoderResource`) loads in a thread from setup on: the same model, the same
    vectors as `EncoderResource`; a load that fails fails the first use, with the load's own error."""
    texts = ["Heat (1995). Genres: Action, Crime, Thriller.", "Toy Story (1995). Genres: Animation."]
    with dg.build_resources({"base": EncoderResource(device="cpu"),
                             "preloaded": PreloadingEncoderResource(device="cpu")}) as resources:
        assert resources.preloaded.encoder.describe() == resources.base.encoder.describe()
        assert np.array_equal(resources.preloaded.encoder.encode(texts), resources.base.encoder.encode(texts))
    with pytest.raises(RuntimeError, match="not set up"):
        _ = PreloadingEncoderResource().dimension
    if detect_accelerators().cuda:
        return  # forcing cuda is legitimate on this machine
    with dg.build_resources({"encoder": PreloadingEncoderResource(device="cuda")}) as resources:  # setup returns
        with pytest.raises(DeviceUnavailableError, match="torch sees no CUDA GPU"):
            _ = resources.encoder.dimension
