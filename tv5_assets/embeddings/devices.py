"""Where the encoder runs, at which precision and on which backend: pure decisions, testable without a GPU.

`auto` prefers CUDA, then Apple MPS, then the CPU. Precision `auto` (unless env
TV5_ENCODER_PRECISION says otherwise) is fp16 on CUDA, where tensor cores make it about twice as
fast for the same vectors (to ~1e-3); int8 on the CPU (OpenVINO, int8 weights and int8 activations
quantized per 64 values of each token: ~2.5-4x torch fp32 on 2 cores, cosine >= 0.998 to fp32,
see docs/encoder.md); fp32 on MPS. fp32 stays selectable everywhere (`precision='fp32'` or
TV5_ENCODER_PRECISION=fp32). Backend `auto` is openvino for int8 and torch otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

DEVICE_KINDS = ("cuda", "mps", "cpu")
PRECISIONS = ("auto", "fp16", "fp32", "int8")
BACKENDS = ("auto", "torch", "onnx", "openvino")
# CPU: the best batch of benchmarks/encoder_throughput.py on the 2-core machine (128; 256 was no faster).
# CUDA and MPS: not measured yet (no GPU was available); large batches keep a GPU busy. The openvino
# backend sends batches of this size to its parallel inference requests (2 on the 2-core machine).
DEFAULT_BATCH_SIZE = {"cuda": 512, "mps": 128, "cpu": 128}


class DeviceUnavailableError(RuntimeError):
    """A forced device (or precision) that this machine cannot provide."""


@dataclass(frozen=True)
class Accelerators:
    """What torch can see on this machine."""

    cuda: bool
    mps: bool


def detect_accelerators() -> Accelerators:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return Accelerators(cuda=torch.cuda.is_available(), mps=bool(mps is not None and mps.is_available()))


def choose_device(requested: str, available: Accelerators) -> str:
    """`auto` -> cuda, else mps, else cpu; a forced device ('cuda', 'cuda:1', 'mps', 'cpu') must exist."""
    if requested == "auto":
        return "cuda" if available.cuda else "mps" if available.mps else "cpu"
    kind = requested.split(":", 1)[0]
    if kind not in DEVICE_KINDS:
        raise ValueError(f"unknown device {requested!r}: use 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N'")
    if kind == "cuda" and not available.cuda:
        raise DeviceUnavailableError(
            f"device {requested!r} was requested but torch sees no CUDA GPU (torch.cuda.is_available() is "
            "False: no GPU, or a CPU-only torch build); use device='auto' or 'cpu'"
        )
    if kind == "mps" and not available.mps:
        raise DeviceUnavailableError(f"device {requested!r} was requested but Apple MPS is not available here")
    return requested


def requested_setting(configured: str, from_environment: str) -> str:
    """The resource's setting unless it is `auto`/empty, else the environment's (`Settings`), else `auto`."""
    configured = configured.strip().lower()
    if configured and configured != "auto":
        return configured
    return from_environment.strip().lower() or "auto"


def choose_precision(requested: str, device: str) -> str:
    """`auto` -> fp16 on CUDA, int8 on the CPU, fp32 on MPS; fp16 off CUDA and int8 off the CPU are refused."""
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}: use one of {PRECISIONS}")
    on_cuda = device.startswith("cuda")
    if requested == "auto":
        return "fp16" if on_cuda else "int8" if device == "cpu" else "fp32"
    if requested == "fp16" and not on_cuda:
        raise DeviceUnavailableError(f"fp16 is only supported on CUDA here, not on {device!r}: use precision='fp32'")
    if requested == "int8" and device != "cpu":
        raise DeviceUnavailableError(f"int8 runs on the CPU (OpenVINO) only, not on {device!r}: use precision='fp32' "
                                     "or 'auto'")
    return requested


def choose_backend(requested: str, precision: str, device: str) -> str:
    """`auto` -> openvino for int8, torch otherwise; int8 needs openvino, openvino needs the CPU."""
    if requested not in BACKENDS:
        raise ValueError(f"unknown backend {requested!r}: use one of {BACKENDS}")
    if requested == "auto":
        return "openvino" if precision == "int8" else "torch"
    if precision == "int8" and requested != "openvino":
        raise ValueError(f"int8 is produced by the openvino backend, not {requested!r}: use backend='auto' or "
                         "'openvino', or precision='fp32'")
    if requested == "openvino" and device != "cpu":
        raise DeviceUnavailableError(f"the openvino backend runs on the CPU here, not on {device!r}")
    if precision == "fp16" and requested != "torch":
        raise ValueError(f"fp16 is a torch precision, not one of backend {requested!r}")
    return requested


def choose_batch_size(requested: int, device: str) -> int:
    """A positive `requested` wins; 0 means the default for the device kind."""
    if requested < 0:
        raise ValueError(f"batch_size must be positive (or 0 for the device default), got {requested}")
    return requested or DEFAULT_BATCH_SIZE[device.split(":", 1)[0]]


def choose_runtime(precision: str, backend: str, device: str) -> tuple[str, str]:
    """(precision, backend) together: an `auto` precision fits a forced backend (torch or onnx on the CPU:
    fp32; openvino on CUDA is refused by choose_backend); an `auto` backend fits the precision."""
    chosen = choose_precision(precision, device)
    if precision == "auto" and backend not in ("auto", "openvino") and chosen == "int8":
        chosen = "fp32"
    if precision == "auto" and backend in ("onnx", "openvino") and chosen == "fp16":
        chosen = "fp32"  # ONNX/OpenVINO exports run at their own precision
    return chosen, choose_backend(backend, chosen, device)
