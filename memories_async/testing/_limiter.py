"""Token buckets that enforce :class:`RateLimits` for the whole account, and its noisy neighbour."""

from __future__ import annotations

import time
from collections.abc import Callable

from memories_async.testing._settings import TRANSCRIPTION_ENDPOINTS, Endpoint, RateLimits
from memories_async.testing._stats import FakeStats

_ACCOUNT_TRANSCRIPTION = "transcription"
"""The key of the bucket shared by every transcription endpoint under ``transcription_qps``."""


class _Bucket:
    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.updated = now

    def refill(self, now: float) -> None:
        """Add the tokens earned since the last update, up to the capacity."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def take(self, now: float) -> float | None:
        """Take a token and return ``None``, or return the seconds until one is available."""
        self.refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return (1.0 - self.tokens) / self.rate


class _Neighbour:
    """Another client of the account, taking ``qps`` tokens a second from one bucket."""

    __slots__ = ("bucket", "due", "next_attempt", "owed", "qps", "started")

    def __init__(self, qps: float, bucket: _Bucket, now: float) -> None:
        self.qps = qps
        self.bucket = bucket
        self.started = now
        self.next_attempt = 1
        """The neighbour's k-th attempt is due ``k / qps`` seconds after ``started``."""
        self.due = now + 1 / qps
        """When the neighbour acts next: its next attempt, or the token it is owed."""
        self.owed = False

    def replay(self, now: float, stats: FakeStats) -> None:
        """Make every take the neighbour would have made up to ``now``, counting them."""
        bucket = self.bucket
        while self.due <= now:
            if self.owed:
                # The token it waited for is there now: it takes it at once, before any
                # request of the caller, as a client retrying as fast as it can would.
                # (max: rounding may leave the bucket a hair short of a whole token.)
                bucket.refill(self.due)
                bucket.tokens = max(0.0, bucket.tokens - 1.0)
                self.owed = False
            else:
                wait = bucket.take(self.due)
                if wait is not None:
                    stats.neighbour_refused += 1
                    self.owed = True
                    self.due += wait
                    continue
            stats.neighbour_taken += 1
            # Computed from the start, not by adding 1 / qps, so the schedule cannot drift.
            self.next_attempt += 1
            self.due = max(self.due, self.started + self.next_attempt / self.qps)


class RateLimiter:
    """The account's token buckets, shared by every key, created on first use.

    Each limited endpoint has its own bucket, except that under
    ``transcription_qps`` the transcription endpoints share one, from which
    the noisy neighbour (``neighbour_qps``) takes too. Its takes are replayed
    lazily, up to the time of each request judged, and counted in ``stats``.
    """

    def __init__(
        self,
        limits: RateLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
        stats: FakeStats | None = None,
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._stats = stats if stats is not None else FakeStats()
        self._buckets: dict[str, _Bucket | None] = {}
        self._neighbour: _Neighbour | None = None
        if limits.neighbour_qps is not None:
            bucket = self._new_bucket(_ACCOUNT_TRANSCRIPTION, Endpoint.VIDEO_TRANSCRIPTION)
            assert bucket is not None  # transcription_qps is set: RateLimits checks it
            self._neighbour = _Neighbour(limits.neighbour_qps, bucket, bucket.updated)

    def acquire(self, endpoint: Endpoint) -> float | None:
        """Admit a request (``None``) or return how many seconds until it would be admitted."""
        if self.limits.transcription_qps is not None and endpoint in TRANSCRIPTION_ENDPOINTS:
            bucket_key: str = _ACCOUNT_TRANSCRIPTION
        else:
            bucket_key = endpoint.bucket
        try:
            bucket = self._buckets[bucket_key]
        except KeyError:
            bucket = self._new_bucket(bucket_key, endpoint)
        if bucket is None:
            return None
        now = self._clock()
        if self._neighbour is not None and bucket is self._neighbour.bucket:
            self._neighbour.replay(now, self._stats)
        return bucket.take(now)

    def _new_bucket(self, key: str, endpoint: Endpoint) -> _Bucket | None:
        qps = self.limits.limit(endpoint)
        bucket = None
        if qps is not None:
            burst = self.limits.burst if self.limits.burst is not None else max(1.0, qps)
            bucket = _Bucket(qps, burst, self._clock())
        self._buckets[key] = bucket
        return bucket
