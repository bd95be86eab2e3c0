"""Shelving a store version that is kept but not served: a zstd-compressed tar beside it, restored before it is served.

Why: a release keeps the previous release whole for rollback, so three versions of every store (previous, served,
staged) sit on disk while a new release is audited. A Neo4j store compresses about 3.2x and an AgentDB file about
2.4x with zstd at level 3 (ml-25m shape: 1.9 GiB to 0.6 GiB in 4-6 s, 0.75 GiB to 0.32 GiB in about 2 s on 2 cores;
benchmarks.release_disk), a restore takes 3-5 s, so the previous release stays one command away for a third of
the disk. Milvus collections are not
shelved: the previous release's collections stay loaded, so moving an alias back never meets an unloaded one.

Both moves are crash-safe: the archive (or the restored copy) is written under a temporary name and renamed into
place before the original is removed, so a killed shelve or restore leaves one complete copy, maybe two.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

import zstandard

SUFFIX = ".tar.zst"
LEVEL = 3
THREADS = -1  # zstd's worker threads: one per core


def archive_of(path: Path, shelf: Path | None = None) -> Path:
    """Where `path` (a file or a folder) is shelved: `<shelf or its folder>/<name>.tar.zst`."""
    return (shelf or path.parent) / f"{path.name}{SUFFIX}"


def fsync(path: Path) -> None:
    """Flush a file or a folder (a rename into it) to disk."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def shelve(path: Path, shelf: Path | None = None, level: int = LEVEL) -> Path:
    """Compress `path` into its archive, then remove `path`; returns the archive. Does nothing to an already
    shelved path (the archive exists and `path` is gone) and finishes a shelve killed after its rename."""
    archive = archive_of(path, shelf)
    if not archive.exists():
        if not path.exists():
            raise FileNotFoundError(f"nothing to shelve at {path}")
        archive.parent.mkdir(parents=True, exist_ok=True)
        partial = archive.with_name(archive.name + ".partial")
        with open(partial, "wb") as raw:
            compressor = zstandard.ZstdCompressor(level=level, threads=THREADS)
            with compressor.stream_writer(raw, closefd=False) as stream, tarfile.open(fileobj=stream, mode="w|") as tar:
                tar.add(path, arcname=path.name)
            raw.flush()
            os.fsync(raw.fileno())
        partial.rename(archive)
        fsync(archive.parent)
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    return archive


def is_shelved(path: Path, shelf: Path | None = None) -> bool:
    return archive_of(path, shelf).is_file()


def restore(path: Path, shelf: Path | None = None) -> Path:
    """Unpack `path` from its archive (when `path` is not already there), then remove the archive."""
    archive = archive_of(path, shelf)
    if not path.exists():
        if not archive.is_file():
            raise FileNotFoundError(f"{path} is neither there nor shelved at {archive}")
        unpacking = path.with_name(path.name + ".restoring")
        shutil.rmtree(unpacking, ignore_errors=True)
        unpacking.mkdir(parents=True)
        with open(archive, "rb") as raw:
            with zstandard.ZstdDecompressor().stream_reader(raw) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
                tar.extractall(unpacking, filter="data")
        (unpacking / path.name).rename(path)
        shutil.rmtree(unpacking)
        fsync(path.parent)
    archive.unlink(missing_ok=True)
    return path


def discard(path: Path, shelf: Path | None = None) -> None:
    """Remove `path`'s archive (and any partial one)."""
    archive = archive_of(path, shelf)
    archive.unlink(missing_ok=True)
    archive.with_name(archive.name + ".partial").unlink(missing_ok=True)
