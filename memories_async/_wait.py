"""Videos still being processed: telling "not ready" from "no speech", and waiting for them.

A transcript exists only once its video is in status ``PARSE``. Before that the service
answers ``"0000"`` with an empty transcript, the very answer it gives for a video without
speech, so an empty answer alone says nothing: its video's status does.

::

    empty answer ─> Readiness.status ─┬─ PARSE (or unknown here): a true empty transcript
      (a batch job)   (bulk lookups)  ├─ failed: ProcessingFailedError
                                      └─ not ready: VideoNotReadyError, or with wait=True
                                         Readiness.until_ready ─> (polled together) ─> fetch again

Statuses are looked up in bulk: one ``list_videos`` request filtered by ``video_nos`` gives
the statuses of up to 200 videos, where ``get_metadata`` gives one (and has the lowest
limit of the API, about 1 QPS). :meth:`Readiness.status` keeps one lookup in flight at a
time, and the lookups (with the polls below) take at most :data:`POLL_SHARE` of the
governor's pacing; the numbers asked for meanwhile go together in the next lookup. So
the lookups of a batch whose answers are all empty take at most a quarter of its
requests (one per 200 empty answers when many come at once). A listing that already
gave the statuses (``export --all``) spends none.

Parked jobs (``wait=True``) give their batch slots back and are polled together: every
``poll`` seconds, one ``list_videos`` request per 200 parked videos, spaced as the
lookups are: at most :data:`POLL_SHARE` of the governor's pacing, leaving the rest to
transcripts. Every request goes through the client's one governor, which paces against
the account's quota.

:func:`wait_until_ready` waits for one video with ``get_metadata``, backing off. One
:class:`PollPacer` per client gives the turns of all these checks, the batches' and the
waits' together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from ._errors import (
    AccountError,
    MemoriesError,
    ProcessingFailedError,
    VideoNotFoundError,
    VideoNotReadyError,
    WaitTimeoutError,
)
from ._models import VideoStatus
from ._protocol import MAX_PAGE_SIZE, check_video_no

if TYPE_CHECKING:
    from ._client import MemoriesClient
    from ._governor import RateGovernor
    from ._models import Video

logger = logging.getLogger("memories_async")

READY: Final = VideoStatus.PARSE.value
FAILED_STATUSES: Final = frozenset(
    {VideoStatus.PARSE_ERROR.value, VideoStatus.FAIL.value, VideoStatus.FAILED.value}
)
"""The status words of a video whose processing failed (its transcripts never come)."""

DEFAULT_POLL: Final = 10.0
"""Seconds between two checks of the videos a batch waits for."""

POLL_SHARE: Final = 0.25
"""The share of the governor's pacing that polling may take at most."""

MAX_BACKOFF: Final = 60.0
"""The longest wait between two checks of :func:`wait_until_ready` (unless ``poll`` is longer)."""


def is_failed(status: str, /) -> bool:
    """Whether ``status`` says that the video's processing failed."""
    return status.upper() in FAILED_STATUSES


class PollPacer:
    """The turns of one client's status checks: batch lookups and polls, and the checks of
    :func:`wait_until_ready`, together at most :data:`POLL_SHARE` of its governor's pace
    (none without a rate), however many batches and waits ask. So polling never takes
    more than a quarter of the requests, and many waits at once cost what one does."""

    __slots__ = ("_free_at",)

    def __init__(self) -> None:
        self._free_at = -math.inf

    async def turn(self, governor: RateGovernor) -> None:
        """Wait for the next check's turn."""
        rate = governor.rate
        if rate is None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(now, self._free_at)
        self._free_at = start + 1.0 / (POLL_SHARE * rate)
        if start > now:
            await asyncio.sleep(start - now)


async def lookup_statuses(
    client: MemoriesClient, numbers: list[str], /, *, unique_id: str | None
) -> dict[str, str | None]:
    """The status of each of ``numbers`` (at most 200), ``None`` for a video not found.

    One ``list_videos`` request filtered by ``video_nos``; a number that the page does not
    hold (a service that ignored the filter, a video of another namespace) is asked for
    with ``get_metadata``.
    """
    wanted = set(numbers)
    found: dict[str, str | None] = {}
    videos = client.list_videos(video_nos=numbers, unique_id=unique_id)
    seen = 0
    try:
        async for video in videos:
            seen += 1
            if video.video_no in wanted:
                found[video.video_no] = str(video.status)
            if len(found) == len(wanted) or seen >= MAX_PAGE_SIZE:
                break  # never more than the first page
    finally:
        close = getattr(videos, "aclose", None)
        if close is not None:
            await close()
    for number in numbers:
        if number not in found:
            metadata = await client.get_metadata(number, unique_id=unique_id)
            found[number] = None if metadata is None else str(metadata.status)
    return found


class Readiness:
    """What one batch needs to tell an empty answer of a video not ready, and to wait.

    ``empty(result)`` says whether a fetched result is an empty transcript. ``known``
    maps numbers to the status a listing gave (then every number is taken as known:
    one absent from it is ready). With ``wait``, :meth:`until_ready` parks a job until
    its video is ready, for at most ``timeout`` seconds (``None``: no limit), checking
    every ``poll`` seconds.
    """

    def __init__(
        self,
        client: MemoriesClient,
        /,
        *,
        unique_id: str | None,
        empty: Callable[[Any], bool],
        wait: bool = False,
        poll: float = DEFAULT_POLL,
        timeout: float | None = None,
        known: Mapping[str, str] | None = None,
    ) -> None:
        check_wait_settings(poll, timeout)
        self.client = client
        self.unique_id = unique_id
        self.empty = empty
        self.wait = wait
        self.poll = poll
        self.timeout = timeout
        self.known = known
        self.lookups = 0
        """Status lookups made (``list_videos`` requests, polls included)."""
        self.readied = 0
        """Jobs that waited for their video until it was ready."""
        self._asked: dict[str, list[asyncio.Future[str | None]]] = {}
        self._asker: asyncio.Task[None] | None = None
        self._parked: dict[str, list[asyncio.Future[None]]] = {}
        self._last: dict[str, str] = {}
        self._poller: asyncio.Task[None] | None = None

    async def _pace(self) -> None:
        """Wait for the next lookup's turn (see :class:`PollPacer`), leaving the rest of
        the governor's pace to transcripts."""
        await self.client._poll_pacer.turn(self.client.governor)

    def known_pending(self, video_no: str, /) -> bool:
        """Whether a listing said that ``video_no`` is not ready (then its empty answer
        need not be asked for)."""
        return self.known is not None and video_no in self.known

    async def status(self, video_no: str, /) -> str | None:
        """The status of ``video_no`` (``None``: not found), looked up in bulk."""
        if self.known is not None:
            return self.known.get(video_no, READY)
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._asked.setdefault(video_no, []).append(future)
        if self._asker is None:
            self._asker = asyncio.create_task(self._ask(), name="memories-async-status")
        return await future

    async def _ask(self) -> None:
        try:
            while self._asked:
                await self._pace()  # what is asked for meanwhile joins this lookup
                chunk = list(self._asked)[:MAX_PAGE_SIZE]
                futures = {number: self._asked.pop(number) for number in chunk}
                try:
                    self.lookups += 1
                    statuses = await lookup_statuses(self.client, chunk, unique_id=self.unique_id)
                except MemoriesError as exc:
                    for waiting in futures.values():
                        for future in waiting:
                            if not future.done():
                                future.set_exception(exc)
                    continue
                except BaseException:
                    for waiting in futures.values():
                        for future in waiting:
                            future.cancel()
                    raise
                for number, waiting in futures.items():
                    for future in waiting:
                        if not future.done():
                            future.set_result(statuses[number])
        finally:
            self._asker = None

    async def until_ready(self, video_no: str, status: str, /) -> None:
        """Wait until ``video_no`` (now in ``status``) is ready.

        Raises :class:`ProcessingFailedError` when its processing fails,
        :class:`VideoNotFoundError` when it disappears, :class:`WaitTimeoutError` after
        ``timeout`` seconds, and what a status lookup raised for the whole account.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._parked.setdefault(video_no, []).append(future)
        self._last[video_no] = status
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll(), name="memories-async-poll")
        try:
            async with asyncio.timeout(self.timeout):
                await future
            self.readied += 1
        except TimeoutError:
            assert self.timeout is not None
            status = self._last.get(video_no, status)
            raise WaitTimeoutError(status, timeout=self.timeout, video_no=video_no) from None
        finally:
            waiting = self._parked.get(video_no)
            if waiting is not None:
                with contextlib.suppress(ValueError):
                    waiting.remove(future)
                if not waiting:
                    del self._parked[video_no]
                    self._last.pop(video_no, None)

    async def _poll(self) -> None:
        try:
            while self._parked:
                await asyncio.sleep(self.poll)
                numbers = list(self._parked)
                for start in range(0, len(numbers), MAX_PAGE_SIZE):
                    await self._pace()
                    await self._check(numbers[start : start + MAX_PAGE_SIZE])
        finally:
            self._poller = None

    async def _check(self, numbers: list[str]) -> None:
        try:
            self.lookups += 1
            statuses = await lookup_statuses(self.client, numbers, unique_id=self.unique_id)
        except AccountError as exc:
            self._settle(numbers, exc)
            return
        except MemoriesError as exc:
            logger.warning("checking whether %d videos are ready failed: %s", len(numbers), exc)
            return
        for number in numbers:
            status = statuses[number]
            if status == READY:
                self._settle([number], None)
            elif status is None:
                self._settle([number], VideoNotFoundError(video_no=number))
            elif is_failed(status):
                self._settle([number], ProcessingFailedError(status, video_no=number))
            elif number in self._last:
                self._last[number] = status

    def _settle(self, numbers: Iterable[str], error: BaseException | None) -> None:
        for number in numbers:
            for future in self._parked.pop(number, ()):
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)
            self._last.pop(number, None)

    async def aclose(self) -> None:
        """Stop the lookups and the polling, leaving no task behind."""
        tasks = [task for task in (self._asker, self._poller) if task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def not_ready_error(video_no: str, status: str, /) -> MemoriesError:
    """The error of a video that is not ready: failed processing, or still processing."""
    if is_failed(status):
        return ProcessingFailedError(status, video_no=video_no)
    return VideoNotReadyError(status, video_no=video_no)


def check_wait_settings(poll: float, timeout: float | None, /) -> None:
    """Raise :class:`ValueError` for a ``poll`` or ``timeout`` that is not a positive number."""
    if isinstance(poll, bool) or not isinstance(poll, int | float) or not poll > 0:
        raise ValueError(f"'poll' must be a number of seconds > 0, got {poll!r}")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
    ):
        raise ValueError(f"'timeout' must be a number of seconds > 0 or None, got {timeout!r}")


async def wait_until_ready(
    client: MemoriesClient,
    video_no: str,
    /,
    *,
    unique_id: str | None,
    timeout: float | None,  # noqa: ASYNC109 - a deadline for the whole wait
    poll: float,
) -> Video:
    """:meth:`MemoriesClient.wait_until_ready`: ``get_metadata`` until ``PARSE``, backing off,
    in a ``memories.wait_until_ready`` span when the client's telemetry is on."""
    check_wait_settings(poll, timeout)
    number = check_video_no(video_no)
    telemetry = client._observer()
    if telemetry is None:
        return await _poll_until_ready(client, number, unique_id, timeout, poll)
    with telemetry.wait_span(number, timeout=timeout, poll=poll) as span:
        try:
            video = await _poll_until_ready(client, number, unique_id, timeout, poll)
        except MemoriesError as exc:
            telemetry.end_wait(span, exc)
            raise
        telemetry.end_wait(span, None)
        return video


async def _poll_until_ready(
    client: MemoriesClient,
    number: str,
    unique_id: str | None,
    timeout: float | None,  # noqa: ASYNC109 - a deadline for the whole wait
    poll: float,
) -> Video:
    interval = poll
    status = "unknown"
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            while True:
                await client._poll_pacer.turn(client.governor)
                video = await client.get_metadata(number, unique_id=unique_id)
                if video is None:
                    raise VideoNotFoundError(video_no=number)
                status = str(video.status)
                if status == READY:
                    return video
                if is_failed(status):
                    raise ProcessingFailedError(status, video_no=number)
                await asyncio.sleep(interval)
                interval = min(interval * 1.5, max(poll, MAX_BACKOFF))
    except TimeoutError:
        if timeout is None or not deadline.expired():
            raise  # not the wait's deadline
        raise WaitTimeoutError(status, timeout=timeout, video_no=number) from None
