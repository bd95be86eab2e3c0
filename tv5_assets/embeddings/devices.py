"""Where the encoder runs and at which precision: pure decisions, testable without a GPU.

`auto` prefers CUDA, then Apple MPS, then the CPU. Half precision is used only on CUDA, where
tensor cores make it about twice as fast for the same vectors (to ~1e-3); CPU kernels for fp16
are slow or missing, and MPS fp16 gains little for a model this small.
"""

from __future__ import annotations

from dataclasses import dataclass

DEVICE_KINDS = ("cuda", "mps", "cpu")
PRECISIONS = ("auto", "fp16", "fp32")
# CPU: the best batch of benchmarks/encoder_throughput.py on the 2-core machine (128; 256 was no faster).
# CUDA and MPS: not measured yet (no GPU was available); large batches keep a GPU busy.
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


def choose_precision(requested: str, device: str) -> str:
    """`auto` -> fp16 on CUDA, fp32 elsewhere; fp16 forced on a non-CUDA device is refused."""
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}: use one of {PRECISIONS}")
    on_cuda = device.startswith("cuda")
    if requested == "auto":
        return "fp16" if on_cuda else "fp32"
    if requested == "fp16" and not on_cuda:
        raise DeviceUnavailableError(f"fp16 is only supported on CUDA here, not on {device!r}: use precision='fp32'")
    return requested


def choose_batch_size(requested: int, device: str) -> int:
    """A positive `requested` wins; 0 means the default for the device kind."""
    if requested < 0:
        raise ValueError(f"batch_size must be positive (or 0 for the device default), got {requested}")
    return requested or DEFAULT_BATCH_SIZE[device.split(":", 1)[0]]
