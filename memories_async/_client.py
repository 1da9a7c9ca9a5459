"""The async client: one session, one rate governor, every read endpoint of the API."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import aiohttp

from . import _protocol as protocol
from ._batch import BatchEvent, LatencyHistogram, Outcomes, TranscriptBatch, batch_kinds
from ._config import Config, RetryPolicy
from ._converter import (
    structure_transcript,
    structure_unique_ids,
    structure_video,
    structure_video_page,
)
from ._errors import AccountError, DecodeError, HTTPStatusError, MemoriesError
from ._governor import RateGovernor
from ._ids import NumberSet
from ._logenv import configure_logging_from_env
from ._models import Transcript, TranscriptKind, Video, VideoStatus
from ._ratestore import open_rate_store, quota_key
from ._retry import OnRetry, Retrying
from ._telemetry import Telemetry, resolve
from ._transport import Transport, answer_data, log_attempt, new_session
from ._wait import DEFAULT_POLL, PollPacer, Readiness, wait_until_ready

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

logger = logging.getLogger("memories_async")

DEFAULT_CONCURRENCY = 16
"""Requests a batch keeps in flight unless told otherwise."""

MAX_LIST_PAGES = 100_000
"""Pages :meth:`MemoriesClient.list_videos` reads at most: 20 million videos at 200 a page,
far beyond any library, short of paging forever."""

T = TypeVar("T")

VideoJob = str | tuple[str, TranscriptKind | str]
"""An item of a batch's input: a video number, or a ``(video_no, kind)`` pair."""


def _kind(kind: TranscriptKind | str) -> TranscriptKind:
    try:
        return TranscriptKind(kind)
    except ValueError:
        if kind == "both":
            raise ValueError(
                "'kind' of one transcript must be 'visual' or 'audio': for both, use"
                " fetch_transcriptions(..., kind='both') or gather_transcriptions"
            ) from None
        raise ValueError(f"'kind' must be 'visual' or 'audio', got {kind!r}") from None


def _unique_id(value: str | None, default: str | None) -> str | None:
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip():
        raise ValueError("'unique_id' must be a non-empty string; pass None for the default")
    return value


class MemoriesClient:
    """An asyncio client for the memories.ai API.

    Use it as ``async with MemoriesClient() as client: ...`` or call
    :meth:`aclose` when done. Settings come from the keyword arguments, then
    ``config``, then the environment (``MEMORIES_API_KEY``,
    ``MEMORIES_BASE_URL``, ``MEMORIES_UNIQUE_ID``, ``MEMORIES_RATE_STORE``);
    see :class:`Config`.

    One aiohttp session carries every call. Pass ``session`` to use your own:
    the client borrows it and never closes it. Otherwise the client creates
    one on first use and closes it in :meth:`aclose`.

    Every call of the client goes through one :class:`RateGovernor`, which
    paces them against the account's quota (``rate=``, or found by itself;
    shared across processes with ``rate_store="redis://…"``). A rate-limit
    answer is not a failure: the request takes the next free slot. After an account-wide
    error (bad key, no credits, disabled account) every further call raises
    that error again without reaching the network.

    ``trace_configs`` (aiohttp trace configs) go to the session the client creates.
    With the ``otel`` extra, the client emits OpenTelemetry spans and metrics to
    ``tracer_provider`` and ``meter_provider``, or to the global providers once the
    application has configured them; with neither it emits nothing and costs nothing.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        unique_id: str | None = None,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        retry: RetryPolicy | None = None,
        rate: float | None = None,
        burst: int | None = None,
        rate_store: str | None = None,
        rate_name: str | None = None,
        max_connections: int | None = None,
        max_response_bytes: int | None = None,
        user_agent: str | None = None,
        config: Config | None = None,
        session: aiohttp.ClientSession | None = None,
        governor: RateGovernor | None = None,
        trace_configs: Iterable[aiohttp.TraceConfig] | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        configure_logging_from_env()
        if trace_configs is not None:
            trace_configs = list(trace_configs)
            if session is not None:
                raise ValueError(
                    "'trace_configs' are for the session the client creates: give them to"
                    " your own aiohttp.ClientSession(trace_configs=...) instead"
                )
        overrides = {
            "api_key": api_key,
            "base_url": base_url,
            "unique_id": unique_id,
            "timeout": timeout,
            "connect_timeout": connect_timeout,
            "retry": retry,
            "rate": rate,
            "burst": burst,
            "rate_store": rate_store,
            "rate_name": rate_name,
            "max_connections": max_connections,
            "max_response_bytes": max_response_bytes,
            "user_agent": user_agent,
        }
        if config is None:
            config = Config.from_env(**overrides)
        else:
            given = {k: v for k, v in overrides.items() if v is not None}
            config = config.replace(**given) if given else config
        self._config = config
        self._session = session
        self._transport: Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._root = self
        """The client whose session, governor and account state this one uses: itself,
        or for a view of :meth:`with_options`, the client it was made from."""
        self._fatal: AccountError | None = None
        self._poll_pacer = PollPacer()
        """The turns of the status checks of this client and its views (see ``_wait``)."""
        self._caption_path = False
        self._pool_warned = False
        self._headers = protocol.build_headers(
            config.api_key, protocol.user_agent(config.user_agent)
        )
        self._urls: dict[str, str] = {}
        self._trace_configs = trace_configs
        self._providers = (tracer_provider, meter_provider)
        self._telemetry: Telemetry | None = None
        self._telemetry_resolved = False
        self._owns_governor = governor is None
        if governor is None:
            governor = RateGovernor(
                rate=config.rate,
                burst=config.burst,
                adaptive=config.retry.backoff,
                store=open_rate_store(config.rate_store),
                key=quota_key(config.base_url, config.api_key, config.rate_name),
            )
        self.governor = governor
        """The rate governor shared by every call of this client (and, with a shared
        ``rate_store``, by every client of the quota)."""
        # Retries wait on the governor's time, so that a whole call (its waits for slots
        # and between attempts, its total_timeout) runs on one clock, virtual in tests.
        self._retrying = Retrying(
            config.retry, clock=governor.clock, sleep=governor.sleep, random=governor.random
        )

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        if self._root is not self:
            state = f"view {state}"
        return (
            f"<MemoriesClient base_url={self._config.base_url!r}"
            f" unique_id={self._config.unique_id!r} {state}>"
        )

    @property
    def config(self) -> Config:
        """The frozen settings of this client."""
        return self._config

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` has been called (on the client a view was made from)."""
        return self._closed or self._root._closed

    def with_options(
        self,
        *,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        retry: RetryPolicy | None = None,
        unique_id: str | None = None,
        max_response_bytes: int | None = None,
    ) -> MemoriesClient:
        """A view of this client with other per-call settings, for some calls only::

            patient = client.with_options(timeout=300, retry=RetryPolicy(attempts=10))
            transcript = await patient.get_transcription(video_no)

        The view shares this client's session (its connection pool), its rate governor
        (so both pace against one quota) and its account state (after an account-wide
        error, both refuse further calls). Settings not given are this client's. Making
        one costs no connection: make one per request of a web app if need be.

        A view owns nothing: it needs no closing, and closing it closes nothing (the
        session stays open for this client and its other views). It lives as long as
        this client: once this client is closed, the view's calls raise
        ``RuntimeError`` as the client's do. Settings of the pacing (``rate``,
        ``burst``, ``rate_store``) belong to the governor and cannot differ in a view.
        """
        given = {
            "timeout": timeout,
            "connect_timeout": connect_timeout,
            "retry": retry,
            "unique_id": unique_id,
            "max_response_bytes": max_response_bytes,
        }
        config = self._config.replace(**{k: v for k, v in given.items() if v is not None})
        view = MemoriesClient(config=config, session=self._session, governor=self.governor)
        view._root = self._root  # whose telemetry the view's calls emit too
        view._poll_pacer = self._poll_pacer
        return view

    async def __aenter__(self) -> Self:
        if self.closed:
            raise RuntimeError("the client is closed; create a new MemoriesClient")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session if the client created it; further calls raise ``RuntimeError``."""
        if self._transport is not None:
            self._check_loop()
        self._closed = True
        if self._transport is not None:
            await self._transport.aclose()
        if self._owns_governor:
            if self._telemetry is not None:
                self._telemetry.unwatch(self.governor)
            await self.governor.aclose()

    # -- reads --------------------------------------------------------------

    async def get_transcription(
        self,
        video_no: str,
        /,
        *,
        kind: TranscriptKind | str = TranscriptKind.VISUAL,
        unique_id: str | None = None,
        public: bool | None = None,
        on_retry: OnRetry | None = None,
    ) -> Transcript:
        """Fetch the visual (scene captions) or audio (speech) transcript of a video.

        Public-library videos (numbers starting ``PI-``) are read from the
        public endpoints, without ``unique_id``; pass ``public`` to choose
        explicitly. A video with nothing to give (not processed yet, no
        speech, or read under another ``unique_id``) yields an empty
        :class:`Transcript`, not an error: a batch (:meth:`fetch_transcriptions`)
        tells a video not ready from one without speech, and :meth:`wait_until_ready`
        waits for one.

        ``on_retry(error, attempt, wait)`` is called before each retry, with
        the error of the attempt that failed, its number (from 1) and the
        seconds the client waits before the next one (the governor may add a
        wait for a slot).

        Raises :class:`InvalidVideoNumberError` for a malformed number and the
        :class:`MemoriesError` of the last attempt when retries run out; its
        ``attempts`` says how many were made.
        """
        transcript, _attempts = await self._fetch_answer(
            video_no,
            kind=kind,
            unique_id=unique_id,
            public=public,
            on_retry=on_retry,
            structure=structure_transcript,
        )
        return transcript

    async def _fetch_answer(
        self,
        video_no: str,
        /,
        *,
        kind: TranscriptKind | str,
        unique_id: str | None,
        public: bool | None,
        on_retry: OnRetry | None,
        structure: Callable[..., T],
    ) -> tuple[T, int]:
        """:meth:`get_transcription` and the number of attempts it made (what a batch
        job calls), the answer's data read by ``structure(data, video_no=, kind=)``
        (:func:`structure_transcript`, or a faster twin of it), whose
        :class:`MemoriesError` is told the video, endpoint and attempts."""
        number = protocol.check_video_no(video_no)
        kind = _kind(kind)
        is_public = protocol.is_public(number) if public is None else public
        namespace = None if is_public else _unique_id(unique_id, self._config.unique_id)
        params = {"video_no": number, "unique_id": namespace}
        caption = self._caption_path and kind is TranscriptKind.VISUAL and not is_public
        endpoint = protocol.transcription_endpoint(kind, public=is_public, caption=caption)
        try:
            data, attempts = await self._call(self._get(endpoint, params, number), on_retry)
        except HTTPStatusError as exc:
            if not protocol.falls_back_to_caption(exc):
                raise
            # The newest API names the visual endpoint get_video_caption.
            caption_request = self._get(protocol.VIDEO_CAPTION, params, number)
            data, attempts = await self._call(caption_request, on_retry)
            self._caption_path = True
            attempts += exc.attempts
        try:
            return structure(data, video_no=number, kind=kind), attempts
        except MemoriesError as exc:
            exc.video_no, exc.endpoint, exc.attempts = number, endpoint, attempts
            raise

    async def get_metadata(self, video_no: str, /, *, unique_id: str | None = None) -> Video | None:
        """Fetch one video's status and details; ``None`` when the number is unknown."""
        number = protocol.check_video_no(video_no)
        params = {"video_no": number, "unique_id": _unique_id(unique_id, self._config.unique_id)}
        data, _ = await self._call(self._get(protocol.GET_METADATA, params, number), None)
        video: Video | None = self._structured(structure_video, data, protocol.GET_METADATA, number)
        return video

    async def list_videos(
        self,
        *,
        status: VideoStatus | str | None = None,
        video_name: str | None = None,
        video_nos: Iterable[str] | None = None,
        tag: str | None = None,
        unique_id: str | None = None,
        page_size: int = protocol.MAX_PAGE_SIZE,
    ) -> AsyncIterator[Video]:
        """Iterate over every video of the library, page after page, lazily.

        Filters are sent to the service as given. Pages hold ``page_size``
        videos (at most 200); iteration stops at ``total_count`` or at the
        first short page. Use ``contextlib.aclosing`` to stop early cleanly.
        """
        if isinstance(page_size, bool) or not 1 <= page_size <= protocol.MAX_PAGE_SIZE:
            raise ValueError(
                f"'page_size' must be between 1 and {protocol.MAX_PAGE_SIZE}, got {page_size!r}"
            )
        numbers = None
        if video_nos is not None:
            numbers = [protocol.check_video_no(n) for n in video_nos]
        body: dict[str, Any] = {
            "size": page_size,
            "unique_id": _unique_id(unique_id, self._config.unique_id),
            "status": None if status is None else str(status),
            "video_name": video_name,
            "video_nos": numbers,
            "tag": tag,
        }
        page = 1
        seen = 0
        listed = NumberSet()
        while True:
            request = protocol.post_request(
                self._url(protocol.LIST_VIDEOS),
                protocol.LIST_VIDEOS,
                self._headers,
                body={"page": page, **body},
            )
            data, _ = await self._call(request, None)
            videos, total = self._structured(structure_video_page, data, protocol.LIST_VIDEOS, None)
            new = [video for video in videos if listed.add_new(video.video_no)]
            for video in new:
                yield video
            seen += len(videos)
            if len(videos) < page_size or (total is not None and seen >= total):
                return
            if not new:
                # Full pages of videos already listed: a service that ignores the page
                # number (or a library shifting under the listing) would never end it.
                logger.warning(
                    "list_videos page %d holds only videos of earlier pages: the listing"
                    " stops there",
                    page,
                )
                return
            if page >= MAX_LIST_PAGES:
                raise DecodeError(
                    f"the video listing did not end after {MAX_LIST_PAGES:,} pages of"
                    f" {page_size} (no total_count, every page full): stopped there",
                    endpoint=protocol.LIST_VIDEOS,
                )
            page += 1

    def fetch_transcriptions(
        self,
        video_nos: Iterable[VideoJob] | AsyncIterable[VideoJob],
        /,
        *,
        kind: TranscriptKind | str | Iterable[TranscriptKind | str] = TranscriptKind.VISUAL,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        ordered: bool = False,
        dedupe: bool = True,
        unique_id: str | None = None,
        on_event: Callable[[BatchEvent], None] | None = None,
        wait: bool = False,
        wait_timeout: float | None = None,
        poll: float = DEFAULT_POLL,
    ) -> TranscriptBatch[Transcript]:
        """Fetch the transcripts of many videos concurrently; outcomes arrive as they complete.

        ::

            async with client.fetch_transcriptions(ids, kind="audio") as batch:
                async for outcome in batch:
                    if outcome.ok:
                        save(outcome.transcript)
                    else:
                        log(outcome.video_no, outcome.error)

        ``video_nos`` is any iterable or async iterable (a list, a generator
        over a huge file, :meth:`list_videos`), read lazily: memory stays
        proportional to ``max_concurrency``, not to the number of ids. With
        ``dedupe`` (the default) a repeated (number, kind) is fetched once;
        that keeps one entry per distinct id in memory, so pass
        ``dedupe=False`` for very large inputs known to be unique. ``kind``
        is one kind, ``"both"`` (visual and audio, as the command line's
        ``--kind both``) or several (``("visual", "audio")``): each id is
        fetched once per kind. An item may also be a ``(video_no, kind)`` pair, which
        is one job of that kind whatever ``kind`` says: every job of the
        batch shares its concurrency, whatever its kind. A pair of another
        shape or with an unknown kind stops the batch with :class:`ValueError`
        once the jobs already started are delivered, as an input that fails does.

        At most ``max_concurrency`` requests are in flight; every request also
        obeys the client's rate governor (``rate=`` on the client). A
        malformed id or a failed video becomes a :class:`Failed` outcome; an
        account-wide error (bad key, no credits) stops the batch with
        :class:`AccountHaltedError`, after the outcomes already finished.
        ``ordered=True`` delivers outcomes in input order instead: one per
        distinct (number, kind), so with ``dedupe`` a repeated number yields no
        second outcome and the outcomes do not line up with the input one to
        one; with ``dedupe=False`` they do (``len(kinds)`` outcomes per number,
        in the kinds' order). Outcomes carry their ``video_no`` and ``kind``:
        match them by those, not by position.
        ``on_event`` receives a :class:`BatchEvent` per step of every job.

        A video still being processed has no transcript yet, and the service answers an
        empty one, as for a video without speech: the batch looks up the status of the
        videos of empty answers (in bulk, one ``list_videos`` request for up to 200), and
        a video that is not ready becomes a :class:`Failed` outcome with
        :class:`VideoNotReadyError`, one whose processing failed with
        :class:`ProcessingFailedError`, never an empty transcript. With ``wait=True``, a
        job whose video is not ready waits for it instead, giving its slot to the others,
        and is fetched as soon as the video is ready: the videos waited for are checked
        together every ``poll`` seconds (one ``list_videos`` request per 200, and at most
        a quarter of the governor's pacing), for at most ``wait_timeout`` seconds each
        (``None``: no limit; then :class:`WaitTimeoutError`). ``stats().waiting`` counts
        the jobs waiting; ``on_event`` receives ``waiting`` and ``ready`` events.
        """
        if isinstance(video_nos, str | bytes):
            raise TypeError(
                "'video_nos' must be an iterable of video numbers, not one string:"
                " wrap a single number in a list"
            )
        return self._batch(
            functools.partial(
                self._fetch_answer,
                unique_id=_unique_id(unique_id, None),
                public=None,
                structure=structure_transcript,
            ),
            video_nos,
            kinds=batch_kinds(kind),
            max_concurrency=max_concurrency,
            ordered=ordered,
            dedupe=dedupe,
            on_event=on_event,
            readiness=Readiness(
                self,
                unique_id=_unique_id(unique_id, self._config.unique_id),
                empty=_is_empty,
                wait=wait,
                poll=poll,
                timeout=wait_timeout,
            ),
        )

    def _batch(
        self,
        fetch: Callable[..., Awaitable[tuple[T, int]]],
        jobs: Iterable[VideoJob] | AsyncIterable[VideoJob],
        /,
        *,
        kinds: tuple[TranscriptKind, ...],
        max_concurrency: int,
        ordered: bool = False,
        dedupe: bool = True,
        on_event: Callable[[BatchEvent], None] | None = None,
        latency: LatencyHistogram | None = None,
        readiness: Readiness | None = None,
    ) -> TranscriptBatch[T]:
        """A batch of ``jobs`` that calls ``fetch(video_no, kind=, on_retry=)`` for each,
        with this client's connection pool sized for ``max_concurrency``; ``latency``
        is the histogram its answers' latencies go to (its own by default); ``readiness``
        tells the empty answers of videos not ready from true empty transcripts."""
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int):
            raise TypeError(f"'max_concurrency' must be an int, got {max_concurrency!r}")
        if max_concurrency < 1:
            raise ValueError(f"'max_concurrency' must be > 0, got {max_concurrency}")
        prepare: Callable[[int], None] = self._ensure_pool
        on_close: Callable[[TranscriptBatch[T]], None] | None = None
        telemetry = self._observer()
        if telemetry is not None:
            fetch, prepare, on_close = telemetry.observe_batch(fetch, prepare, kinds)
        return TranscriptBatch(
            fetch,
            jobs,
            kinds=kinds,
            max_concurrency=max_concurrency,
            ordered=ordered,
            dedupe=dedupe,
            on_event=on_event,
            prepare=prepare,
            latency=latency,
            on_close=on_close,
            readiness=readiness,
        )

    async def gather_transcriptions(
        self,
        video_nos: Iterable[VideoJob] | AsyncIterable[VideoJob],
        /,
        *,
        kind: TranscriptKind | str | Iterable[TranscriptKind | str] = TranscriptKind.VISUAL,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        unique_id: str | None = None,
    ) -> Outcomes[Transcript]:
        """Fetch a small batch and return every outcome by (video number, kind).

        A convenience over :meth:`fetch_transcriptions` for batches that fit
        in memory. The :class:`Outcomes` mapping holds one outcome per distinct
        (video number, kind), in the order the input first named it, whatever
        order they completed in: ``outcomes[(video_no, "audio")]`` reads one, and
        ``outcomes.failed`` lists the failures. A repeated number is fetched once
        and appears once, so look outcomes up by key instead of zipping them with
        the input.
        """
        batch = self.fetch_transcriptions(
            video_nos, kind=kind, max_concurrency=max_concurrency, unique_id=unique_id
        )
        async with batch:
            return await batch.collect()

    async def wait_until_ready(
        self,
        video_no: str,
        /,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a deadline for the whole wait
        poll: float = 5.0,
        unique_id: str | None = None,
    ) -> Video:
        """Wait until a video is processed (status ``PARSE``) and return it::

            video = await client.wait_until_ready(video_no, timeout=600)
            transcript = await client.get_transcription(video.video_no)

        Checks the status with :meth:`get_metadata` (whose quota is the lowest of the
        API, about 1 QPS) every ``poll`` seconds at first, then less and less often (by
        half as long again each time, up to a minute), every check going through the
        client's rate governor; the checks of all its waits and batches together take at
        most a quarter of its pace, so many waits at once take turns. Raises
        :class:`ProcessingFailedError` (naming the status) when the processing fails,
        :class:`VideoNotFoundError` for an unknown number, and
        :class:`WaitTimeoutError` once ``timeout`` seconds have passed (``None``: no
        limit). Cancelling it leaves nothing behind. For many videos, a batch's
        ``wait=True`` is cheaper (see :meth:`fetch_transcriptions`).
        """
        return await wait_until_ready(
            self,
            video_no,
            unique_id=_unique_id(unique_id, None),
            timeout=timeout,
            poll=poll,
        )

    async def list_unique_ids(self) -> tuple[str, ...]:
        """The ``unique_id`` namespaces the account has used."""
        data, _ = await self._call(self._get(protocol.LIST_UNIQUE_IDS, {}, None), None)
        ids: tuple[str, ...] = self._structured(
            structure_unique_ids, data, protocol.LIST_UNIQUE_IDS, None
        )
        return ids

    # -- plumbing -------------------------------------------------------------

    def _ensure_pool(self, connections: int) -> None:
        """Make sure the connection pool can carry ``connections`` requests at once.

        A pool this client creates is sized on first use; any pool (a borrowed
        session's included) that holds fewer connections than asked for, by its
        ``limit`` or its ``limit_per_host``, is warned about once per client.
        """
        transport = self._get_transport(connections)
        limit = transport.pool_limit
        if limit and limit < connections and not self._pool_warned:
            self._pool_warned = True
            advice = (
                "raise max_connections"
                if transport.owns_session
                else "give the session's connector a larger limit and limit_per_host"
            )
            logger.warning(
                "the connection pool holds %d connections, fewer than the %d concurrent"
                " requests asked for: requests will queue (%s)",
                limit,
                connections,
                advice,
            )

    def _observer(self) -> Telemetry | None:
        """This client's telemetry (``None``: off), decided on first use: when the session
        opens, or a batch or an export starts."""
        root = self._root
        if not root._telemetry_resolved:
            root._telemetry_resolved = True
            root._telemetry = resolve(*root._providers)
            if root._telemetry is not None:
                root._telemetry.watch(root.governor)
        return root._telemetry

    def _check_loop(self) -> None:
        """Raise ``RuntimeError`` when called from another event loop than the one whose
        connections the client holds (an ``asyncio.run`` per call, say)."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise RuntimeError(
                "this MemoriesClient holds connections of another event loop (was"
                " asyncio.run called more than once?): create the client inside the loop"
                " that uses it, with 'async with MemoriesClient() as client:', and close it"
                " there"
            )

    def _get_transport(self, connections: int = 0) -> Transport:
        if self.closed:
            raise RuntimeError("the client is closed; create a new MemoriesClient")
        self._check_loop()
        if self._transport is None:
            config = self._config
            if self._root is not self:
                # A view: the root's session (made now if need be), the view's timeouts.
                session, owns = self._root._get_transport(connections).session, False
            elif self._session is None:
                session = new_session(
                    max_connections=max(config.max_connections, connections),
                    connect_timeout=config.connect_timeout,
                    trace_configs=self._trace_configs,
                )
                owns = True
            else:
                session, owns = self._session, False
            self._root._observer()
            self._transport = Transport(
                session,
                owns_session=owns,
                timeout=config.timeout,
                connect_timeout=config.connect_timeout,
                max_body=config.max_response_bytes,
            )
        return self._transport

    def _url(self, endpoint: str) -> str:
        url = self._urls.get(endpoint)
        if url is None:
            url = self._urls[endpoint] = protocol.api_url(self._config.base_url, endpoint)
        return url

    def _structured(self, structure: Any, data: Any, endpoint: str, video_no: str | None) -> Any:
        try:
            return structure(data)
        except MemoriesError as exc:
            exc.video_no, exc.endpoint = video_no, endpoint
            raise

    def _get(
        self, endpoint: str, params: dict[str, str | None], video_no: str | None
    ) -> protocol.Request:
        """A GET request of ``endpoint`` (a plain function, so no coroutine per call)."""
        return protocol.get_request(
            self._url(endpoint), endpoint, self._headers, params=params, video_no=video_no
        )

    def _call(
        self, request: protocol.Request, on_retry: OnRetry | None
    ) -> Awaitable[tuple[Any, int]]:
        """The call of ``request`` with its retries: ``await`` it for the answer's data and
        the attempts made.

        A plain function returning the retry loop's coroutine, so that an answer
        passes through no frame of its own: a call that succeeds at once is the
        loop's first iteration and nothing more.
        """
        fatal = self._root._fatal
        if fatal is not None:
            raise type(fatal)(
                fatal.message,
                code=fatal.code,
                msg=fatal.msg,
                status=fatal.status,
                video_no=request.video_no,
                endpoint=request.endpoint,
            )
        transport = self._get_transport()
        telemetry = self._root._telemetry
        if telemetry is not None:
            return telemetry.call(self, request, on_retry, transport)
        governor = self.governor

        async def attempt(number: int) -> Any:
            sent_at = governor.try_acquire()
            if sent_at is None:
                sent_at = await governor.acquire()
            started = time.perf_counter()
            try:
                response = await transport.send(request)
                data = answer_data(request, response)
            except MemoriesError as exc:
                await self._failed(exc, sent_at)
                log_attempt(request, number, started, exc)
                raise
            if governor.shared:
                await governor.answered(sent_at=sent_at, refused=False)
            else:
                governor.on_success(sent_at=sent_at)
            if logger.isEnabledFor(logging.DEBUG):
                log_attempt(request, number, started, None, response.status)
            return data

        return self._retrying(attempt, on_retry)

    async def _failed(self, exc: MemoriesError, sent_at: float) -> None:
        governor = self.governor
        retry_after = exc.retry_after
        if exc.rate_limited:
            if governor.shared:
                await governor.answered(sent_at=sent_at, refused=True, retry_after=retry_after)
            else:
                governor.on_rate_limited(sent_at=sent_at, retry_after=retry_after)
        elif retry_after is not None:
            # A server that asks every caller to wait (503 + Retry-After).
            if governor.shared:
                await governor.pause_shared(retry_after)
            else:
                governor.pause(retry_after)
        if isinstance(exc, AccountError) and self._root._fatal is None:
            self._root._fatal = exc


def _is_empty(transcript: Transcript) -> bool:
    return transcript.is_empty
