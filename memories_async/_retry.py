"""Retrying one call: which errors, how many times, how long to wait.

One loop owns every attempt of a call, the first included: its first
iteration is the call itself inside a ``try``, so a call that succeeds at once
pays for no retry machinery. The rules:

* only errors whose ``retryable`` is true are retried;
* rate-limit answers are not failures: they wait for the governor's next
  free slot, not here, never use up ``attempts``, and are retried for as
  long as ``total_timeout`` allows (for ever without one);
* code ``"0001"`` is tried at most ``transient_attempts`` times;
* every other retryable error at most ``attempts`` times;
* never past ``total_timeout`` from the start of the first attempt;
* a server's ``Retry-After`` is the wait, with or without ``backoff``;
* the last error is re-raised, with ``attempts`` set on it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs

from ._config import RetryPolicy
from ._errors import MemoriesError, TransientAPIError

T = TypeVar("T")

logger = logging.getLogger("memories_async")

OnRetry = Callable[[MemoriesError, int, float], None]
"""Called before each retry with the error, the attempt that failed and the wait."""

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]


class _Budget:
    """What one call has left to spend on retries, made at its first failure."""

    __slots__ = ("_clock", "_deadline", "_policy", "failures", "transient")

    def __init__(self, policy: RetryPolicy, start: float, clock: Clock) -> None:
        self._policy = policy
        self._clock = clock
        total = policy.total_timeout
        self._deadline = None if total is None else start + total
        self.failures = 0
        self.transient = 0

    def spend(self, error: MemoriesError) -> bool:
        """Count ``error``; return whether another attempt is allowed."""
        if not error.retryable:
            return False
        policy = self._policy
        if error.rate_limited:
            allowed = True
        elif isinstance(error, TransientAPIError):
            self.transient += 1
            self.failures += 1
            allowed = self.transient < policy.transient_attempts and self.failures < policy.attempts
        else:
            self.failures += 1
            allowed = self.failures < policy.attempts
        return allowed and (self._deadline is None or self._clock() < self._deadline)

    def wait(self, error: MemoriesError, random: Callable[[], float]) -> float:
        """Seconds to wait before the next attempt (the governor adds any wait for a slot)."""
        if error.rate_limited:
            return 0.0
        retry_after = error.retry_after
        if retry_after is not None:
            wait = float(retry_after)
        else:
            wait = self._policy.wait_before(max(1, self.failures), random=random())
        if self._deadline is not None:
            wait = min(wait, max(0.0, self._deadline - self._clock()))
        return wait


@attrs.frozen
class Retrying:
    """The retry loop of a client: ``await retrying(attempt, on_retry)`` runs
    ``attempt(n)`` for n = 1, 2, … until it succeeds or ``policy`` gives up.

    Returns the result and the number of attempts made. The error of the last
    attempt is re-raised with its ``attempts`` set; an exception that is not a
    :class:`MemoriesError` propagates at once. ``on_retry(error, attempt, wait)``
    is called before each retry. ``clock``, ``sleep`` and ``random`` are those of
    the client's rate governor, so that a call runs on one time, virtual in tests.
    """

    policy: RetryPolicy
    clock: Clock = time.monotonic
    sleep: Sleep = asyncio.sleep
    random: Callable[[], float] = random.random

    async def __call__(
        self, attempt: Callable[[int], Awaitable[T]], on_retry: OnRetry | None = None
    ) -> tuple[T, int]:
        clock = self.clock
        start = clock()
        budget: _Budget | None = None
        number = 1
        while True:
            try:
                return await attempt(number), number
            except MemoriesError as error:
                if budget is None:
                    budget = _Budget(self.policy, start, clock)
                if not budget.spend(error):
                    error.attempts = number
                    raise
                wait = budget.wait(error, self.random)
                _announce(error, number, wait, on_retry)
            # The wait is outside the handler: nothing that happens during it (a
            # cancellation) is chained to the error.
            if wait > 0:
                await self.sleep(wait)
            number += 1


def _announce(error: MemoriesError, attempt: int, wait: float, on_retry: OnRetry | None) -> None:
    if logger.isEnabledFor(logging.WARNING):
        logger.warning("retrying after attempt %d in %.2fs: %s", attempt, wait, error)
    if on_retry is not None:
        on_retry(error, attempt, wait)
