"""The release registry in the lake: which release every store serves, which it served before, and the publish
journal. Plain files, so that the stages (which must not drop a retained version) and the `release` stage (which
publishes and rolls back) read one record without importing each other.

Layout under `<lake>/releases/`: `<release id>.json` (one manifest per published release), `registry.json`
(`served`: the id every store serves; `history`: every published id, oldest first) and `journal.json` (written
before a publish moves its first pointer, removed after the last one was read back).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DIRECTORY = "releases"
# metadata key: the version a store asset staged, which its checks audit and `release` publishes
STAGED = "staged_version"
DEFAULT_KEEP_PREVIOUS = 1
# metadata key: the hash of the bytes a lake file held when materialized (the release gate re-hashes the file)
CONTENT_SHA256 = "content_sha256"


class InsufficientDiskError(RuntimeError):
    """A staged version would not fit beside the served and retained ones."""


def ensure_free_space(directory: Path, needed_bytes: int, what: str, margin: float = 1.2) -> int:
    """Refuse (before writing anything) when `directory`'s file system has less than `margin` x `needed_bytes`
    free: a release keeps the served, the previous and the staged version side by side. Returns the free bytes."""
    probe = directory
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed_bytes * margin:
        raise InsufficientDiskError(
            f"staging {what} needs about {needed_bytes * margin / 2**20:,.0f} MiB in {directory} "
            f"({needed_bytes / 2**20:,.0f} MiB estimated + {margin - 1:.0%}), only {free / 2**20:,.0f} MiB are "
            "free: free space, or lower keep_previous of `release` so older releases are dropped")
    return free


def write_json_atomic(path: Path, value: Any) -> None:
    """Write `value` as JSON through a temporary file renamed over `path` (a crash leaves the old file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(value, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Registry:
    """The registry under one lake directory."""

    root: Path

    @classmethod
    def in_lake(cls, base_dir: str | Path) -> Registry:
        return cls(Path(base_dir) / DIRECTORY)

    @property
    def journal_path(self) -> Path:
        return self.root / "journal.json"

    def _state(self) -> dict[str, Any]:
        path = self.root / "registry.json"
        return json.loads(path.read_text()) if path.exists() else {"served": None, "history": []}

    def served_id(self) -> str | None:
        return self._state()["served"]

    def history(self) -> list[str]:
        return list(self._state()["history"])

    def manifest(self, release_id: str) -> dict[str, Any]:
        return json.loads((self.root / f"{release_id}.json").read_text())

    def served(self) -> dict[str, Any] | None:
        served = self.served_id()
        return self.manifest(served) if served else None

    def previous_id(self) -> str | None:
        """The release published before the served one (what `rollback` switches to)."""
        history, served = self.history(), self.served_id()
        if served not in history:
            return None
        position = history.index(served)
        return history[position - 1] if position > 0 else None

    def retained_ids(self, keep_previous: int = DEFAULT_KEEP_PREVIOUS) -> list[str]:
        """The served release, the `keep_previous` published before it, and any published after it (rolled back
        from, so they can be served again): their store versions are never dropped."""
        history, served = self.history(), self.served_id()
        if served not in history:
            return []
        position = history.index(served)
        return history[max(0, position - keep_previous):]

    def retained_versions(self, store: str, keep_previous: int = DEFAULT_KEEP_PREVIOUS) -> set[str]:
        """Names of `store`'s versions that a retained release holds (a stage must not drop them)."""
        names = set()
        for release_id in self.retained_ids(keep_previous):
            entry = self.manifest(release_id)["stores"].get(store)
            if entry:
                names.add(entry["version"])
        return names

    def save_manifest(self, manifest: dict[str, Any]) -> None:
        write_json_atomic(self.root / f"{manifest['release_id']}.json", manifest)

    def mark_served(self, release_id: str) -> None:
        """`release_id` is what every store serves now. A new one is appended after the served one (releases
        rolled back from leave the history then: the new one's previous is the one it replaced)."""
        state = self._state()
        if release_id not in state["history"]:
            history = state["history"]
            served = state["served"]
            state["history"] = [*(history[:history.index(served) + 1] if served in history else history), release_id]
        state["served"] = release_id
        write_json_atomic(self.root / "registry.json", state)

    def forget(self, release_ids: list[str]) -> None:
        """Drop releases beyond the retention from the history (their manifests are removed too)."""
        state = self._state()
        state["history"] = [r for r in state["history"] if r not in release_ids]
        write_json_atomic(self.root / "registry.json", state)
        for release_id in release_ids:
            (self.root / f"{release_id}.json").unlink(missing_ok=True)

    def journal(self) -> dict[str, Any] | None:
        return json.loads(self.journal_path.read_text()) if self.journal_path.exists() else None

    def write_journal(self, journal: dict[str, Any]) -> None:
        write_json_atomic(self.journal_path, journal)

    def clear_journal(self) -> None:
        self.journal_path.unlink(missing_ok=True)
