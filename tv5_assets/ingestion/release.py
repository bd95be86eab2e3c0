"""Where a MovieLens release comes from: GroupLens, a local directory, or the project's own sample.

All three end as a directory of MovieLens CSVs plus a manifest (file, path, bytes, sha256): the
manifest is what the `movielens_release` asset stores, and its hashes are its data version.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import polars as pl

from tv5_assets.core.storage import file_sha256
from tv5_assets.ingestion.errors import MovieLensInputError
from tv5_assets.sample.generator import SampleSpec, write_sample_release

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens"
PUBLISHED_RELEASES = ("ml-latest-small", "ml-25m", "ml-latest")
RELEASE_FILES = (
    "movies.csv", "links.csv", "ratings.csv", "tags.csv", "genome-scores.csv", "genome-tags.csv",
)
REQUIRED_FILES = ("movies.csv", "links.csv", "ratings.csv", "tags.csv")
_COMPLETE = ".complete"


class ReleaseUnavailableError(RuntimeError):
    """A release could not be fetched or verified; says what to do instead."""


def _fetch(url: str, destination: Path, timeout_s: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(destination, "wb") as out:
            shutil.copyfileobj(response, out, length=8 << 20)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise ReleaseUnavailableError(
            f"cannot download {url} ({exc}). This machine may be offline: use source='sample' (the "
            "project's generated release) or source='<directory of MovieLens CSVs>' instead"
        ) from exc


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download_release(name: str, raw_dir: Path, base_url: str = GROUPLENS_URL, timeout_s: float = 60.0) -> Path:
    """Download `<name>.zip`, verify it against the published `<name>.zip.md5`, unpack it once.

    The unpacked directory is cached under `raw_dir/<name>`; a marker file written last tells a
    complete cache from an interrupted one.
    """
    if name not in PUBLISHED_RELEASES:
        raise ValueError(f"unknown MovieLens release {name!r}; known: {PUBLISHED_RELEASES}")
    target = raw_dir / name
    if (target / _COMPLETE).exists():
        return target
    raw_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=raw_dir, prefix=f".{name}.") as tmp_name:
        tmp = Path(tmp_name)
        _fetch(f"{base_url}/{name}.zip.md5", tmp / "published.md5", timeout_s)
        published = (tmp / "published.md5").read_text().split()[0].strip().lower()
        _fetch(f"{base_url}/{name}.zip", tmp / f"{name}.zip", timeout_s)
        actual = _md5(tmp / f"{name}.zip")
        if actual != published:
            raise ReleaseUnavailableError(
                f"{base_url}/{name}.zip: checksum mismatch (md5 {actual}, published {published}); "
                "the download is corrupt or the release changed: retry, or pass a local directory"
            )
        with zipfile.ZipFile(tmp / f"{name}.zip") as archive:
            archive.extractall(tmp / "unpacked")
        unpacked = tmp / "unpacked" / name
        if not unpacked.is_dir():
            unpacked = tmp / "unpacked"
        (unpacked / _COMPLETE).write_text(actual + "\n")
        shutil.rmtree(target, ignore_errors=True)
        unpacked.rename(target)
    return target


def sample_release(raw_dir: Path, spec: SampleSpec) -> Path:
    """The project's generated release for `spec`, generated once and cached by its parameters."""
    name = (
        f"sample-s{spec.seed}-m{spec.movies}-u{spec.users}-r{spec.ratings}"
        f"-t{spec.tags}-g{spec.genome_movies}x{spec.genome_tags}"
    )
    target = raw_dir / name
    if (target / _COMPLETE).exists():
        return target
    raw_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=raw_dir, prefix=f".{name}.") as tmp_name:
        staging = Path(tmp_name) / name
        write_sample_release(staging, spec)
        (staging / _COMPLETE).write_text("generated\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target


def local_release(directory: Path) -> Path:
    if not directory.is_dir():
        raise MovieLensInputError(directory, "release_directory", "not a directory of MovieLens CSVs")
    return directory


def release_manifest(directory: Path) -> pl.DataFrame:
    """One row per MovieLens file present: file, path, bytes, sha256. Missing required files fail here."""
    missing = [name for name in REQUIRED_FILES if not (directory / name).exists()]
    if missing:
        raise MovieLensInputError(
            directory / missing[0], "file_present",
            f"required release file(s) {missing} are missing from {directory}",
        )
    present = [directory / name for name in RELEASE_FILES if (directory / name).exists()]
    return pl.DataFrame(
        {
            "file": [p.name for p in present],
            "path": [str(p.resolve()) for p in present],
            "bytes": [p.stat().st_size for p in present],
            "sha256": [file_sha256(p) for p in present],
        },
        schema={"file": pl.String, "path": pl.String, "bytes": pl.Int64, "sha256": pl.String},
    )


def release_path(manifest: pl.DataFrame, file: str) -> Path:
    """Path of `file` in the release; a path that does not exist when the release lacks it."""
    rows = manifest.filter(pl.col("file") == file)
    if rows.is_empty():
        directory = Path(manifest["path"][0]).parent if manifest.height else Path(".")
        return directory / file
    return Path(rows["path"][0])
