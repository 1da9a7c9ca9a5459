"""The fake server's settings: endpoints, keys, wire format, latency, rate limits, faults.

All of these are immutable values. A server holds the current one of each and a
test swaps them by assignment (``server.latency = Latency.fixed(0.2)``).
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Collection, Mapping
from typing import Literal

import attrs


class Endpoint(enum.StrEnum):
    """An endpoint of the fake service; the value is its path under ``/serve/api/v1/``."""

    VIDEO_TRANSCRIPTION = "get_video_transcription"
    VIDEO_CAPTION = "get_video_caption"
    """The newer name of ``get_video_transcription``: same answers, same rate-limit bucket."""
    AUDIO_TRANSCRIPTION = "get_audio_transcription"
    PUBLIC_VIDEO_TRANSCRIPTION = "get_public_video_transcription"
    PUBLIC_AUDIO_TRANSCRIPTION = "get_public_audio_transcription"
    LIST_VIDEOS = "list_videos"
    GET_METADATA = "get_metadata"
    LIST_UNIQUE_IDS = "list_unique_ids"

    @property
    def path(self) -> str:
        """The absolute request path, e.g. ``/serve/api/v1/list_videos``."""
        return f"{API_PREFIX}{self.value}"

    @property
    def bucket(self) -> Endpoint:
        """The endpoint whose rate limit applies (``get_video_caption`` shares its original's)."""
        return Endpoint.VIDEO_TRANSCRIPTION if self is Endpoint.VIDEO_CAPTION else self


API_PREFIX = "/serve/api/v1/"
"""The path prefix of every endpoint."""

TRANSCRIPTION_ENDPOINTS = frozenset(
    {
        Endpoint.VIDEO_TRANSCRIPTION,
        Endpoint.VIDEO_CAPTION,
        Endpoint.AUDIO_TRANSCRIPTION,
        Endpoint.PUBLIC_VIDEO_TRANSCRIPTION,
        Endpoint.PUBLIC_AUDIO_TRANSCRIPTION,
    }
)
"""The five endpoints that answer a transcript."""


class KeyState(enum.StrEnum):
    """What the fake answers for a configured API key."""

    ACTIVE = "active"
    """The key works."""
    NO_CREDITS = "no_credits"
    """Every request answers code ``0402`` (out of credits)."""
    DISABLED = "disabled"
    """Every request answers code ``0403`` (developer account disabled)."""


class TranscriptShape(enum.StrEnum):
    """Which of the two documented transcript shapes the fake serves."""

    LIVE = "live"
    """What the live service sends: ``transcriptions[]`` of ``index``, ``content`` and
    ``startTime``/``endTime`` as strings of whole seconds."""
    DOCUMENTED = "documented"
    """The v1.2 table's shape: ``transcription[]`` of ``index``, ``text`` and float
    ``start``/``end``."""


@attrs.frozen
class WireFormat:
    """How answers are spelled on the wire.

    The defaults reproduce the live service. ``numbers_as_strings=False`` sends
    ``list_videos``/``get_metadata`` numbers as JSON numbers (as some versions
    do). ``extra_fields=True`` adds fields a client must ignore (``createTime``,
    ``video_bucket`` and ``video_blob`` in transcripts, ``unique_id`` and
    ``tags`` in video records). ``error_flags=True`` adds ``"data": null,
    "success": false, "failed": true`` to error answers, which otherwise carry
    only ``code`` and ``msg``.
    """

    transcript_shape: TranscriptShape = attrs.field(
        default=TranscriptShape.LIVE, converter=TranscriptShape
    )
    numbers_as_strings: bool = True
    extra_fields: bool = False
    error_flags: bool = False


@attrs.frozen
class Latency:
    """How long the fake waits before answering each request.

    Build one with :meth:`none`, :meth:`fixed`, :meth:`uniform` or
    :meth:`lognormal`. Random latencies are drawn from the server's seeded
    generator, so a run with requests in the same order sees the same delays.
    """

    distribution: Literal["none", "fixed", "uniform", "lognormal"] = "none"
    low: float = 0.0
    high: float = 0.0
    sigma: float = 0.0

    @classmethod
    def none(cls) -> Latency:
        """Answer at once."""
        return cls()

    @classmethod
    def fixed(cls, seconds: float, /) -> Latency:
        """Wait exactly ``seconds``; raises :class:`ValueError` if negative."""
        _check_non_negative("seconds", seconds)
        return cls("fixed", seconds, seconds)

    @classmethod
    def uniform(cls, low: float, high: float, /) -> Latency:
        """Wait a uniformly random time between ``low`` and ``high`` seconds."""
        _check_non_negative("low", low)
        if high < low:
            msg = f"'high' must be >= 'low', got low={low} high={high}"
            raise ValueError(msg)
        return cls("uniform", low, high)

    @classmethod
    def lognormal(cls, mean: float, /, sigma: float = 0.5) -> Latency:
        """Wait a log-normally distributed time whose mean is ``mean`` seconds.

        ``sigma`` is the standard deviation of the underlying normal; larger
        values give a longer tail.
        """
        _check_non_negative("mean", mean)
        _check_non_negative("sigma", sigma)
        return cls("lognormal", mean, mean, sigma)

    def sample(self, rng: random.Random, /) -> float:
        """Draw one delay in seconds."""
        if self.distribution == "uniform":
            return rng.uniform(self.low, self.high)
        if self.distribution == "lognormal":
            if self.low <= 0:
                return 0.0
            mu = math.log(self.low) - self.sigma**2 / 2
            return rng.lognormvariate(mu, self.sigma)
        return self.low


def _check_non_negative(name: str, value: float) -> None:
    if not value >= 0:
        msg = f"{name!r} must be >= 0, got {value}"
        raise ValueError(msg)


def _endpoint_limits(value: Mapping[Endpoint | str, float | None]) -> dict[Endpoint, float | None]:
    limits: dict[Endpoint, float | None] = {}
    for name, qps in value.items():
        bucket = Endpoint(name).bucket
        if bucket in limits:
            msg = f"rate limit for {bucket.value!r} given twice (get_video_caption is its alias)"
            raise ValueError(msg)
        limits[bucket] = qps
    return limits


@attrs.frozen
class RateLimits:
    """Per-account rate limits in queries per second, enforced by token buckets.

    Every key of the fake shares every bucket, as every key and process of a
    real account share its quota. ``qps`` applies to every endpoint not named
    in ``per_endpoint``; ``None`` means unlimited. By default each endpoint
    has its own bucket (``get_video_caption`` shares its original's);
    ``transcription_qps`` instead makes the five transcription endpoints,
    visual and audio, private and public, draw from one account-wide bucket
    of that rate. A bucket holds ``burst`` tokens (default ``max(1, qps)``, a
    lenient limiter; ``1`` allows no burst at all) and starts full.

    The limiter judges a request when it arrives, before the latency, as a
    gateway does: the answer still comes after the latency, so a refusal
    costs a round trip. A refused request takes no token. It answers code
    ``0429`` with msg ``"Request has exceeded the limit."`` and HTTP 200, or
    HTTP 429 when ``http_429`` is set; ``retry_after`` adds a ``Retry-After``
    header (whole seconds until a token is available, at least 1).

    ``neighbour_qps`` adds a noisy neighbour: another client of the same
    account, invisible to the caller, that consumes ``neighbour_qps`` of the
    account-wide transcription bucket (so it needs ``transcription_qps``, and
    must stay below it). It tries to take a token at ``k / neighbour_qps``
    seconds (k = 1, 2, ...) after the limiter was created (when the limits
    were set or the server reset); when the bucket is empty it takes the next
    token the moment one is available, before any request of the caller, and
    keeps its schedule, so it consumes exactly ``neighbour_qps`` on average.

    :meth:`strict` builds the strictest plausible limits. For refusals that
    have nothing to do with the caller's rate (a share of requests refused
    whatever the pacing), add ``FaultRule(FaultKind.RATE_LIMITED,
    probability=p)`` to the server's faults.
    """

    qps: float | None = None
    per_endpoint: Mapping[Endpoint, float | None] = attrs.field(
        factory=dict, converter=_endpoint_limits
    )
    burst: float | None = None
    http_429: bool = False
    retry_after: bool = False
    transcription_qps: float | None = None
    neighbour_qps: float | None = None

    def __attrs_post_init__(self) -> None:
        for qps in (self.qps, self.transcription_qps, *self.per_endpoint.values()):
            if qps is not None and not qps > 0:
                msg = f"a rate limit must be > 0 queries per second or None, got {qps}"
                raise ValueError(msg)
        if self.burst is not None and not self.burst >= 1:
            msg = f"'burst' must be >= 1 or None, got {self.burst}"
            raise ValueError(msg)
        if self.transcription_qps is not None:
            for endpoint in self.per_endpoint:
                if endpoint in TRANSCRIPTION_ENDPOINTS:
                    msg = (
                        f"rate limit for {endpoint.value!r} given both in 'per_endpoint' and by"
                        " 'transcription_qps'; drop it from 'per_endpoint'"
                    )
                    raise ValueError(msg)
        if self.neighbour_qps is not None:
            if self.transcription_qps is None:
                msg = (
                    "'neighbour_qps' needs the account-wide transcription bucket: set"
                    " 'transcription_qps' too, or use RateLimits.strict(qps, neighbour_qps=...)"
                )
                raise ValueError(msg)
            _check_neighbour(self.neighbour_qps, self.transcription_qps, "transcription_qps")

    @classmethod
    def documented(cls, *, transcription_qps: float = 1.0, http_429: bool = False) -> RateLimits:
        """The limits in the service's newest docs, with a lenient limiter.

        Transcription endpoints ``transcription_qps`` (1, or 5 as in the v1.2
        docs) each, ``list_videos`` 5, ``get_metadata`` 1, ``list_unique_ids``
        unlimited; each bucket allows a burst of its rate.
        """
        per_endpoint: dict[Endpoint | str, float | None] = {
            endpoint: transcription_qps
            for endpoint in TRANSCRIPTION_ENDPOINTS
            if endpoint is not Endpoint.VIDEO_CAPTION
        }
        per_endpoint[Endpoint.LIST_VIDEOS] = 5.0
        per_endpoint[Endpoint.GET_METADATA] = 1.0
        return cls(per_endpoint=per_endpoint, http_429=http_429)

    @classmethod
    def strict(
        cls,
        qps: float,
        /,
        *,
        burst: float = 1.0,
        http_429: bool = False,
        retry_after: bool = False,
        neighbour_qps: float | None = None,
    ) -> RateLimits:
        """The strictest limits the service's docs allow, to test a client's pacing.

        Every transcription endpoint draws from one account-wide bucket of
        ``qps`` (visual and audio together); ``list_videos`` has its own of 5
        QPS and ``get_metadata`` its own of 1 QPS, as documented;
        ``list_unique_ids`` is unlimited. Every bucket holds ``burst`` tokens,
        1 by default: two requests closer than ``1 / qps`` are refused even
        at the nominal rate. ``neighbour_qps`` (below ``qps``) lets a noisy
        neighbour consume part of the transcription quota.
        """
        if neighbour_qps is not None:
            _check_neighbour(neighbour_qps, qps, "qps")
        return cls(
            per_endpoint={Endpoint.LIST_VIDEOS: 5.0, Endpoint.GET_METADATA: 1.0},
            burst=burst,
            http_429=http_429,
            retry_after=retry_after,
            transcription_qps=qps,
            neighbour_qps=neighbour_qps,
        )

    @classmethod
    def from_options(
        cls,
        *,
        qps: float | None = None,
        strict: bool = False,
        burst: float | None = None,
        http_429: bool = False,
        retry_after: bool = False,
        neighbour_qps: float | None = None,
    ) -> RateLimits:
        """The limits a command line asks for: :meth:`strict`, or lenient ones of ``qps``.

        With ``strict``, ``qps`` is the transcription quota (default 5) and
        ``burst`` defaults to 1; without, every endpoint gets ``qps`` (``None``:
        unlimited) and buckets of ``burst`` (default: the qps).
        ``neighbour_qps`` needs ``strict``: raises :class:`ValueError` otherwise.
        """
        if strict:
            return cls.strict(
                5.0 if qps is None else qps,
                burst=1.0 if burst is None else burst,
                http_429=http_429,
                retry_after=retry_after,
                neighbour_qps=neighbour_qps,
            )
        if neighbour_qps is not None:
            msg = (
                "'neighbour_qps' shares the account-wide transcription quota of the strict"
                " limits; add strict=True (--strict on the command line)"
            )
            raise ValueError(msg)
        return cls(qps=qps, burst=burst, http_429=http_429, retry_after=retry_after)

    def limit(self, endpoint: Endpoint, /) -> float | None:
        """Return the queries per second allowed on ``endpoint``, ``None`` if unlimited.

        Under ``transcription_qps`` this is the rate of the bucket that the
        five transcription endpoints share.
        """
        if self.transcription_qps is not None and endpoint in TRANSCRIPTION_ENDPOINTS:
            return self.transcription_qps
        return self.per_endpoint.get(endpoint.bucket, self.qps)


def _check_neighbour(neighbour_qps: float, qps: float, qps_name: str) -> None:
    if not 0 < neighbour_qps < qps:
        msg = f"'neighbour_qps' must be above 0 and below {qps_name!r} ({qps}), got {neighbour_qps}"
        raise ValueError(msg)


class FaultKind(enum.StrEnum):
    """A failure the fake can inject instead of (or before) its normal answer."""

    HTTP_401 = "http_401"
    """HTTP 401 with a gateway's HTML error page: the key refused before the API."""
    HTTP_403 = "http_403"
    """HTTP 403 with a gateway's HTML error page."""
    HTTP_500 = "http_500"
    """HTTP 500 with an HTML error page."""
    HTTP_502 = "http_502"
    """HTTP 502 with a proxy's HTML error page."""
    HTTP_503 = "http_503"
    """HTTP 503 with a proxy's HTML error page."""
    NETWORK_ABNORMAL = "network_abnormal"
    """HTTP 200, code ``0001``, msg ``"network abnormal"`` (transient on the real service)."""
    RATE_LIMITED = "rate_limited"
    """A ``0429`` answer whatever the buckets say (shaped by the current :class:`RateLimits`).

    With a ``probability``, a share of requests refused whatever the caller's rate, as
    when something else on the account, or the service itself, is at fault."""
    TRUNCATED_JSON = "truncated_json"
    """The normal answer's status and JSON content type, but only a prefix of its body."""
    CONNECTION_RESET = "connection_reset"
    """Headers and part of the body, then the connection is reset."""
    HANG = "hang"
    """Wait ``hang_seconds`` (an hour by default) before the normal answer."""
    HTML_200 = "html_200"
    """HTTP 200 with ``text/html`` and an HTML page instead of JSON."""


DEFAULT_RANDOM_FAULTS = (
    FaultKind.HTTP_500,
    FaultKind.HTTP_502,
    FaultKind.HTTP_503,
    FaultKind.NETWORK_ABNORMAL,
    FaultKind.TRUNCATED_JSON,
    FaultKind.CONNECTION_RESET,
    FaultKind.HTML_200,
)
"""The kinds a plain ``fault_rate`` draws from: every kind but hangs and rate limiting."""


@attrs.frozen(init=False)
class FaultRule:
    """When to inject which fault.

    A request matches the rule if its endpoint is in ``endpoints`` and its
    ``video_no`` parameter in ``video_nos`` (``None`` matches anything,
    including requests without a video number). With ``first_attempts=K``
    only the first K matching requests per video number (requests without a
    number count together) are eligible, so ``FaultRule(FaultKind.HTTP_503,
    video_nos={"VI…"}, first_attempts=2)`` fails twice, then lets the third
    attempt through. An eligible request is faulted with ``probability``
    (drawn from the server's seeded generator); when several ``kinds`` are
    given, one is drawn. Rules are tried in order; the first that fires wins.
    """

    kinds: tuple[FaultKind, ...]
    probability: float
    video_nos: frozenset[str] | None
    endpoints: frozenset[Endpoint] | None
    first_attempts: int | None

    def __init__(
        self,
        *kinds: FaultKind | str,
        probability: float = 1.0,
        video_nos: Collection[str] | None = None,
        endpoints: Collection[Endpoint | str] | None = None,
        first_attempts: int | None = None,
    ) -> None:
        if not kinds:
            msg = "name at least one FaultKind, e.g. FaultRule(FaultKind.HTTP_503)"
            raise ValueError(msg)
        if not 0.0 <= probability <= 1.0:
            msg = f"'probability' must be between 0 and 1, got {probability}"
            raise ValueError(msg)
        if first_attempts is not None and first_attempts < 1:
            msg = f"'first_attempts' must be >= 1 or None, got {first_attempts}"
            raise ValueError(msg)
        if isinstance(video_nos, str):
            msg = "'video_nos' must be a collection of numbers, not one string"
            raise TypeError(msg)
        self.__attrs_init__(
            tuple(FaultKind(kind) for kind in kinds),
            probability,
            None if video_nos is None else frozenset(video_nos),
            None if endpoints is None else frozenset(Endpoint(e) for e in endpoints),
            first_attempts,
        )

    @classmethod
    def random(
        cls, rate: float, /, kinds: Collection[FaultKind | str] = DEFAULT_RANDOM_FAULTS
    ) -> FaultRule:
        """Fault any request with probability ``rate``, drawing the kind from ``kinds``."""
        return cls(*kinds, probability=rate)
