"""Counters a test reads to see what the fake server did."""

from __future__ import annotations

from collections import Counter, deque
from typing import Final, NamedTuple

import attrs

from memories_async.testing._settings import Endpoint

TIMELINE_LENGTH: Final = 1_000_000
"""How many of the latest requests a timeline keeps."""


class TimelineEntry(NamedTuple):
    """One request judged by the rate limiter, in :attr:`FakeStats.timeline`.

    A plain tuple, ``(at, endpoint, key, accepted)``; its repr leaves the key out.
    """

    at: float
    """Seconds since the service started (or was last reset) when the request arrived."""
    endpoint: Endpoint
    """The endpoint called."""
    key: str
    """The API key it carried."""
    accepted: bool
    """Whether the limiter let it through (``False``: answered ``0429``, unless a fault was)."""

    def __repr__(self) -> str:
        return (
            f"TimelineEntry(at={self.at!r}, endpoint={self.endpoint.value!r},"
            f" accepted={self.accepted!r})"
        )


@attrs.define
class FakeStats:
    """What the fake server received and answered since it started or was last reset.

    Every request that reached an endpoint is counted in ``requests`` (by
    endpoint), in ``requests_by_key`` (by the ``Authorization`` header sent,
    ``""`` when none) and, when it named a ``video_no``, in
    ``requests_by_video``, before authentication, rate limiting, latency or
    faults apply. ``in_flight`` is the number of requests being handled now
    and ``peak_in_flight`` its maximum. ``rate_limited`` counts ``0429``
    answers (from the buckets or injected by a fault), also by endpoint and
    by key; ``accepted_by_key`` counts the requests of an accepted key that
    the rate limiter let through. ``faults`` counts the injected faults by
    kind and ``codes`` the ``code`` of every complete JSON answer (``"0000"``
    included).

    ``neighbour_taken`` and ``neighbour_refused`` count the tokens the noisy
    neighbour of :attr:`RateLimits.neighbour_qps` took and its attempts that
    found none; the neighbour is replayed when a transcription request
    arrives, so they run up to the latest one.

    ``timeline`` is ``None`` unless the service records one
    (``record_timeline=True``): then it holds a :class:`TimelineEntry`
    ``(at, endpoint, key, accepted)`` for each of the latest 1,000,000
    requests judged by the rate limiter (every request of an active key), in
    order of arrival.

    Keys of the counters are :class:`Endpoint` and :class:`FaultKind`
    members, which are strings: ``stats.requests["list_videos"]`` and
    ``stats.requests[Endpoint.LIST_VIDEOS]`` are the same count. The repr
    shows no API key.
    """

    requests: Counter[str] = attrs.field(factory=Counter)
    requests_by_video: Counter[str] = attrs.field(factory=Counter)
    in_flight: int = 0
    peak_in_flight: int = 0
    rate_limited: int = 0
    rate_limited_by_endpoint: Counter[str] = attrs.field(factory=Counter)
    faults: Counter[str] = attrs.field(factory=Counter)
    codes: Counter[str] = attrs.field(factory=Counter)
    requests_by_key: Counter[str] = attrs.field(factory=Counter, repr=False)
    accepted_by_key: Counter[str] = attrs.field(factory=Counter, repr=False)
    rate_limited_by_key: Counter[str] = attrs.field(factory=Counter, repr=False)
    neighbour_taken: int = 0
    neighbour_refused: int = 0
    timeline: deque[TimelineEntry] | None = attrs.field(default=None, repr=False)

    @property
    def total_requests(self) -> int:
        """All requests received, over every endpoint."""
        return self.requests.total()

    @property
    def total_faults(self) -> int:
        """All faults injected, of every kind."""
        return self.faults.total()

    def reset(self) -> None:
        """Zero every counter and empty the timeline.

        ``in_flight`` keeps counting requests still being handled.
        """
        self.requests.clear()
        self.requests_by_video.clear()
        self.peak_in_flight = self.in_flight
        self.rate_limited = 0
        self.rate_limited_by_endpoint.clear()
        self.faults.clear()
        self.codes.clear()
        self.requests_by_key.clear()
        self.accepted_by_key.clear()
        self.rate_limited_by_key.clear()
        self.neighbour_taken = 0
        self.neighbour_refused = 0
        if self.timeline is not None:
            self.timeline.clear()
