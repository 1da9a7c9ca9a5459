"""The rate governor: one per client, shared by every call it makes.

Three mechanisms, in the order a request meets them:

1. **Shared cooldown.** When any call gets a rate-limit answer (code
   ``"0429"`` or HTTP 429), every call of the client waits until the cooldown
   ends, not only the one that saw it. The cooldown is the server's
   ``Retry-After`` when given, else grows exponentially with consecutive
   rate-limit answers (1 s, 2 s, 4 s … up to ``max_cooldown``).
2. **Token bucket.** With a ``rate`` (requests per second), requests are
   spaced ``1 / rate`` apart, allowing a burst of ``burst`` requests.
3. **Adaptive rate** (AIMD). The first rate-limit answer sets the rate to 90 %
   of the rate of successful answers over the last seconds (what the server
   demonstrably accepts); each later one cuts the rate in force by 30 %.
   Answers to requests sent before the latest cut do not cut it again.
   Successes add the rate back slowly (``recovery`` requests per second, or
   5 %, per second, whichever is more), never above the configured ``rate``.
   Default settings therefore find a server's unknown limit by themselves.

The memories.ai limits are per account and low: 1 to 5 QPS for the
transcription endpoints, 5 QPS for ``list_videos``. Setting ``rate`` to the
documented limit of your account avoids nearly all rate-limit answers.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Awaitable, Callable

import attrs

MIN_RATE = 0.1
"""The adaptive rate never drops below this many requests per second."""


@attrs.frozen(slots=True)
class GovernorStats:
    """A snapshot of the governor's state and counters."""

    rate: float | None
    """Requests per second in force now (``None``: no limit)."""
    rate_limited: int
    """Rate-limit answers seen."""
    cooldowns: int
    """Cooldowns started (several answers inside one cooldown start one)."""
    waited: float
    """Seconds callers spent waiting in the governor, summed over callers."""


class RateGovernor:
    """Paces the requests of one client; see the module documentation.

    ``clock`` and ``sleep`` are injectable so the pacing logic is testable
    without real time.
    """

    def __init__(
        self,
        *,
        rate: float | None = None,
        burst: int = 1,
        adaptive: bool = True,
        cooldown: float = 1.0,
        max_cooldown: float = 30.0,
        recovery: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if rate is not None and not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"'rate' must be > 0 or None, got {rate!r}")
        if not (max_cooldown >= 0 and math.isfinite(max_cooldown)):
            raise ValueError(f"'max_cooldown' must be >= 0, got {max_cooldown!r}")
        if burst < 1:
            raise ValueError(f"'burst' must be >= 1, got {burst!r}")
        self._ceiling = rate
        self._rate = rate
        self._burst = burst
        self._adaptive = adaptive
        self._cooldown_base = cooldown
        self._max_cooldown = max_cooldown
        self._recovery = recovery
        self._clock = clock
        self._sleep = sleep
        self._next_slot = -math.inf
        self._cooldown_until = -math.inf
        self._consecutive = 0
        self._last_decrease = -math.inf
        self._successes: collections.deque[float] = collections.deque(maxlen=4096)
        self._first_request: float | None = None
        self._rate_limited = 0
        self._cooldowns = 0
        self._waited = 0.0

    def __repr__(self) -> str:
        rate = "unlimited" if self._rate is None else f"{self._rate:.3g}/s"
        return f"<RateGovernor rate={rate} adaptive={self._adaptive}>"

    @property
    def rate(self) -> float | None:
        """Requests per second in force now (``None``: unlimited)."""
        return self._rate

    def stats(self) -> GovernorStats:
        """Counters since the governor was made."""
        return GovernorStats(self._rate, self._rate_limited, self._cooldowns, self._waited)

    def try_acquire(self) -> float | None:
        """Take the right to send now if it is free, without waiting; ``None`` if not.

        The common case (no cooldown, no rate or a free slot) costs no
        coroutine; when this returns ``None``, await :meth:`acquire`.
        """
        now = self._clock()
        if self._cooldown_until > now:
            return None
        rate = self._rate
        if rate is not None:
            slot, interval = self._earliest_slot(now, rate)
            if slot > now:
                return None
            self._next_slot = slot + interval
        if self._first_request is None:
            self._first_request = now
        return now

    async def acquire(self) -> float:
        """Wait until a request may be sent; return the time sent, on the governor's clock.

        Pass the returned time to :meth:`on_rate_limited`, so that answers to
        requests sent before the latest decrease do not decrease the rate again.
        """
        started = now = self._clock()
        while True:
            if self._cooldown_until > now:
                await self._sleep(self._cooldown_until - now)
                now = self._clock()
                continue
            rate = self._rate
            if rate is None:
                break
            slot, interval = self._earliest_slot(now, rate)
            self._next_slot = slot + interval
            if slot <= now:
                break
            await self._sleep(slot - now)
            now = self._clock()
            if self._cooldown_until <= now:
                break
        if now > started:
            self._waited += now - started
        if self._first_request is None:
            self._first_request = now
        return now

    def _earliest_slot(self, now: float, rate: float) -> tuple[float, float]:
        """The first free send time at ``rate`` (a burst may reach back), and the spacing."""
        interval = 1.0 / rate
        return max(self._next_slot, now - (self._burst - 1) * interval), interval

    def on_success(self) -> None:
        """Record a successful answer: ends the run of rate limits, recovers the rate."""
        self._consecutive = 0
        if not self._adaptive:
            return
        rate = self._rate
        if rate is None:
            self._successes.append(self._clock())
            return
        if rate == self._ceiling:
            return
        # About `recovery` req/s more per second (5 %/s at high rates): at `rate`
        # successes per second, each adds 1/rate of the per-second step.
        rate += max(self._recovery, 0.05 * rate) / max(rate, MIN_RATE)
        if self._ceiling is not None:
            rate = min(rate, self._ceiling)
        self._rate = rate

    def on_rate_limited(
        self, *, sent_at: float | None = None, retry_after: float | None = None
    ) -> float:
        """Record a rate-limit answer; start or extend the shared cooldown.

        Returns the seconds of cooldown from now.
        """
        self._rate_limited += 1
        now = self._clock()
        stale = sent_at is not None and sent_at < self._last_decrease
        if not stale:
            self._consecutive += 1
            self._decrease(now)
        if retry_after is not None:
            pause = min(retry_after, self._max_cooldown * 4)
        elif self._cooldown_base <= 0:
            pause = 0.0
        else:
            exponent = max(0, self._consecutive - 1)
            pause = min(self._max_cooldown, self._cooldown_base * 2.0**exponent)
        until = now + pause
        if until > self._cooldown_until:
            if self._cooldown_until <= now:
                self._cooldowns += 1
            self._cooldown_until = until
        return max(0.0, self._cooldown_until - now)

    def _decrease(self, now: float) -> None:
        self._last_decrease = now
        if not self._adaptive:
            return
        if self._rate is None:
            rate = 0.9 * self._success_rate(now)
            self._successes.clear()
        else:
            rate = 0.7 * self._rate
        self._rate = max(MIN_RATE, rate)
        self._next_slot = max(self._next_slot, now)

    def _success_rate(self, now: float) -> float:
        """Successful answers per second over the last one to five seconds (1.0 if none)."""
        started = self._first_request if self._first_request is not None else now
        window = min(5.0, max(1.0, now - started))
        count = sum(1 for t in self._successes if now - t <= window)
        return count / window if count else 1.0
