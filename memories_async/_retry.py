"""Retrying one call: which errors, how many times, how long to wait.

The first attempt runs without any retry machinery, so the common case costs
nothing; only a retryable failure enters the tenacity loop. The rules:

* only errors whose ``retryable`` is true are retried;
* rate-limit answers are not failures: they wait for the governor's next
  free slot, not here, never use up ``attempts``, and are retried for as
  long as ``total_timeout`` allows (for ever without one);
* code ``"0001"`` is tried at most ``transient_attempts`` times;
* every other retryable error at most ``attempts`` times;
* never past ``total_timeout`` from the first attempt;
* the last error is re-raised, with ``attempts`` set on it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import tenacity

from ._config import RetryPolicy
from ._errors import MemoriesError, RateLimitError, TransientAPIError

T = TypeVar("T")

logger = logging.getLogger("memories_async")

OnRetry = Callable[[MemoriesError, int, float], None]
"""Called before each retry with the error, the attempt that failed and the wait."""


class _Budget:
    """What one call has left to spend on retries."""

    __slots__ = ("_clock", "_deadline", "_policy", "_rand", "failures", "rate_limited", "transient")

    def __init__(
        self,
        policy: RetryPolicy,
        start: float,
        clock: Callable[[], float],
        rand: Callable[[], float],
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._rand = rand
        total = policy.total_timeout
        self._deadline = None if total is None else start + total
        self.failures = 0
        self.rate_limited = 0
        self.transient = 0

    def spend(self, error: MemoriesError) -> bool:
        """Count ``error``; return whether another attempt is allowed."""
        if not error.retryable:
            return False
        policy = self._policy
        if error.rate_limited:
            self.rate_limited += 1
            allowed = True
        elif isinstance(error, TransientAPIError):
            self.transient += 1
            self.failures += 1
            allowed = self.transient < policy.transient_attempts and self.failures < policy.attempts
        else:
            self.failures += 1
            allowed = self.failures < policy.attempts
        return allowed and (self._deadline is None or self._clock() < self._deadline)

    def wait(self, error: MemoriesError) -> float:
        """Seconds to wait before the next attempt (the governor adds any wait for a slot)."""
        if isinstance(error, RateLimitError) or error.rate_limited:
            return 0.0
        retry_after = error.retry_after
        if retry_after is not None:
            wait = float(retry_after)
        else:
            wait = self._policy.wait_before(max(1, self.failures), random=self._rand())
        if self._deadline is not None:
            wait = min(wait, max(0.0, self._deadline - self._clock()))
        return wait


async def call_with_retries(
    attempt: Callable[[int], Awaitable[T]],
    policy: RetryPolicy,
    *,
    on_retry: OnRetry | None = None,
    clock: Callable[[], float] = time.monotonic,
    rand: Callable[[], float] = random.random,
    first_error: MemoriesError | None = None,
    started: float | None = None,
) -> tuple[T, int]:
    """Run ``attempt(n)`` for n = 1, 2, … until it succeeds or the policy gives up.

    Returns the result and the number of attempts made. The error of the last
    attempt is re-raised with its ``attempts`` attribute set. A caller that
    made attempt 1 itself passes its error as ``first_error`` and the time it
    started (on ``clock``) as ``started``; retrying goes on from attempt 2.
    """
    start = clock() if started is None else started
    if first_error is None:
        try:
            return await attempt(1), 1
        except MemoriesError as error:
            first_error = error
    budget = _Budget(policy, start, clock, rand)
    if not budget.spend(first_error):
        first_error.attempts = 1
        raise first_error

    tried = 1
    allowed = True

    # tenacity asks retry, then wait, then stop: the failure is counted in
    # retry so that the wait already grows with it.
    def retry(state: tenacity.RetryCallState) -> bool:
        nonlocal allowed
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if not isinstance(error, MemoriesError) or not error.retryable:
            return False
        allowed = budget.spend(error)
        return True

    def stop(state: tenacity.RetryCallState) -> bool:
        return not allowed

    def wait(state: tenacity.RetryCallState) -> float:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if not isinstance(error, MemoriesError):  # pragma: no cover - retry predicate excludes
            return 0.0
        return budget.wait(error)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, MemoriesError):
            _announce(error, tried, state.upcoming_sleep, on_retry)

    first_wait = budget.wait(first_error)
    _announce(first_error, 1, first_wait, on_retry)
    retrying = tenacity.AsyncRetrying(
        stop=stop,
        wait=wait,
        retry=retry,
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        if first_wait > 0:
            await asyncio.sleep(first_wait)
        async for state in retrying:
            with state:
                tried += 1
                result = await attempt(tried)
    except MemoriesError as error:
        error.attempts = tried
        raise
    return result, tried


def _announce(error: MemoriesError, attempt: int, wait: float, on_retry: OnRetry | None) -> None:
    if logger.isEnabledFor(logging.WARNING):
        logger.warning("retrying after attempt %d in %.2fs: %s", attempt, wait, error)
    if on_retry is not None:
        on_retry(error, attempt, wait)
