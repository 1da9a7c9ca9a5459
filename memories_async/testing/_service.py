"""The fake memories.ai service: an aiohttp application answering like the real one.

Each request goes through the same steps, in this order (after the changes of the
library scripted by :meth:`FakeService.processing` and :meth:`FakeService.add_video`
whose time has come are made):

1. counted in :attr:`FakeService.stats` (endpoint, key, video number, in-flight);
2. authenticated: a missing or unknown ``Authorization`` key is to be answered
   ``0401``, a key out of credits ``0402``, a disabled one ``0403``;
3. judged by the account's rate limiter (:class:`RateLimits`), for an active
   key only, at once: a request finding no token is to be answered ``0429``
   and takes none, an accepted one has taken its token; the decision goes to
   the timeline when one is recorded;
4. delayed by the configured :class:`Latency`;
5. possibly replaced or damaged by an injected fault (:class:`FaultRule`);
6. answered ``0401``/``0402``/``0403`` or ``0429`` if step 2 or 3 refused it;
7. validated: a missing or malformed parameter answers ``0003``;
8. answered from the library.

The limiter decides on arrival (step 3) as a real gateway does, before the
latency: random latency cannot reorder the requests it sees, and the gaps it
judges are the gaps the client left between its requests. A refused request
is still answered after the latency, so a refusal costs the client a round
trip as it does in reality. A request that a fault then replaces (an HTTP
5xx, a reset connection...) has used its token all the same, as the gateway
counted it before the failure behind it.

Choices where the real service is ambiguous: an unknown video number, or a
number of the wrong library (``PI-`` on a private endpoint or the reverse), on a
transcription endpoint answers ``0001`` with msg ``"video not found"`` (the code
the real service uses for that on some endpoints), while ``get_metadata``
answers ``0000`` with ``data: null``. A video of another namespace, a video not
in status ``PARSE`` and a video without that transcript all answer ``0000`` with
``data: null``. ``list_videos`` lists newest first and uses a page size of 20
when the body names none.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import heapq
import itertools
import math
import re
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final, assert_never

import attrs
import orjson
from aiohttp import web

from memories_async._models import TranscriptKind
from memories_async.testing import _generate, _render
from memories_async.testing._faults import FaultInjector
from memories_async.testing._library import FakeLibrary, FakeSegment, FakeVideo, Generated
from memories_async.testing._limiter import RateLimiter
from memories_async.testing._settings import (
    TRANSCRIPTION_ENDPOINTS,
    Endpoint,
    FaultKind,
    FaultRule,
    KeyState,
    Latency,
    RateLimits,
    WireFormat,
)
from memories_async.testing._stats import TIMELINE_LENGTH, FakeStats, TimelineEntry

DEFAULT_API_KEY: Final = "sk-test-fake-key"
"""The key a fake accepts when none are configured; obviously not a real key."""

DEFAULT_PAGE_SIZE: Final = 20
"""The ``list_videos`` page size used when the request body names none."""

MAX_PAGE_SIZE: Final = 200
"""The largest ``list_videos`` page size accepted."""

RATE_LIMIT_MSG: Final = "Request has exceeded the limit."

_VIDEO_NO = re.compile(r"[A-Za-z0-9_-]{1,64}")
_JSON_HEADERS: Final = {"Content-Type": _render.JSON_CONTENT_TYPE}
_HTML_HEADERS: Final = {"Content-Type": _render.HTML_CONTENT_TYPE}
_KIND: Final = {
    Endpoint.VIDEO_TRANSCRIPTION: TranscriptKind.VISUAL,
    Endpoint.VIDEO_CAPTION: TranscriptKind.VISUAL,
    Endpoint.PUBLIC_VIDEO_TRANSCRIPTION: TranscriptKind.VISUAL,
    Endpoint.AUDIO_TRANSCRIPTION: TranscriptKind.AUDIO,
    Endpoint.PUBLIC_AUDIO_TRANSCRIPTION: TranscriptKind.AUDIO,
}
_PUBLIC: Final = frozenset(
    {Endpoint.PUBLIC_VIDEO_TRANSCRIPTION, Endpoint.PUBLIC_AUDIO_TRANSCRIPTION}
)


class _Answer:
    """A complete JSON answer before it is sent (or damaged by a fault)."""

    __slots__ = ("body", "code", "headers", "status")

    def __init__(
        self, body: bytes, code: str, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        self.body = body
        self.code = code
        self.status = status
        self.headers = headers


_OK_NULL: Final = _Answer(_render.OK_NULL, "0000")
_REFUSALS: Final[dict[KeyState | None, tuple[str, str]]] = {
    None: ("0401", "Authorization invalid"),
    KeyState.NO_CREDITS: ("0402", "Insufficient credits"),
    KeyState.DISABLED: ("0403", "Developer account disabled"),
}


class FakeService:
    """The fake memories.ai API as an :class:`aiohttp.web.Application`, without a socket.

    :attr:`app` serves every endpoint the SDK uses under ``/serve/api/v1/``.
    Use :class:`FakeServer` to listen on a port; use a bare ``FakeService``
    with aiohttp's own test utilities. ``library`` defaults to
    ``FakeLibrary.generate(100, seed=seed, public=5)``; ``api_keys`` (a list
    of active keys, or a mapping of key to :class:`KeyState`) defaults to
    :data:`DEFAULT_API_KEY`. ``seed`` seeds the generators of random latency,
    fault draws and truncation points. ``hang_seconds`` is how long a
    :attr:`FaultKind.HANG` waits. ``cache_bytes`` bounds the cache of rendered
    bodies. ``record_timeline=True`` keeps a timeline of the rate limiter's
    decisions in :attr:`FakeStats.timeline`, to chart accepted and refused
    requests over time. ``clock`` (seconds, ``time.monotonic`` by
    default) is what the rate limiter and the timeline read: a test may pass
    a virtual one, and ``sleep`` (``asyncio.sleep`` by default) how the
    service waits out the latency and hangs.

    The rate limiter judges each request as it arrives, before the latency,
    like the gateway of the real service; see :class:`RateLimits` for strict
    account-wide limits, a noisy neighbour and refusals unrelated to the
    caller's rate.

    Settings can be changed at any time: ``keys`` is a plain dict,
    ``latency``, ``hang_seconds`` and ``library`` plain attributes, and
    assigning ``rate_limits``, ``faults`` or ``wire_format`` takes effect
    from the next request (fresh buckets, fresh attempt counts, re-rendered
    bodies). The service is not thread-safe: change it from the thread that
    runs its event loop.
    """

    def __init__(
        self,
        library: FakeLibrary | None = None,
        *,
        api_keys: Mapping[str, KeyState] | Iterable[str] | None = None,
        rate_limits: RateLimits | None = None,
        latency: Latency | None = None,
        faults: Sequence[FaultRule] = (),
        wire_format: WireFormat | None = None,
        hang_seconds: float = 3600.0,
        seed: int = 0,
        cache_bytes: int = 256 * 2**20,
        record_timeline: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if hang_seconds < 0:
            msg = f"'hang_seconds' must be >= 0, got {hang_seconds}"
            raise ValueError(msg)
        if cache_bytes < 0:
            msg = f"'cache_bytes' must be >= 0, got {cache_bytes}"
            raise ValueError(msg)
        self.library = (
            library if library is not None else FakeLibrary.generate(100, seed=seed, public=5)
        )
        self.keys: dict[str, KeyState] = _key_states(api_keys)
        """Configured API keys and their states; add, remove or change entries freely."""
        self.latency = latency if latency is not None else Latency.none()
        self.hang_seconds = hang_seconds
        self.seed = seed
        self.stats = FakeStats(
            timeline=collections.deque(maxlen=TIMELINE_LENGTH) if record_timeline else None
        )
        """Counters of what was received and answered; see :class:`FakeStats`."""
        self._clock = clock
        self._sleep = sleep
        self._started = clock()
        self._cache = _render.BodyCache(cache_bytes)
        self._cached_library: tuple[int, int] = (id(self.library), self.library.revision)
        self._wire = wire_format if wire_format is not None else WireFormat()
        self._latency_rng = _generate.seeded_random("latency")
        self._fault_rng = _generate.seeded_random("faults")
        self._limiter = self._new_limiter(rate_limits if rate_limits is not None else RateLimits())
        self._injector = FaultInjector(faults, self._fault_rng)
        self._reseed()
        self._waiting: set[asyncio.Task[Any]] = set()
        self._closing = False
        # Changes of the library due at a time of the clock: (due, order, change).
        self._schedule: list[tuple[float, int, Callable[[], object]]] = []
        self._order = itertools.count()
        self.app = self._build_app()
        """The :class:`aiohttp.web.Application` serving the endpoints."""

    @property
    def api_key(self) -> str:
        """A key that is accepted: the first :attr:`KeyState.ACTIVE` one configured.

        Raises :class:`LookupError` if no key is active.
        """
        for key, state in self.keys.items():
            if state is KeyState.ACTIVE:
                return key
        msg = "no active API key is configured; set server.keys[key] = KeyState.ACTIVE"
        raise LookupError(msg)

    @property
    def rate_limits(self) -> RateLimits:
        """The rate limits in force; assigning new ones starts with full buckets.

        The noisy neighbour's schedule, if any, starts again from the assignment.
        """
        return self._limiter.limits

    @rate_limits.setter
    def rate_limits(self, limits: RateLimits) -> None:
        self._limiter = self._new_limiter(limits)

    @property
    def faults(self) -> tuple[FaultRule, ...]:
        """The fault rules in force; assigning new ones restarts attempt counts."""
        return self._injector.rules

    @faults.setter
    def faults(self, rules: Sequence[FaultRule]) -> None:
        self._injector = FaultInjector(rules, self._fault_rng)

    @property
    def wire_format(self) -> WireFormat:
        """How answers are spelled; assigning a new one drops every rendered body."""
        return self._wire

    @wire_format.setter
    def wire_format(self, wire: WireFormat) -> None:
        self._wire = wire
        self._cache.clear()

    def answer(
        self,
        video_no: str,
        /,
        *,
        kind: TranscriptKind | str,
        segments: Iterable[FakeSegment | tuple[int, int, str]] | None,
    ) -> FakeVideo:
        """Script the transcript of one video: serve exactly these ``segments``.

        ``segments`` are :class:`FakeSegment` or ``(start, end, text)`` tuples in whole
        seconds; ``None`` serves no such transcript (``data: null``, a video without
        speech), ``[]`` an empty one. The video is added to the ``library`` if
        absent (namespace ``"default"``; a ``PI-`` number is public) and put in status
        ``PARSE``, so the next request for it gets this answer. ``kind`` is
        ``"visual"`` or ``"audio"``; the other transcript is left as it was. Returns
        the video as now stored, e.g.
        ``server.answer("VI1", kind="audio", segments=[(0, 2, " hello")])``.
        """
        kind = TranscriptKind(kind)
        source = (
            None
            if segments is None
            else [s if isinstance(s, FakeSegment) else FakeSegment(*s) for s in segments]
        )
        match kind:
            case TranscriptKind.VISUAL:
                changes: dict[str, Any] = {"visual": source}
            case TranscriptKind.AUDIO:
                changes = {"audio": source}
            case unknown:  # pragma: no cover - a kind added without its field here
                assert_never(unknown)
        if video_no in self.library:
            return self.library.replace(video_no, status="PARSE", **changes)
        video = attrs.evolve(FakeVideo(video_no), **changes)
        self.library.add(video)
        return video

    def fail(
        self, video_no: str, fault: FaultKind | str, /, *, times: int | None = None
    ) -> FaultRule:
        """Script a fault for one video: answer its requests with ``fault``.

        With ``times=K`` only the first ``K`` requests that name ``video_no`` fail
        (any endpoint: transcripts and metadata), and later ones are answered
        normally, as a transient failure that a retry gets past; without, every one
        fails. The rule is tried before the :attr:`faults` already in force, whose
        attempt counts are kept. Returns the rule added, e.g.
        ``server.fail("VI1", FaultKind.HTTP_503, times=2)``; to drop it, assign
        :attr:`faults` without it.
        """
        if not video_no:
            msg = "video_no must be a non-empty string such as 'VI606041694843813888'"
            raise ValueError(msg)
        rule = FaultRule(fault, video_nos={video_no}, first_attempts=times)
        self._injector = self._injector.with_first(rule)
        return rule

    def processing(self, video_no: str, /, *, ready_after: float, then: str = "PARSE") -> FakeVideo:
        """Script a video still being processed: ``UNPARSE`` now, ``then`` after ``ready_after``.

        The video (added to the ``library`` if absent, in namespace ``"default"``, with a
        generated transcript) is put in status ``UNPARSE`` at once; the first request
        that arrives ``ready_after`` seconds of the service's ``clock`` later or more
        finds it in status ``then``: ``"PARSE"`` (its transcripts are served from then
        on), or a failed status such as ``"PARSE_ERROR"``, ``"FAIL"`` or ``"FAILED"``.
        ``ready_after=0`` makes the change on the next request. Returns the video as
        now stored, e.g. ``server.processing("VI1", ready_after=2.0)``.
        """
        if not ready_after >= 0:
            msg = f"'ready_after' must be >= 0 seconds, got {ready_after}"
            raise ValueError(msg)
        if not then:
            msg = "'then' must be a status word such as 'PARSE' or 'PARSE_ERROR'"
            raise ValueError(msg)
        if video_no in self.library:
            video = self.library.replace(video_no, status="UNPARSE")
        else:
            video = FakeVideo(video_no, status="UNPARSE", visual=Generated(self.seed))
            self.library.add(video)

        def finish() -> None:
            if video_no in self.library:
                self.library.replace(video_no, status=then)

        self._at(ready_after, finish)
        return video

    def add_video(self, video: FakeVideo, /, *, after: float = 0.0) -> None:
        """Add ``video`` to the ``library`` once ``after`` seconds of the service's clock passed.

        A video uploaded while a client runs: the first request arriving ``after``
        seconds later or more finds it listed (``after=0``: at once). Its
        ``create_time`` is what the listing sorts it by, as given. Raises
        :class:`ValueError` at once if its number is already in the library, and
        when it is due if it was added there in the meantime.
        """
        if not after >= 0:
            msg = f"'after' must be >= 0 seconds, got {after}"
            raise ValueError(msg)
        if video.video_no in self.library:
            msg = f"video {video.video_no!r} is already in the library; use replace()"
            raise ValueError(msg)
        if after == 0:
            self.library.add(video)
            return
        self._at(after, lambda: self.library.add(video))

    def upload_every(self, seconds: float, /, *, processing: float | None = None) -> None:
        """Upload a new video every ``seconds`` of the service's clock, for as long as it runs.

        Each is newer than every video of the library (listed first), numbered
        ``VI9`` and 17 digits from 1 on, with generated transcripts; it is ready at once,
        or with ``processing`` in status ``UNPARSE`` for that many seconds. Uploads are
        made as requests arrive: those due meanwhile all at once.
        """
        if not seconds > 0:
            msg = f"'seconds' must be > 0, got {seconds}"
            raise ValueError(msg)
        counter = itertools.count(1)
        newest = max((video.create_time for video in self.library), default=0)
        marker = Generated(self.seed)

        def upload(due: float) -> None:
            number = next(counter)
            video = FakeVideo(
                f"VI9{number:017d}",
                create_time=newest + 1000 * number,
                visual=marker,
                audio=marker,
            )
            if video.video_no not in self.library:
                self.library.add(video)
                if processing:
                    self.processing(video.video_no, ready_after=processing)
            self._at_time(due + seconds, functools.partial(upload, due + seconds))

        start = self._clock() + seconds
        self._at_time(start, functools.partial(upload, start))

    @property
    def scheduled(self) -> int:
        """How many changes of :meth:`processing` and :meth:`add_video` are still to come."""
        return len(self._schedule)

    def _at(self, delay: float, change: Callable[[], object]) -> None:
        self._at_time(self._clock() + delay, change)

    def _at_time(self, due: float, change: Callable[[], object]) -> None:
        heapq.heappush(self._schedule, (due, next(self._order), change))

    def _apply_due(self) -> None:
        """Make the scheduled changes whose time has come, in the order they are due."""
        schedule = self._schedule
        now = self._clock()
        while schedule and schedule[0][0] <= now:
            _due, _order, change = heapq.heappop(schedule)
            change()

    def reset(self) -> None:
        """Zero the stats, refill the rate buckets, restart fault attempt counts and reseed.

        The library, keys and settings are kept; the timeline is emptied and
        starts again at 0 seconds, the noisy neighbour's schedule restarts.
        After a reset the service draws the same latencies, faults and
        truncation points as a fresh one.
        """
        self.stats.reset()
        self._started = self._clock()
        self._limiter = self._new_limiter(self._limiter.limits)
        self._reseed()
        self._injector = FaultInjector(self._injector.rules, self._fault_rng)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} videos={len(self.library)} keys={len(self.keys)} "
            f"requests={self.stats.total_requests}>"
        )

    def _new_limiter(self, limits: RateLimits) -> RateLimiter:
        return RateLimiter(limits, clock=self._clock, stats=self.stats)

    def _reseed(self) -> None:
        self._latency_rng.setstate(_generate.seeded_random(f"{self.seed}:latency").getstate())
        self._fault_rng.setstate(_generate.seeded_random(f"{self.seed}:faults").getstate())

    def _interrupt_waits(self) -> None:
        """Cancel every request waiting on latency or a hang, and skip later waits."""
        self._closing = True
        for task in list(self._waiting):
            task.cancel()

    def _build_app(self) -> web.Application:
        app = web.Application()
        for endpoint in Endpoint:
            handler = self._handler(endpoint)
            if endpoint is Endpoint.LIST_VIDEOS:
                app.router.add_post(endpoint.path, handler)
            else:
                app.router.add_get(endpoint.path, handler)
        return app

    def _handler(
        self, endpoint: Endpoint
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._handle(endpoint, request)

        handle.__name__ = f"handle_{endpoint.value}"
        return handle

    async def _handle(self, endpoint: Endpoint, request: web.Request) -> web.StreamResponse:
        if self._schedule:
            self._apply_due()
        stats = self.stats
        key = request.headers.get("Authorization", "")
        video_no = None if endpoint is Endpoint.LIST_VIDEOS else request.query.get("video_no")
        stats.requests[endpoint] += 1
        stats.requests_by_key[key] += 1
        if video_no:
            stats.requests_by_video[video_no] += 1
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        try:
            # Decided on arrival, before any wait: see the module's docstring.
            state = self.keys.get(key)
            wait = self._judge(endpoint, key) if state is KeyState.ACTIVE else None
            if self.latency.distribution != "none":
                await self._wait(self.latency.sample(self._latency_rng))
            fault = self._injector.pick(endpoint, video_no) if self._injector.rules else None
            if fault is not None:
                stats.faults[fault] += 1
                early = self._early_fault(endpoint, key, fault)
                if early is not None:
                    return early
                if fault is FaultKind.HANG:
                    await self._wait(self.hang_seconds)
            if state is not KeyState.ACTIVE:
                answer = self._error(*_REFUSALS.get(state, _REFUSALS[None]))
            elif wait is not None:
                answer = self._rate_limited(endpoint, key, wait)
            else:
                answer = await self._answer(endpoint, request, video_no)
            if fault is FaultKind.TRUNCATED_JSON:
                cut = self._fault_rng.randrange(1, len(answer.body))
                return web.Response(
                    body=answer.body[:cut], status=answer.status, headers=_JSON_HEADERS
                )
            if fault is FaultKind.CONNECTION_RESET:
                return await self._reset(request, answer)
            stats.codes[answer.code] += 1
            return web.Response(
                body=answer.body,
                status=answer.status,
                headers=_JSON_HEADERS if answer.headers is None else answer.headers,
            )
        finally:
            stats.in_flight -= 1

    def _judge(self, endpoint: Endpoint, key: str) -> float | None:
        """Ask the rate limiter; return ``None`` if admitted, else the seconds to a token."""
        wait = self._limiter.acquire(endpoint)
        stats = self.stats
        if wait is None:
            stats.accepted_by_key[key] += 1
        if stats.timeline is not None:
            at = self._clock() - self._started
            stats.timeline.append(TimelineEntry(at, endpoint, key, wait is None))
        return wait

    async def _wait(self, seconds: float) -> None:
        if seconds <= 0 or self._closing:
            return
        task = asyncio.current_task()
        assert task is not None
        self._waiting.add(task)
        try:
            await self._sleep(seconds)
        finally:
            self._waiting.discard(task)

    def _early_fault(self, endpoint: Endpoint, key: str, fault: FaultKind) -> web.Response | None:
        """Answer a fault that replaces the whole answer, or return ``None``."""
        if fault in _HTML_ERRORS:
            status = int(fault.value.removeprefix("http_"))
            return web.Response(
                body=_render.html_error(status), status=status, headers=_HTML_HEADERS
            )
        if fault is FaultKind.HTML_200:
            return web.Response(body=_render.HTML_PAGE, headers=_HTML_HEADERS)
        if fault is FaultKind.NETWORK_ABNORMAL:
            self.stats.codes["0001"] += 1
            return web.Response(
                body=_render.error("0001", "network abnormal", self._wire), headers=_JSON_HEADERS
            )
        if fault is FaultKind.RATE_LIMITED:
            answer = self._rate_limited(endpoint, key, 1.0)
            self.stats.codes[answer.code] += 1
            return web.Response(body=answer.body, status=answer.status, headers=answer.headers)
        return None

    async def _reset(self, request: web.Request, answer: _Answer) -> web.StreamResponse:
        response = web.StreamResponse(status=answer.status, headers=_JSON_HEADERS)
        response.content_length = len(answer.body)
        await response.prepare(request)
        await response.write(answer.body[: len(answer.body) // 2])
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # Linger 0 turns the close into a TCP reset instead of an orderly FIN.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        return response

    async def _answer(
        self, endpoint: Endpoint, request: web.Request, video_no: str | None
    ) -> _Answer:
        library = self.library
        if self._cached_library != (id(library), library.revision):
            self._cache.clear()
            self._cached_library = (id(library), library.revision)
        if endpoint in TRANSCRIPTION_ENDPOINTS:
            return self._transcript(endpoint, request, video_no)
        if endpoint is Endpoint.GET_METADATA:
            return self._metadata(request, video_no)
        if endpoint is Endpoint.LIST_VIDEOS:
            return await self._list_videos(request)
        return self._cached(
            ("unique_ids",), lambda: _render.ok({"unique_ids": library.unique_ids()})
        )

    def _error(self, code: str, msg: str) -> _Answer:
        return _Answer(_render.error(code, msg, self._wire), code)

    def _rate_limited(self, endpoint: Endpoint, key: str, wait: float) -> _Answer:
        self.stats.rate_limited += 1
        self.stats.rate_limited_by_endpoint[endpoint] += 1
        self.stats.rate_limited_by_key[key] += 1
        limits = self._limiter.limits
        headers = dict(_JSON_HEADERS)
        if limits.retry_after:
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
        body = _render.error("0429", RATE_LIMIT_MSG, self._wire)
        return _Answer(body, "0429", 429 if limits.http_429 else 200, headers)

    def _cached(self, key: tuple[Any, ...], render: Callable[[], bytes]) -> _Answer:
        body = self._cache.get(key)
        if body is None:
            body = render()
            self._cache.put(key, body)
        return _Answer(body, "0000")

    def _lookup(self, request: web.Request, video_no: str | None) -> FakeVideo | _Answer | None:
        """Validate ``video_no`` and ``unique_id``; return the private video, an error, or None."""
        if video_no is None or not _VIDEO_NO.fullmatch(video_no):
            return self._error("0003", "parameter error: video_no is missing or malformed")
        unique_id = request.query.get("unique_id", "default")
        if not unique_id:
            return self._error("0003", "parameter error: unique_id must not be empty")
        video = self.library.get(video_no)
        if video is None or video.is_public:
            return None
        return video if video.unique_id == unique_id else _OK_NULL

    def _transcript(
        self, endpoint: Endpoint, request: web.Request, video_no: str | None
    ) -> _Answer:
        video: FakeVideo | _Answer | None
        if endpoint in _PUBLIC:
            if video_no is None or not _VIDEO_NO.fullmatch(video_no):
                return self._error("0003", "parameter error: video_no is missing or malformed")
            video = self.library.get(video_no)
            if video is not None and not video.is_public:
                video = None
        else:
            video = self._lookup(request, video_no)
        if video is None:
            return self._error("0001", "video not found")
        if isinstance(video, _Answer):
            return video
        if video.status != "PARSE":
            return _OK_NULL
        kind = _KIND[endpoint]
        key = (kind, video.video_no)
        body = self._cache.get(key)
        if body is None:
            segments = video.segments(kind)
            if segments is None:
                return _OK_NULL
            body = _render.transcript(video, kind, segments, self._wire)
            self._cache.put(key, body)
        return _Answer(body, "0000")

    def _metadata(self, request: web.Request, video_no: str | None) -> _Answer:
        video = self._lookup(request, video_no)
        if video is None:
            return _OK_NULL
        if isinstance(video, _Answer):
            return video
        found = video
        return self._cached(
            ("metadata", found.video_no),
            lambda: _render.ok(_render.video_record(found, self._wire, metadata=True)),
        )

    async def _list_videos(self, request: web.Request) -> _Answer:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return self._error("0003", "parameter error: the body must be a JSON object")
        try:
            query = _ListQuery.parse(body)
        except _BadParameterError as exc:
            return self._error("0003", f"parameter error: {exc}")
        listing = self.library.listing(query.unique_id)

        def render() -> bytes:
            found = listing if query.is_unfiltered else [v for v in listing if query.matches(v)]
            start = (query.page - 1) * query.size
            page = found[start : start + query.size]
            return _render.video_page(page, query.page, query.size, len(found), self._wire)

        return self._cached(("list_videos", query), render)


class _BadParameterError(ValueError):
    """A request parameter is missing or malformed; the message says which."""


@attrs.frozen(kw_only=True)
class _ListQuery:
    """The validated body of a ``list_videos`` request, hashable for the cache."""

    page: int
    size: int
    unique_id: str
    status: str | None = None
    name: str | None = None
    video_no: str | None = None
    video_nos: frozenset[str] | None = None
    tag: str | None = None

    @property
    def is_unfiltered(self) -> bool:
        return (self.status, self.name, self.video_no, self.video_nos, self.tag) == (None,) * 5

    def matches(self, video: FakeVideo) -> bool:
        return (
            (self.status is None or video.status == self.status)
            and (self.name is None or self.name in video.video_name.casefold())
            and (self.video_no is None or video.video_no == self.video_no)
            and (self.video_nos is None or video.video_no in self.video_nos)
            and (self.tag is None or self.tag in video.tags)
        )

    @classmethod
    def parse(cls, body: dict[str, Any]) -> _ListQuery:
        """Validate a request body; raises :class:`_BadParameterError` naming the bad field."""
        page = _positive_int(body.get("page"), 1)
        if page is None:
            raise _BadParameterError("page must be an integer >= 1")
        size = _positive_int(body.get("size"), DEFAULT_PAGE_SIZE)
        if size is None or size > MAX_PAGE_SIZE:
            raise _BadParameterError(f"size must be an integer between 1 and {MAX_PAGE_SIZE}")
        unique_id = body.get("unique_id", "default")
        if not isinstance(unique_id, str) or not unique_id:
            raise _BadParameterError("unique_id must be a non-empty string")
        filters = {
            field: _optional_str(body, field)
            for field in ("status", "video_name", "video_no", "tag")
        }
        name = filters["video_name"]
        return cls(
            page=page,
            size=size,
            unique_id=unique_id,
            status=filters["status"],
            name=None if name is None else name.casefold(),
            video_no=filters["video_no"],
            video_nos=_video_nos(body.get("video_nos")),
            tag=filters["tag"],
        )


def _optional_str(body: dict[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is not None and not isinstance(value, str):
        raise _BadParameterError(f"{field} must be a string")
    return value or None


def _video_nos(value: object) -> frozenset[str] | None:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(no, str) for no in value):
        raise _BadParameterError("video_nos must be a list of strings")
    numbers = frozenset(no for no in value if no)
    return numbers or None


_HTML_ERRORS = frozenset(
    {
        FaultKind.HTTP_401,
        FaultKind.HTTP_403,
        FaultKind.HTTP_500,
        FaultKind.HTTP_502,
        FaultKind.HTTP_503,
    }
)


def _positive_int(value: object, default: int) -> int | None:
    if value is None:
        return default
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return None


def _key_states(api_keys: Mapping[str, KeyState] | Iterable[str] | None) -> dict[str, KeyState]:
    if api_keys is None:
        return {DEFAULT_API_KEY: KeyState.ACTIVE}
    if isinstance(api_keys, str):
        msg = "'api_keys' must be a collection of keys, not one string"
        raise TypeError(msg)
    if isinstance(api_keys, Mapping):
        return {key: KeyState(state) for key, state in api_keys.items()}
    return dict.fromkeys(api_keys, KeyState.ACTIVE)
