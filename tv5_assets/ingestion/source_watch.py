"""Noticing new MovieLens releases on disk: what the source sensor decides, without Dagster.

A *watched directory* is a sub-directory of the landing folder (`TV5_LANDING_DIR`; names starting
with '.' or '_' are ignored, so a copier can stage in `.ml-25m.partial/` and rename it in) or the
configured `TV5_MOVIELENS_SOURCE` when that is a local directory. It is a *release* once it holds
every required file (`REQUIRED_FILES`).

When is a release complete (never picked up half-written)?
- It holds a `.complete` marker written after every release file (the marker's mtime is not older
  than any of them): taken at once. A marker older than a file is stale (the files were replaced in
  place after it) and counts as absent. A fresh marker with a required file missing is *malformed*:
  reported, never requested.
- Without a (fresh) marker: its signature was already the same at the previous tick (so unchanged
  for a whole sensor interval, at least 30 s). A copy that stalls longer than that with every
  required file present is taken early; its finished content then gets a new fingerprint and its own
  run, so writing the marker is the way to be sure.

Identity is the content: `release_fingerprint`, the very hash `movielens_release` stores as its data
version. Hashing ml-25m (about 1 GB) every tick is too slow, so the cursor keeps each directory's cheap
*signature* (the release files' names, sizes and mtime_ns, plus the marker's) with its fingerprint, and
a directory is hashed again only when its signature changes (then once, when it is settled). A change
that keeps every size and mtime_ns (possible on coarse-mtime filesystems) goes unnoticed: touch the
marker to force a re-hash.

What is requested: one run per fingerprint never seen before (two directories with the same content
give one run), named `<directory name>:<fingerprint>` (Dagster also launches at most one run per
run_key, ever). Content already served (the fingerprint equals the asset's current data version)
is recorded as seen but not requested, so switching the sensor on does not re-ingest what is there.
A fingerprint once seen is never requested again, even if a directory goes back to it later.

The cursor (JSON): `{"v": 1, "dirs": {"<absolute dir>": {"sig": "<16 hex>", "fp": "<fingerprint>" |
null}}, "seen": {"<fingerprint>": <first seen, epoch s>}}`. Directories that disappear leave `dirs`;
`seen` keeps the newest `SEEN_LIMIT` fingerprints. An unreadable or reset cursor starts empty: every
release is hashed, recorded and requested once more, and Dagster launches no second run for a run_key it
has seen (content the graph already serves is not requested at all).

Watching a download source (a GroupLens release name) is not done and stays off: it would fetch the
published `<name>.zip.md5` (a few bytes) once a day, keep it in the cursor, and on a change request a
run that re-downloads (`download_release` caches by name, so it would first need a fresh raw dir).
Nothing here reaches the network.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tv5_assets.core.storage import frame_fingerprint
from tv5_assets.ingestion.errors import MovieLensInputError
from tv5_assets.ingestion.release import PUBLISHED_RELEASES, RELEASE_FILES, REQUIRED_FILES, release_manifest

MARKER = ".complete"
CURSOR_VERSION = 1
SEEN_LIMIT = 1_000
RELEASE_OP = "movielens_release"
LANDING, CONFIGURED = "landing", "configured"


def release_fingerprint(directory: Path) -> str:
    """The content identity of a release: exactly the data version `movielens_release` gives it."""
    return frame_fingerprint(release_manifest(directory).drop("path"))


@dataclass(frozen=True)
class Candidate:
    """A watched directory as it looks now (cheap: names, sizes, mtimes; nothing read)."""

    path: Path  # absolute
    kind: str  # LANDING or CONFIGURED
    signature: str
    marked: bool  # a fresh completion marker
    missing: tuple[str, ...]  # required files absent
    required: tuple[str, ...] = REQUIRED_FILES
    watched: tuple[str, ...] = RELEASE_FILES

    @property
    def name(self) -> str:
        return self.path.name


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:  # absent, or removed while we looked
        return None


def observe(
    directory: Path, kind: str = LANDING, required: tuple[str, ...] = REQUIRED_FILES,
    watched: tuple[str, ...] = RELEASE_FILES,
) -> Candidate:
    """Signature, marker and missing files of `directory` (its `watched` files and the marker)."""
    directory = directory.absolute()
    stats = {name: _stat(directory / name) for name in (*watched, MARKER)}
    present = {name: st for name, st in stats.items() if st is not None}
    described = sorted((name, st.st_size, st.st_mtime_ns) for name, st in present.items())
    signature = hashlib.sha256(json.dumps(described).encode()).hexdigest()[:16]
    marker = present.pop(MARKER, None)
    marked = marker is not None and all(marker.st_mtime_ns >= st.st_mtime_ns for st in present.values())
    missing = tuple(name for name in required if name not in present)
    return Candidate(directory, kind, signature, marked, missing, required, watched)


def scan(landing: Path, **files: tuple[str, ...]) -> list[Candidate]:
    """Every visible sub-directory of the landing folder, by name; none when the folder is absent."""
    if not landing.is_dir():
        return []
    children = sorted(p for p in landing.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    return [observe(child, LANDING, **files) for child in children]


def configured_directory(source: str) -> Path | None:
    """The configured source when it is a local directory ('sample' and release names are not watched)."""
    if not source or source == "sample" or source in PUBLISHED_RELEASES:
        return None
    path = Path(source)
    return path.absolute() if path.is_dir() else None


def candidates(landing: Path, configured_source: str) -> list[Candidate]:
    """The landing folder's directories, then the configured source unless it is one of them."""
    found = scan(landing)
    configured = configured_directory(configured_source)
    if configured is not None and configured not in {c.path for c in found}:
        found.append(observe(configured, CONFIGURED))
    return found


@dataclass(frozen=True)
class DirState:
    signature: str
    fingerprint: str | None  # None until hashed (waiting, malformed)


@dataclass(frozen=True)
class WatchCursor:
    dirs: Mapping[str, DirState] = field(default_factory=dict)
    seen: Mapping[str, float] = field(default_factory=dict)  # fingerprint -> first seen (epoch s)

    def to_json(self) -> str:
        return json.dumps({
            "v": CURSOR_VERSION,
            "dirs": {path: {"sig": s.signature, "fp": s.fingerprint} for path, s in sorted(self.dirs.items())},
            "seen": dict(self.seen),
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> WatchCursor:
        """The cursor of the previous tick; empty when there is none or it cannot be read."""
        try:
            raw = json.loads(text or "{}")
            if raw.get("v", CURSOR_VERSION) != CURSOR_VERSION:
                return cls()
            dirs = {str(path): DirState(str(d["sig"]), d.get("fp")) for path, d in raw.get("dirs", {}).items()}
            seen = {str(fp): float(at) for fp, at in raw.get("seen", {}).items()}
        except (ValueError, TypeError, KeyError, AttributeError):
            return cls()
        return cls(dirs, seen)


@dataclass(frozen=True)
class SeenSource:
    """A release content the sensor saw for the first time (recorded as an observation of the asset)."""

    source: str  # absolute directory
    name: str
    fingerprint: str
    first_seen: float  # epoch seconds


@dataclass(frozen=True)
class Request:
    """One run to ingest `directory`, whose content is `fingerprint`."""

    directory: str
    name: str
    fingerprint: str
    kind: str

    @property
    def run_key(self) -> str:
        return f"{self.name}:{self.fingerprint}"

    @property
    def run_config(self) -> dict:
        return {"ops": {RELEASE_OP: {"config": {"source": self.directory}}}}

    @property
    def tags(self) -> dict[str, str]:
        return {"tv5/source": self.directory, "tv5/source_name": self.name,
                "tv5/source_fingerprint": self.fingerprint, "tv5/source_watch": self.kind}


@dataclass(frozen=True)
class Plan:
    """What one tick decided: runs to request, first sightings to record, and why others wait."""

    requests: tuple[Request, ...]
    sightings: tuple[SeenSource, ...]
    problems: tuple[str, ...]  # malformed candidates: skipped, each naming its directory
    waiting: tuple[str, ...]  # not (yet) complete
    hashed: tuple[str, ...]  # directories whose files were read this tick
    cursor: WatchCursor


def _newest(seen: dict[str, float], limit: int) -> dict[str, float]:
    return dict(sorted(seen.items(), key=lambda item: item[1])[-limit:])


def plan(
    found: Iterable[Candidate],
    cursor: WatchCursor,
    now: float,
    served: str | None = None,
    fingerprint: Callable[[Path], str] = release_fingerprint,
    seen_limit: int = SEEN_LIMIT,
) -> Plan:
    """Decide one tick: hash what settled since the last one, request content never seen before.

    `served` is the asset's current data version (content already ingested is not requested again).
    """
    dirs: dict[str, DirState] = {}
    seen = dict(cursor.seen)
    requests: list[Request] = []
    sightings: list[SeenSource] = []
    problems: list[str] = []
    waiting: list[str] = []
    hashed: list[str] = []
    for c in found:
        key = str(c.path)
        before = cursor.dirs.get(key)
        settled = before is not None and before.signature == c.signature
        dirs[key] = DirState(c.signature, None)
        if c.missing:
            if c.marked:
                problems.append(f"{key}: marked complete ({MARKER}) but missing required file(s) "
                                f"{', '.join(c.missing)}; skipped")
            else:
                waiting.append(f"{key}: not a release yet (no {', '.join(c.missing)})")
            continue
        if settled and before.fingerprint:
            fp = before.fingerprint  # unchanged since it was hashed: nothing read
        elif c.marked or settled:
            try:
                fp = fingerprint(c.path)
            except (MovieLensInputError, OSError) as exc:
                problems.append(f"{key}: cannot be read ({exc}); skipped")
                continue
            hashed.append(key)
            after = observe(c.path, c.kind, c.required, c.watched)
            if after.signature != c.signature:  # written to while we read it
                dirs[key] = DirState(after.signature, None)
                waiting.append(f"{key}: changed while it was read; waiting for it to settle")
                continue
        else:
            waiting.append(f"{key}: new or changed since the last tick; taken once unchanged for a tick "
                           f"(or at once with a {MARKER} marker written last)")
            continue
        dirs[key] = DirState(c.signature, fp)
        if fp in seen:
            continue
        seen[fp] = now
        sightings.append(SeenSource(key, c.name, fp, now))
        if fp != served:
            requests.append(Request(key, c.name, fp, c.kind))
    return Plan(tuple(requests), tuple(sightings), tuple(problems), tuple(waiting), tuple(hashed),
                WatchCursor(dirs, _newest(seen, seen_limit)))


def skip_message(result: Plan, landing: Path) -> str:
    """Why a tick requests nothing, naming each malformed or waiting directory."""
    if not (result.problems or result.waiting):
        return f"no new release in {landing} (or the configured source)"
    return "no new release. " + " | ".join((*result.problems, *result.waiting))
