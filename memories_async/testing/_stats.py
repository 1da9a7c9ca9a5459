"""Counters a test reads to see what the fake server did."""

from __future__ import annotations

from collections import Counter

import attrs


@attrs.define
class FakeStats:
    """What the fake server received and answered since it started or was last reset.

    Every request that reached an endpoint is counted in ``requests`` (by
    endpoint) and, when it named a ``video_no``, in ``requests_by_video``,
    before latency, faults, authentication or rate limiting apply.
    ``in_flight`` is the number of requests being handled now and
    ``peak_in_flight`` its maximum. ``rate_limited`` counts ``0429`` answers
    (from the buckets or injected), ``faults`` the injected faults by kind and
    ``codes`` the ``code`` of every complete JSON answer (``"0000"`` included).

    Keys are :class:`Endpoint` and :class:`FaultKind` members, which are
    strings: ``stats.requests["list_videos"]`` and
    ``stats.requests[Endpoint.LIST_VIDEOS]`` are the same count.
    """

    requests: Counter[str] = attrs.field(factory=Counter)
    requests_by_video: Counter[str] = attrs.field(factory=Counter)
    in_flight: int = 0
    peak_in_flight: int = 0
    rate_limited: int = 0
    rate_limited_by_endpoint: Counter[str] = attrs.field(factory=Counter)
    faults: Counter[str] = attrs.field(factory=Counter)
    codes: Counter[str] = attrs.field(factory=Counter)

    @property
    def total_requests(self) -> int:
        """All requests received, over every endpoint."""
        return self.requests.total()

    @property
    def total_faults(self) -> int:
        """All faults injected, of every kind."""
        return self.faults.total()

    def reset(self) -> None:
        """Zero every counter; ``in_flight`` keeps counting requests still being handled."""
        self.requests.clear()
        self.requests_by_video.clear()
        self.peak_in_flight = self.in_flight
        self.rate_limited = 0
        self.rate_limited_by_endpoint.clear()
        self.faults.clear()
        self.codes.clear()
