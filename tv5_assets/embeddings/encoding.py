"""A loaded sentence-transformers model with the project's encoding rules.

Texts are sorted by length before batching (so each batch pads to similar lengths), encoded in
chunks so progress can be logged as texts/s, and returned as L2-normalised float32 in input order
(normalised after the cast, so fp16 runs still give norms within 1e-6 of 1).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tv5_assets.embeddings.devices import choose_batch_size, choose_device, choose_precision, detect_accelerators
from tv5_assets.embeddings.model_source import ModelSource, requested_model, resolve_model

BACKENDS = ("torch", "onnx", "openvino")
PROGRESS_EVERY_S = 10.0


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
    last: EncodeStats = field(default_factory=EncodeStats)

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def describe(self) -> dict[str, object]:
        """What a materialization records about the encoder."""
        return {"model": self.name, "dimension": self.dimension, "device": self.device,
                "precision": self.precision, "batch_size": self.batch_size, "backend": self.backend}

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
                 backend: str = "torch", allow_download: bool = False) -> TextEncoder:
    """Resolve the model (offline unless allowed), pick device, precision and batch size, and load it."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: use one of {BACKENDS}")
    source = resolve_model(requested_model(model), allow_download)
    chosen_device = choose_device(device, detect_accelerators())
    chosen_precision = choose_precision(precision, chosen_device)
    if backend != "torch" and chosen_precision == "fp16":
        chosen_precision = "fp32"  # ONNX/OpenVINO exports run at their own precision
    with hub_offline(source.offline):
        from sentence_transformers import SentenceTransformer

        st_model = SentenceTransformer(source.location, device=chosen_device, backend=backend,
                                       local_files_only=source.offline)
    if chosen_precision == "fp16":
        st_model.half()
    st_model.eval()
    return TextEncoder(st_model, source, chosen_device, chosen_precision,
                       choose_batch_size(batch_size, chosen_device), backend)
