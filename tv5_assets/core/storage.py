"""Parquet storage for polars frames: atomic writes and content hashes.

Every stage writes through `write_parquet_atomic`, so a crash mid-write leaves the previous
good file in place (the new file is written beside it and renamed over it in one step).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import polars as pl


def write_parquet_atomic(frame: pl.DataFrame | pl.LazyFrame, path: Path) -> Path:
    """Write `frame` to `path` through a temporary file renamed into place.

    A LazyFrame is streamed with `sink_parquet`, so large results never need to fit in memory.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if isinstance(frame, pl.LazyFrame):
            frame.sink_parquet(tmp, compression="zstd")
        else:
            frame.write_parquet(tmp, compression="zstd", statistics=True)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def file_sha256(path: Path, chunk_size: int = 8 << 20) -> str:
    """Hex sha256 of a file, read in chunks (release CSVs can be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def frame_fingerprint(frame: pl.DataFrame) -> str:
    """A content hash of a frame, independent of how it was chunked or compressed.

    Used as the Dagster data version: identical data gives the identical version, so children
    stay fresh when an asset is rebuilt without change.
    """
    digest = hashlib.sha256()
    digest.update(repr(frame.schema).encode())
    digest.update(str(frame.height).encode())
    if frame.height:
        row_hashes = frame.hash_rows(seed=0)
        digest.update(row_hashes.to_numpy().tobytes())
    return digest.hexdigest()[:24]
