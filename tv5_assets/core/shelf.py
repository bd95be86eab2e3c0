"""Shelving a store version that is kept but not served: a zstd-compressed tar beside it, restored before it is served.

Why: a release keeps the previous release whole for rollback, so three versions of every store (previous, served,
staged) sit on disk while a new release is audited. zstd at level 3 shrinks an AgentDB file about 2.4x (ml-25m
shape: 0.75 to 0.32 GiB in about 1-2 s on 2 cores). A Neo4j store is made of fixed-size records: its record files go
in with their bytes transposed, page block by page block, so zstd sees one record field at a time (Blosc's byte
shuffle at the record's size), and the store shrinks about 7.5x instead of 3.3x (1.9 GiB to 0.25 GiB in 2.3 s,
restored in 2.6-4.7 s). The layout travels in the archive: a restore needs nothing else. The previous release stays
one command away for a fraction of its disk. Milvus collections are not shelved: the previous release's collections
stay loaded, so moving an alias back never meets an unloaded one.

Why numpy and not Blosc itself: Blosc's own container would be a second archive format beside the tar stream the
shelf already writes; the shuffle is one reshape.

Both moves are crash-safe: the archive (or the restored copy) is written under a temporary name and renamed into
place before the original is removed, so a killed shelve or restore leaves one complete copy, maybe two.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
import zstandard

SUFFIX = ".tar.zst"
LEVEL = 3
THREADS = -1  # zstd's worker threads: one per core
RECORDS_HEADER = "TV5.records"  # a tar member's pax header: the Records its bytes were transposed with
CHUNK_PAGES = 256  # pages transposed at a time (2 MiB of 8 KiB pages: in cache, yet long runs of one field)
TAR_BUFFER = 1 << 20  # tarfile's stream buffer (its 10 KiB default makes a restore spend seconds joining bytes)


class Records(NamedTuple):
    """A file of fixed-size records that never cross a page (the tail of each page is padding)."""

    size: int
    page: int = 8192

    def encode(self) -> str:
        return f"{self.size}/{self.page}/{CHUNK_PAGES}"


def transpose(block: bytes | np.ndarray, records: Records, inverse: bool = False) -> np.ndarray:
    """`block` (whole pages) with its record bytes column by column (field by field), then each page's padding;
    `inverse` undoes it. Lossless for any bytes: a file that does not hold such records only compresses less."""
    per_page = records.page // records.size
    used = per_page * records.size
    pages = len(block) // records.page
    flat = np.frombuffer(block, np.uint8)
    out = np.empty_like(flat)
    grid, columns = (out, flat) if inverse else (flat, out)
    grid = grid.reshape(pages, records.page)
    by_field = columns[: pages * used].reshape(records.size, pages, per_page)
    by_record = grid[:, :used].reshape(pages, per_page, records.size).transpose(2, 0, 1)
    padding, tail = grid[:, used:], columns[pages * used:].reshape(pages, records.page - used)
    if inverse:
        by_record[...], padding[...] = by_field, tail
    else:
        by_field[...], tail[...] = by_record, padding
    return out


def _transposed_chunks(handle: BinaryIO, records: Records) -> Iterator[bytes]:
    step = CHUNK_PAGES * records.page
    while block := handle.read(step):
        whole = len(block) // records.page * records.page
        yield transpose(block[:whole], records).tobytes() + block[whole:]  # a last partial page as it is


class _Stream(io.RawIOBase):
    """A readable stream over chunks (what `tarfile.addfile` copies from)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._pending = chunks, memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        while not self._pending:
            self._pending = memoryview(next(self._chunks, b""))
            if not self._pending:
                return 0
        count = min(len(buffer), len(self._pending))
        buffer[:count], self._pending = self._pending[:count], self._pending[count:]
        return count


def _add(tar: tarfile.TarFile, path: Path, arcname: str, records: Mapping[str, Records]) -> None:
    """`tar.add`, but a regular file named in `records` goes in transposed, its layout in a pax header."""
    member = tar.gettarinfo(path, arcname)
    layout = records.get(path.name)
    if member.isfile() and layout is not None:
        member.pax_headers = {RECORDS_HEADER: layout.encode()}
        with open(path, "rb") as handle:
            tar.addfile(member, io.BufferedReader(_Stream(_transposed_chunks(handle, layout)), 1 << 20))
    elif member.isdir():
        tar.addfile(member)
        for child in sorted(path.iterdir()):
            _add(tar, child, f"{arcname}/{child.name}", records)
    else:
        tar.add(path, arcname, recursive=False)


def _extract(tar: tarfile.TarFile, destination: Path) -> None:
    """`tar.extractall(filter="data")`, undoing the transposition of the members `_add` marked."""
    for member in tar:
        layout = member.pax_headers.get(RECORDS_HEADER)
        if layout is None:
            tar.extract(member, destination, filter="data")
            continue
        member = tarfile.data_filter(member, str(destination))
        size, page, chunk_pages = (int(part) for part in layout.split("/"))
        step, source = chunk_pages * page, tar.extractfile(member)
        target = destination / member.name
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            while block := source.read(step):
                whole = len(block) // page * page
                out.write(transpose(block[:whole], Records(size, page), inverse=True))
                out.write(block[whole:])
        os.chmod(target, member.mode)
        os.utime(target, (member.mtime, member.mtime))


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


def shelve(path: Path, shelf: Path | None = None, level: int = LEVEL,
           records: Mapping[str, Records] | None = None) -> Path:
    """Compress `path` into its archive, then remove `path`; returns the archive. `records`: the files (by name)
    made of fixed-size records, transposed on the way in. Does nothing to an already shelved path (the archive
    exists and `path` is gone) and finishes a shelve killed after its rename."""
    archive = archive_of(path, shelf)
    if not archive.exists():
        if not path.exists():
            raise FileNotFoundError(f"nothing to shelve at {path}")
        archive.parent.mkdir(parents=True, exist_ok=True)
        partial = archive.with_name(archive.name + ".partial")
        with open(partial, "wb") as raw:
            compressor = zstandard.ZstdCompressor(level=level, threads=THREADS)
            with compressor.stream_writer(raw, closefd=False) as stream, \
                    tarfile.open(fileobj=stream, mode="w|", bufsize=TAR_BUFFER) as tar:
                _add(tar, path, path.name, records or {})
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
            with zstandard.ZstdDecompressor().stream_reader(raw) as stream, \
                    tarfile.open(fileobj=stream, mode="r|", bufsize=TAR_BUFFER) as tar:
                _extract(tar, unpacking)
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
