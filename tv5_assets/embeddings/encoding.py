"""A loaded sentence-transformers model with the project's encoding rules.

Texts are sorted by length before batching (so each batch pads to similar lengths), encoded in
chunks so progress can be logged as texts/s, and returned as L2-normalised float32 in input order
(normalised after the cast, so fp16 runs still give norms within 1e-6 of 1).

Backends: torch (sentence-transformers, fp32 or fp16 on CUDA); openvino (the project's own offline
export, tv5_assets.embeddings.openvino_model: int8, the CPU default, or fp32); onnx
(sentence-transformers' backend, needs optimum-onnx, which does not install beside transformers 5).
`identity()` names everything that changes a vector (model, revision, backend, precision and
recipe, normalisation): it keys the embedding cache.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tv5_assets.core.settings import Settings
from tv5_assets.embeddings import openvino_model
from tv5_assets.embeddings.devices import (
    BACKENDS,
    choose_batch_size,
    choose_device,
    choose_runtime,
    detect_accelerators,
    requested_setting,
)
from tv5_assets.embeddings.model_source import (
    ModelSource,
    model_cache_dir,
    model_revision,
    requested_model,
    resolve_model,
)

PROGRESS_EVERY_S = 10.0
NORMALISATION = "l2"  # every vector is L2-normalised in float32 after encoding


@contextlib.contextmanager
def hub_offline(offline: bool) -> Iterator[None]:
    """HF_HUB_OFFLINE=1 while loading a local model; with local_files_only=True, nothing asks a hub."""
    if not offline:
        yield
        return
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class EncodeStats:
    texts: int = 0
    seconds: float = 0.0

    @property
    def texts_per_s(self) -> float:
        return self.texts / self.seconds if self.seconds else 0.0


@dataclass
class TextEncoder:
    """A model loaded once, plus where and how it runs; `encode` is the only way texts become vectors."""

    model: Any  # sentence_transformers.SentenceTransformer
    source: ModelSource
    device: str
    precision: str
    batch_size: int
    backend: str = "torch"
    revision: str = ""
    recipe: str = ""  # how a non-torch backend's model was produced (e.g. int8-wasym-perchannel-dq32)
    last: EncodeStats = field(default_factory=EncodeStats)

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def identity(self) -> dict[str, str]:
        """Everything that changes a vector: the embedding cache is keyed by it (batch size and device
        kind are left out: they change vectors by float rounding only, ~1e-6)."""
        return {"model": self.name, "revision": self.revision, "backend": self.backend,
                "precision": self.precision, "recipe": self.recipe or self.precision,
                "normalisation": NORMALISATION}

    def describe(self) -> dict[str, object]:
        """What a materialization records about the encoder."""
        return {"model": self.name, "dimension": self.dimension, "device": self.device,
                "precision": self.precision, "batch_size": self.batch_size, "backend": self.backend,
                "revision": self.revision, "recipe": self.recipe or self.precision, "normalisation": NORMALISATION}

    def encode(self, texts: Sequence[str], progress: Callable[[str], None] | None = None) -> np.ndarray:
        """(len(texts), dimension) float32, L2-normalised, in the order of `texts`."""
        started = time.perf_counter()
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")  # longest first: memory peaks early
        chunk = self.batch_size * 8
        last_report = started
        for begin in range(0, len(order), chunk):
            rows = order[begin:begin + chunk]
            vectors = self.model.encode([texts[i] for i in rows], batch_size=self.batch_size,
                                        convert_to_numpy=True, show_progress_bar=False)
            out[rows] = np.asarray(vectors, dtype=np.float32)
            now = time.perf_counter()
            done = begin + len(rows)
            if progress and (now - last_report >= PROGRESS_EVERY_S or done == len(order)):
                progress(f"encoded {done}/{len(texts)} texts, {done / (now - started):.0f} texts/s on {self.device}")
                last_report = now
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), np.float32(1e-12))
        self.last = EncodeStats(len(texts), time.perf_counter() - started)
        return out

    def close(self) -> None:
        """Free the model (and the GPU memory it holds)."""
        self.model = None
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()


def load_encoder(model: str = "", device: str = "auto", precision: str = "auto", batch_size: int = 0,
                 backend: str = "auto", allow_download: bool = False) -> TextEncoder:
    """Resolve the model (offline unless allowed), pick device, precision, backend and batch size, and load it.

    `precision`/`backend` 'auto' (or empty) defer to env TV5_ENCODER_PRECISION / TV5_ENCODER_BACKEND,
    then to the device: int8 on OpenVINO on the CPU, fp16 on CUDA, fp32 on torch otherwise."""
    settings = Settings()  # read now: a step process sees the run's environment
    requested_precision = requested_setting(precision, settings.tv5_encoder_precision)
    requested_backend = requested_setting(backend, settings.tv5_encoder_backend)
    if requested_backend not in BACKENDS:
        raise ValueError(f"unknown backend {requested_backend!r}: use one of {BACKENDS}")
    source = resolve_model(requested_model(model, settings.tv5_encoder_model), allow_download)
    chosen_device = choose_device(device, detect_accelerators())
    chosen_precision, chosen_backend = choose_runtime(requested_precision, requested_backend, chosen_device)
    revision = model_revision(source)
    chosen_batch = choose_batch_size(batch_size, chosen_device)
    if chosen_backend == "openvino":
        directory = openvino_export(source, revision, chosen_precision)
        return TextEncoder(openvino_model.OpenVinoSentenceModel(directory), source, chosen_device, chosen_precision,
                           chosen_batch, chosen_backend, revision, openvino_model.recipe(chosen_precision))
    st_model = load_sentence_transformer(source, chosen_device, chosen_backend)
    if chosen_precision == "fp16":
        st_model.half()
    st_model.eval()
    return TextEncoder(st_model, source, chosen_device, chosen_precision, chosen_batch, chosen_backend, revision)


def load_sentence_transformer(source: ModelSource, device: str, backend: str = "torch") -> Any:
    with hub_offline(source.offline):
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(source.location, device=device, backend=backend,
                                   local_files_only=source.offline)


def openvino_export(source: ModelSource, revision: str, precision: str) -> Path:
    """The model's OpenVINO export in the model cache, made now (offline, from the local model) if missing."""
    from tv5_assets.embeddings.cache import model_slug

    directory = model_cache_dir() / openvino_model.export_name(model_slug(source.name), revision, precision)
    if not openvino_model.is_exported(directory):
        st_model = load_sentence_transformer(source, "cpu")
        openvino_model.export_model(st_model, precision, directory,
                                    {"model": source.name, "revision": revision, "source": source.location})
        del st_model
    return directory
