"""Token buckets that enforce :class:`RateLimits` per account and endpoint."""

from __future__ import annotations

import time
from collections.abc import Callable

from memories_async.testing._settings import Endpoint, RateLimits


class _Bucket:
    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.updated = now

    def take(self, now: float) -> float | None:
        """Take a token and return ``None``, or return the seconds until one is available."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return (1.0 - self.tokens) / self.rate


class RateLimiter:
    """One token bucket per limited endpoint, shared by every key, created on first use."""

    def __init__(self, limits: RateLimits, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._buckets: dict[Endpoint, _Bucket | None] = {}

    def acquire(self, endpoint: Endpoint) -> float | None:
        """Admit a request (``None``) or return how many seconds until it would be admitted."""
        bucket_key = endpoint.bucket
        try:
            bucket = self._buckets[bucket_key]
        except KeyError:
            bucket = self._new_bucket(bucket_key)
        if bucket is None:
            return None
        return bucket.take(self._clock())

    def _new_bucket(self, endpoint: Endpoint) -> _Bucket | None:
        qps = self.limits.limit(endpoint)
        bucket = None
        if qps is not None:
            burst = self.limits.burst if self.limits.burst is not None else max(1.0, qps)
            bucket = _Bucket(qps, burst, self._clock())
        self._buckets[endpoint] = bucket
        return bucket
