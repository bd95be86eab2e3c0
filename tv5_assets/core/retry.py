"""The one retry policy of every external system (Milvus, Neo4j): transient errors are retried with
exponential backoff, permanent ones propagate unchanged at once so the adapter can translate them.

Built on tenacity; this module only fixes the project's policy in one call and reports each retry.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

T = TypeVar("T")


def backoff_delays(attempts: int, base_s: float, max_s: float) -> list[float]:
    """The waits between `attempts` tries without jitter: base, 2*base, 4*base, ... capped at `max_s`."""
    return [min(base_s * (2 ** i), max_s) for i in range(max(attempts - 1, 0))]


def with_retries(
    operation: Callable[[], T],
    *,
    attempts: int,
    base_s: float,
    max_s: float,
    is_transient: Callable[[BaseException], bool],
    on_retry: Callable[[int, float, BaseException], None] | None = None,
    jitter: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `operation`; on a transient error wait and try again, at most `attempts` times in all.

    `on_retry(retry_number, delay_s, error)` is called before each wait. With `jitter`, each wait is
    scaled by a random factor in [0.5, 1.5) so that clients retrying together spread out. A permanent
    error (or the last transient one) propagates unchanged.
    """
    exponential = wait_exponential(multiplier=base_s, exp_base=2, min=0, max=max_s)

    def wait(state: RetryCallState) -> float:
        delay = exponential(state)
        return delay * (0.5 + random.random()) if jitter else delay

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None and state.next_action is not None:
            on_retry(state.attempt_number, state.next_action.sleep, state.outcome.exception())

    retrying = Retrying(stop=stop_after_attempt(max(attempts, 1)), wait=wait,
                        retry=retry_if_exception(is_transient), before_sleep=before_sleep,
                        reraise=True, sleep=sleep)
    return retrying(operation)
