"""The text encoder: a sentence-transformers model loaded once per step, on the best device available.

Which model (see tv5_assets.embeddings.model_source): `model` if set, else env TV5_ENCODER_MODEL,
else the packaged offline all-MiniLM-L6-v2. Production sets TV5_ENCODER_MODEL to
paraphrase-multilingual-MiniLM-L12-v2 and provides its weights (local directory or Hugging Face
cache), or sets allow_download=true; nothing reaches a hub otherwise.

How (see tv5_assets.embeddings.devices and docs/encoder.md): on the CPU the default is int8 on
OpenVINO (exported once, offline, from the local model into the model cache, env TV5_MODEL_CACHE);
`precision='fp32'` or env TV5_ENCODER_PRECISION=fp32 selects the fp32 torch path. fp16 on CUDA.
`describe()` records model, revision, backend, precision and recipe with every materialization.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field, PrivateAttr

from tv5_assets.embeddings.encoding import TextEncoder, load_encoder


class EncoderResource(dg.ConfigurableResource):
    """Loads the model in `setup_for_execution` (once per step process) and frees it at teardown."""

    model: str = Field(
        default="",
        description="model name (e.g. paraphrase-multilingual-MiniLM-L12-v2) or local directory; empty: env "
        "TV5_ENCODER_MODEL, else the packaged offline all-MiniLM-L6-v2",
    )
    device: str = Field(default="auto", description="auto (cuda, then mps, then cpu), cpu, mps, cuda or cuda:N")
    precision: str = Field(
        default="auto",
        description="auto (env TV5_ENCODER_PRECISION, else int8 on the CPU, fp16 on CUDA, fp32 on MPS), int8, fp16 "
        "or fp32",
    )
    batch_size: int = Field(default=0, description="texts per batch; 0: the device default (cpu 128, mps 128, cuda 512)")
    backend: str = Field(
        default="auto",
        description="auto (env TV5_ENCODER_BACKEND, else openvino for int8, torch otherwise), torch, openvino (the "
        "project's offline OpenVINO export, int8 or fp32) or onnx (sentence-transformers' backend, needs optimum-onnx)",
    )
    allow_download: bool = Field(default=False, description="let sentence-transformers fetch the model from the hub")

    _encoder: TextEncoder | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._encoder = load_encoder(self.model, self.device, self.precision, self.batch_size, self.backend,
                                     self.allow_download)
        if context.log is not None:
            context.log.info(f"encoder loaded: {self._encoder.describe()}")

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._encoder is not None:
            self._encoder.close()
            self._encoder = None

    @property
    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            raise RuntimeError("EncoderResource is not set up: it loads its model in setup_for_execution "
                               "(Dagster does this for each step that uses it)")
        return self._encoder

    @property
    def model_name(self) -> str:
        return self.encoder.name

    @property
    def dimension(self) -> int:
        return self.encoder.dimension

    @property
    def active_device(self) -> str:
        """The device actually used ('cuda', 'mps' or 'cpu'), whatever `device` asked for."""
        return self.encoder.device
