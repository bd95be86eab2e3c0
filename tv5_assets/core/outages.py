"""Outages longer than an adapter's own retries: the step is retried by Dagster, a permanent fault is not.

The Milvus and Neo4j adapters retry a transient error for seconds (core/retry.py). A server that is down
for a minute (restarted, being upgraded) outlasts that; `retry_step_on` turns such an error, raised from a
store step, into `dg.RetryRequested`, so Dagster re-runs the step after a wait (STEP_UP_FOR_RETRY in the
event log) within the same run, on every executor and launch path. Any other error (a refused password, a
wrong URI, a count mismatch) propagates unchanged and fails the step once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from tv5_assets.core.settings import Settings


@contextmanager
def retry_step_on(transient: tuple[type[BaseException], ...],
                  permanent: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Inside a step: re-raise an error of a `transient` type (and none of `permanent`) as `RetryRequested`,
    with the step retries and wait of the settings (TV5_OUTAGE_RETRIES, TV5_OUTAGE_WAIT_S)."""
    try:
        yield
    except transient as error:
        if isinstance(error, permanent):
            raise
        settings = Settings()
        raise dg.RetryRequested(max_retries=settings.tv5_outage_retries,
                                seconds_to_wait=settings.tv5_outage_wait_s) from error
