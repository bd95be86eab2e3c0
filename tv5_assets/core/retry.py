"""Retrying an operation on transient errors with exponential backoff (no Milvus import: testable alone)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def backoff_delays(attempts: int, base_s: float, max_s: float) -> list[float]:
    """The waits between `attempts` tries: base, 2*base, 4*base, ... capped at `max_s`."""
    return [min(base_s * (2 ** i), max_s) for i in range(max(attempts - 1, 0))]


def with_retries(
    operation: Callable[[], T],
    *,
    attempts: int,
    base_s: float,
    max_s: float,
    is_transient: Callable[[BaseException], bool],
    on_retry: Callable[[int, float, BaseException], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `operation`; on a transient error wait and try again, at most `attempts` times in all.

    A permanent error (or the last transient one) propagates unchanged, so callers can translate it.
    """
    delays = backoff_delays(attempts, base_s, max_s)
    for attempt in range(len(delays) + 1):
        try:
            return operation()
        except Exception as error:  # noqa: BLE001 - classified just below
            if attempt == len(delays) or not is_transient(error):
                raise
            if on_retry is not None:
                on_retry(attempt + 1, delays[attempt], error)
            sleep(delays[attempt])
    raise AssertionError("unreachable")
