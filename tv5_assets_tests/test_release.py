"""`movielens_release` sources: download (from a real HTTP server on loopback), local directory, sample."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import shutil
import socket
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tv5_assets.ingestion.release import (
    ReleaseUnavailableError,
    download_release,
    release_manifest,
    release_path,
)
from tv5_assets_tests.test_bad_input import write_release


def _zip_release(source: Path, name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(source.iterdir()):
            archive.write(path, f"{name}/{path.name}")
    return buffer.getvalue()


@pytest.fixture
def grouplens_mirror(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on 127.0.0.1 laid out like files.grouplens.org/datasets/movielens."""
    served = tmp_path / "served"
    served.mkdir()
    payload = _zip_release(write_release(tmp_path / "src"), "ml-latest-small")
    (served / "ml-latest-small.zip").write_bytes(payload)
    (served / "ml-latest-small.zip.md5").write_text(f"{hashlib.md5(payload).hexdigest()}  ml-latest-small.zip\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served
    server.shutdown()
    server.server_close()


def test_download_verifies_checksum_unpacks_and_caches(grouplens_mirror, tmp_path: Path) -> None:
    url, served = grouplens_mirror
    raw = tmp_path / "raw"
    directory = download_release("ml-latest-small", raw, base_url=url, timeout_s=10)
    assert directory == raw / "ml-latest-small"
    manifest = release_manifest(directory)
    assert set(manifest["file"]) == {"movies.csv", "links.csv", "ratings.csv", "tags.csv"}
    assert release_path(manifest, "ratings.csv").read_text().startswith("userId,movieId")
    # cached: a second call does not need the server any more
    shutil.rmtree(served)
    assert download_release("ml-latest-small", raw, base_url=url, timeout_s=10) == directory


def test_download_refuses_a_corrupt_archive(grouplens_mirror, tmp_path: Path) -> None:
    url, served = grouplens_mirror
    (served / "ml-latest-small.zip.md5").write_text("0" * 32 + "  ml-latest-small.zip\n")
    with pytest.raises(ReleaseUnavailableError, match="checksum mismatch"):
        download_release("ml-latest-small", tmp_path / "raw", base_url=url, timeout_s=10)
    assert not (tmp_path / "raw" / "ml-latest-small").exists()


def test_offline_download_says_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a loopback port with nothing listening: as unreachable as offline
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ReleaseUnavailableError) as err:
        download_release("ml-25m", tmp_path / "raw", base_url=f"http://127.0.0.1:{port}", timeout_s=5)
    assert "ml-25m.zip" in str(err.value) and "source='sample'" in str(err.value)


def test_unknown_release_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown MovieLens release"):
        download_release("ml-1b", tmp_path)
