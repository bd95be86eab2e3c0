"""The OpenVINO encoder: the sentence-transformers model exported once, offline, and run on the CPU.

Export (once per model revision, precision, recipe and OpenVINO/NNCF release, into the model cache
of tv5_assets.embeddings.model_source.model_cache_dir): the locally loaded SentenceTransformer
(transformer, pooling and normalisation together) is converted from torch by
`openvino.convert_model`; nothing is downloaded. For int8, NNCF compresses the weights of every
linear layer to int8 (asymmetric, one scale and zero point per output channel) and the CPU plugin
quantizes each token's activations on the fly per group of 64 values
(DYNAMIC_QUANTIZATION_GROUP_SIZE=64: ~20 % faster than 32 for cosine min 0.998 instead of 0.9987
on ml-latest-small; 128 dropped top-10 overlap to 93.7 %), so the matmuls run int8 x int8 (VNNI) with no calibration
data, and a text's vector does not depend on the other texts of its batch.

Why this int8 and not ONNX Runtime's dynamic quantization (measured on ml-latest-small, see
docs/encoder.md): ORT quantizes activations per tensor, i.e. per batch, which gave cosine to fp32
down to 0.93 (0.985 with per-channel weights) and vectors that change with their batch mates;
sentence-transformers' own `backend="onnx"` / `"openvino"` exporters need optimum-onnx or
optimum-intel, which pin transformers < 5 / < 5.6 (the project runs transformers 5.2x).

The export is written to a temporary directory and renamed into place, so concurrent first runs
cost a second export at worst, never a half-written model.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

EXPORT_FORMAT = 1  # bump when the export recipe below changes
DYNAMIC_QUANTIZATION_GROUP_SIZE = 64  # a compile setting: part of the vectors' recipe, not of the export
INT8_WEIGHTS = "int8-wasym-perchannel"
INT8_RECIPE = f"{INT8_WEIGHTS}-dq{DYNAMIC_QUANTIZATION_GROUP_SIZE}"
FP32_RECIPE = "fp32"
MODEL_FILE = "model.xml"
MANIFEST_FILE = "export.json"
TOKENIZER_DIR = "tokenizer"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def recipe(precision: str) -> str:
    if precision not in ("int8", "fp32"):
        raise ValueError(f"the openvino backend runs int8 or fp32, not {precision!r}")
    return INT8_RECIPE if precision == "int8" else FP32_RECIPE


def toolchain() -> str:
    """The releases that produce the export (part of its directory name: a new release exports anew)."""
    return f"ov{version('openvino')}-nncf{version('nncf')}"


def export_name(model_slug: str, revision: str, precision: str) -> str:
    weights = INT8_WEIGHTS if recipe(precision) == INT8_RECIPE else FP32_RECIPE
    return f"{model_slug}-{revision}-openvino-{weights}-{toolchain()}-v{EXPORT_FORMAT}"


def is_exported(directory: Path) -> bool:
    return (directory / MODEL_FILE).exists() and (directory / MANIFEST_FILE).exists()


def export_model(st_model: Any, precision: str, target: Path, describe: dict[str, object]) -> Path:
    """Convert a loaded SentenceTransformer (on the CPU) into OpenVINO IR at `target` (int8 or fp32)."""
    import openvino as ov
    import torch

    names = [name for name in _INPUTS if name in st_model.tokenizer.model_input_names]

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
            features = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                features["token_type_ids"] = token_type_ids
            return self.model(features)["sentence_embedding"]

    # two texts of different lengths: the traced graph keeps the attention mask (padding) path
    example = st_model.tokenizer(["a short text", "a somewhat longer text, to pad the first one"], padding=True,
                                 return_tensors="pt")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape branches traced with a padded batch
        warnings.simplefilter("ignore", FutureWarning)  # convert_model traces with torch.jit.trace (deprecated)
        ov_model = ov.convert_model(SentenceEmbedding(st_model.eval()),
                                    example_input={name: example[name] for name in names})
    if precision == "int8":
        import nncf

        nncf.set_log_level(logging.WARNING)  # not its per-layer bit-width table
        ov_model = nncf.compress_weights(ov_model, mode=nncf.CompressWeightsMode.INT8_ASYM)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        ov.save_model(ov_model, staging / MODEL_FILE, compress_to_fp16=False)
        st_model.tokenizer.save_pretrained(staging / TOKENIZER_DIR)
        manifest = {**describe, "precision": precision, "weights": INT8_WEIGHTS if precision == "int8" else FP32_RECIPE,
                    "toolchain": toolchain(),
                    "export_format": EXPORT_FORMAT, "inputs": names,
                    "max_seq_length": int(st_model.max_seq_length)}
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        try:
            os.rename(staging, target)
        except OSError:
            if not is_exported(target):  # not a concurrent export that won the race
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


class OpenVinoSentenceModel:
    """An exported model compiled for the CPU; `encode` mirrors SentenceTransformer.encode's result
    (pooled, normalised sentence embeddings) for plain texts."""

    def __init__(self, directory: Path) -> None:
        import openvino as ov
        from transformers import AutoTokenizer

        self.directory = directory
        self.manifest = json.loads((directory / MANIFEST_FILE).read_text())
        config = {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_PRECISION_HINT": "f32"}
        if self.manifest["precision"] == "int8":
            config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = DYNAMIC_QUANTIZATION_GROUP_SIZE
        self.compiled = ov.Core().compile_model(str(directory / MODEL_FILE), "CPU", config)
        self.requests = max(1, int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self.queue = ov.AsyncInferQueue(self.compiled, self.requests)
        self.tokenizer = AutoTokenizer.from_pretrained(str(directory / TOKENIZER_DIR), local_files_only=True)
        self.inputs = [port.get_any_name() for port in self.compiled.inputs]
        self.max_seq_length = int(self.manifest["max_seq_length"])

    def get_embedding_dimension(self) -> int:
        return int(self.compiled.outputs[0].get_partial_shape()[1].get_length())

    def encode(self, texts: list[str], batch_size: int = 128, **_: object) -> np.ndarray:
        """(len(texts), dimension) float32: batches tokenized here while earlier ones run in parallel requests."""
        out = np.empty((len(texts), self.get_embedding_dimension()), dtype=np.float32)
        failures: list[BaseException] = []

        def done(request: Any, rows: tuple[int, int]) -> None:
            try:
                out[rows[0]:rows[1]] = request.get_output_tensor(0).data
            except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread below
                failures.append(error)

        self.queue.set_callback(done)
        for begin in range(0, len(texts), batch_size):
            batch = list(texts[begin:begin + batch_size])
            tokens = self.tokenizer(batch, padding=True, truncation="longest_first", max_length=self.max_seq_length,
                                    return_tensors="np")
            self.queue.start_async({name: tokens[name].astype(np.int64) for name in self.inputs},
                                   (begin, begin + len(batch)))
        self.queue.wait_all()
        if failures:
            raise failures[0]
        return out
