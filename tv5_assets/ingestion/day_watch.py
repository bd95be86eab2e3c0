"""What the day sensor requests, and its cursor (no Dagster here).

The landing folder keeps every day ever delivered, so each tick must not re-hash them all: a file whose size and
modification time are unchanged keeps the checksum the cursor remembers. A day is requested when its run key
(its files' names and checksums) differs from the one last requested for it: a new day, or a corrected
re-delivery. The daemon would skip a repeated run key anyway; the cursor keeps the request list short.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from tv5_assets.ingestion.days import DayFile, checksum, day_of


@dataclass
class DayCursor:
    files: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # name -> (size, mtime_ns, sha256)
    requested: dict[str, str] = field(default_factory=dict)  # day (ISO) -> run key last requested

    @classmethod
    def from_json(cls, text: str | None) -> DayCursor:
        if not text:
            return cls()
        raw = json.loads(text)
        return cls({k: tuple(v) for k, v in raw.get("files", {}).items()}, dict(raw.get("requested", {})))

    def to_json(self) -> str:
        return json.dumps({"files": self.files, "requested": self.requested}, sort_keys=True)


@dataclass
class DayPlan:
    requests: list[tuple[date, str]]  # (day, run key), in day order
    cursor: DayCursor
    other: list[Path]  # entries that are no day file
    hashed: int  # files whose checksum was computed this tick


def plan_days(folder: Path, cursor: DayCursor) -> DayPlan:
    """The days to request now and the cursor after them; a missing folder is no delivery yet."""
    entries = sorted(folder.iterdir()) if folder.is_dir() else []
    files: dict[str, tuple[int, int, str]] = {}
    by_day: dict[date, list[DayFile]] = defaultdict(list)
    other, hashed = [], 0
    for entry in entries:
        found = day_of(entry) if entry.is_file() else None
        if found is None:
            other.append(entry)
            continue
        stat = entry.stat()
        known = cursor.files.get(entry.name)
        if known is not None and known[:2] == (stat.st_size, stat.st_mtime_ns):
            digest = known[2]
        else:
            digest, hashed = checksum(entry), hashed + 1
        files[entry.name] = (stat.st_size, stat.st_mtime_ns, digest)
        by_day[found[1]].append(DayFile(entry, found[0], found[1], digest))
    keys = {day: "+".join(f.run_key for f in sorted(group, key=lambda f: f.kind)) for day, group in by_day.items()}
    requests = [(day, key) for day, key in sorted(keys.items()) if cursor.requested.get(day.isoformat()) != key]
    requested = {**cursor.requested, **{day.isoformat(): key for day, key in requests}}
    return DayPlan(requests, DayCursor(files, requested), other, hashed)
