"""Publishing a release: every store's pointer moved, in a written order, from a journal written first.

The journal (`releases/journal.json`) names the release, each store's version before and after, and the order.
It is written before the first pointer moves and removed after every store was read back: the version it serves
and the release id it is marked with (a store that already serves its version is marked with the new id too). A publish that dies
in between (process killed, store down) leaves the journal; the next publish or rollback recovers first: forward
when every target version still exists, else back to the versions the journal recorded as served before. Moving
a pointer to where it already points does nothing, so every step is safe to repeat (Dagster retries will).
One publisher at a time: an exclusive lock on `releases/publish.lock` (any process, any run; `filelock`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from filelock import FileLock, Timeout

from tv5_assets.core.releases import Registry
from tv5_assets.release.pointers import Pointer


class PublishError(RuntimeError):
    """A store does not serve what the release says after the switch."""


@dataclass
class Switched:
    release_id: str
    seconds: dict[str, float] = field(default_factory=dict)  # per store: time its pointer move took
    recovered: str = ""  # what an interrupted earlier publish was recovered to ("" when none)


@contextlib.contextmanager
def publisher_lock(registry: Registry, log: Callable[[str], None], wait_s: float = 3600.0) -> Iterator[None]:
    """Hold the one-publisher lock (waiting, with one log line, while another process publishes)."""
    registry.root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(registry.root / "publish.lock", preserve_lock_file=True)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log("another publish or rollback is running: waiting for it")
        try:
            lock.acquire(timeout=wait_s)
        except Timeout:
            raise TimeoutError(f"the publish lock stayed held for {wait_s:.0f} s") from None
    try:
        yield
    finally:
        lock.release()


def read_back(pointers: Sequence[Pointer], target: dict[str, str]) -> dict[str, str | None]:
    """What each store serves now, for the stores of `target`."""
    return {p.store: p.served() for p in pointers if p.store in target}


def read_release_ids(pointers: Sequence[Pointer], target: dict[str, str]) -> dict[str, str | None]:
    """The release id each store of `target` says it serves (its mark on the served version)."""
    return {p.store: p.release_of() for p in pointers if p.store in target}


def _check(pointers: Sequence[Pointer], target: dict[str, str], release_id: str, what: str) -> None:
    served = read_back(pointers, target)
    marked = read_release_ids(pointers, target) if release_id else {s: release_id for s in target}
    wrong = {s: {"serves": served[s], "marked": marked[s], "expected": v} for s, v in target.items()
             if served.get(s) != v or marked.get(s) != release_id}
    if wrong:
        raise PublishError(f"{what}: these stores do not serve {release_id or 'the expected versions'}: {wrong}; "
                           "the journal is kept, the next publish recovers")


def _move(pointers: Sequence[Pointer], target: dict[str, str], log: Callable[[str], None], release_id: str = "",
          seconds: dict[str, float] | None = None, after_switch: Callable[[str], None] = lambda _: None) -> None:
    for pointer in pointers:
        version = target.get(pointer.store)
        if version is None or (pointer.served() == version and (not release_id or pointer.release_of() == release_id)):
            continue
        started = time.perf_counter()
        pointer.switch(version, release_id)
        if seconds is not None:
            seconds[pointer.store] = round(time.perf_counter() - started, 3)
        log(f"{pointer.store}: now serves {version}")
        after_switch(pointer.store)


def recover(registry: Registry, pointers: Sequence[Pointer], log: Callable[[str], None]) -> str:
    """Finish or undo a publish that stopped half-way (the journal is still there); '' when there was none."""
    journal = registry.journal()
    if journal is None:
        return ""
    by_store = {p.store: p for p in pointers}
    forward = all(store in by_store and by_store[store].exists(version) for store, version in journal["to"].items())
    expected = journal["to"] if forward else {store: v for store, v in journal["from"].items() if v}
    if forward:
        log(f"an interrupted publish of {journal['release_id']} found: every staged version exists, finishing it")
        _move(pointers, expected, log, journal["release_id"])
        registry.mark_served(journal["release_id"])
        outcome = f"forward to {journal['release_id']}"
    else:
        log(f"an interrupted publish of {journal['release_id']} found: a staged version is gone, switching back")
        _move(pointers, expected, log, journal.get("previous_release") or "")
        if journal.get("previous_release"):
            registry.mark_served(journal["previous_release"])
        outcome = f"back to {journal.get('previous_release') or 'the versions served before'}"
    _check(pointers, expected, journal["release_id"] if forward else journal.get("previous_release") or "",
           f"recovery of {journal['release_id']}")
    registry.clear_journal()
    return outcome


def publish(registry: Registry, pointers: Sequence[Pointer], release_id: str, target: dict[str, str],
            log: Callable[[str], None], after_switch: Callable[[str], None] = lambda _: None) -> Switched:
    """Move every store of `target` to its version, in the order of `pointers`; read every store back.
    `after_switch(store)` runs after each move (the tests kill the process there, between two stores)."""
    result = Switched(release_id)
    result.recovered = recover(registry, pointers, log)
    before = read_back(pointers, target)
    registry.write_journal({"release_id": release_id, "previous_release": registry.served_id(),
                            "order": [p.store for p in pointers if p.store in target],
                            "from": before, "to": target})
    _move(pointers, target, log, release_id, result.seconds, after_switch)
    _check(pointers, target, release_id, f"after publishing {release_id}")
    registry.mark_served(release_id)
    registry.clear_journal()
    return result
