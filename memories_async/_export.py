"""Exporting many transcripts: video numbers in, the batch engine, a sink and a failures file out.

::

    ids (args / file / stdin / list_videos) ─> dispatcher ─┬─> visual queue ─> batch ─┐
          drops duplicates and what the sink holds         └─> audio queue  ─> batch ─┤
                                                                                      v
                       failures file <─ Failed ── consumer ── Fetched ─> sink.commit (durable)

The dispatcher reads the ids ahead of the fetching (all of standard input or of a listing,
as fast as they come, so that the total is known early), drops repeated numbers, skips every
(video, kind) the output already holds (that is what makes a rerun resume) and hands the
rest to one :class:`~memories_async.TranscriptBatch` per kind, so that a video whose visual
transcript was exported by an earlier run costs only its audio request. The kinds share the
concurrency and the client's rate governor. Each outcome is written as it arrives: a
transcript through :meth:`Sink.commit`, a failure to the :class:`FailureLog`. Nothing is
written in the middle of an ``await``, so cancelling the export (Ctrl-C) at any point
leaves every committed transcript in place and nothing half written.

Nothing here prints: progress goes to an ``on_progress`` callback, which the command line
turns into a progress bar.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Sequence,
)
from typing import Any

import attrs

from ._batch import BatchEvent, EventType, Fetched, LatencyHistogram, Outcome
from ._client import MemoriesClient
from ._errors import MemoriesError
from ._models import TranscriptKind
from ._sinks import FailureLog, Sink, failure_code, one_line

logger = logging.getLogger("memories_async.export")


@attrs.define
class ExportStats:
    """Counters of an export run, updated as it goes; read them for progress and summary.

    ``total`` is how many (video, kind) pairs this run has to fetch, once known (an id file
    is counted before the run; standard input and a library listing only when read to the
    end); ``None`` until then. ``skipped`` counts pairs the output held already,
    ``duplicates`` repeated ids of the input.
    """

    total: int | None = None
    queued: int = 0
    exported: int = 0
    empty: int = 0
    """Exported transcripts without any segment (no speech, not processed, other namespace)."""
    skipped: int = 0
    duplicates: int = 0
    failed: int = 0
    retries: int = 0
    """Attempts that failed and were retried, rate-limit answers included."""
    rate_limited: int = 0
    """Rate-limit answers the client received (refused by the quota, then retried)."""
    pacing: float | None = None
    """Requests per second the client paces at now (``None``: unlimited)."""
    started: float = attrs.field(factory=time.monotonic)
    finished: float | None = None
    latency: LatencyHistogram = attrs.field(factory=LatencyHistogram)
    """Seconds per exported transcript, retries included."""

    @property
    def done(self) -> int:
        """Pairs finished by this run, exported or failed."""
        return self.exported + self.failed

    def elapsed(self, now: float | None = None) -> float:
        """Seconds since the run started (until it finished, once it has)."""
        end = self.finished if self.finished is not None else now
        return max((time.monotonic() if end is None else end) - self.started, 0.0)

    def rate(self, now: float | None = None) -> float:
        """Pairs finished per second so far."""
        elapsed = self.elapsed(now)
        return self.done / elapsed if elapsed > 0 else 0.0

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left at the current rate; ``None`` when the total or the rate is unknown."""
        rate = self.rate(now)
        if self.total is None or rate <= 0:
            return None
        return max(self.total - self.done, 0) / rate


@attrs.frozen
class FailureRecord:
    """One (video, kind) the export could not write, as the failures file records it."""

    video_no: str
    kind: TranscriptKind
    code: str
    attempts: int
    message: str


def split_concurrency(total: int, parts: int, /) -> list[int]:
    """Share ``total`` concurrent requests among ``parts`` batches, at least one each."""
    if parts < 1:
        raise ValueError(f"'parts' must be >= 1, got {parts}")
    return [max(1, total // parts + (1 if i < total % parts else 0)) for i in range(parts)]


def count_pending(
    video_nos: Iterable[str], kinds: Sequence[TranscriptKind], sink: Sink, /
) -> tuple[int, int]:
    """Count the distinct pairs of ``video_nos`` x ``kinds`` to fetch and those ``sink`` holds.

    Returns ``(pending, done)``; ``video_nos`` must already be distinct.
    """
    pending = done = 0
    for number in video_nos:
        for kind in kinds:
            if sink.is_done(number, kind):
                done += 1
            else:
                pending += 1
    return pending, done


async def library_video_nos(
    client: MemoriesClient, /, *, status: str | None, unique_id: str | None = None
) -> AsyncGenerator[str, None]:
    """Yield the number of every video of the library, page by page, lazily.

    ``status`` filters on the service side (``"PARSE"``: videos whose transcripts are
    ready); ``None`` lists every video.
    """
    videos = client.list_videos(status=status, unique_id=unique_id)
    try:
        async for video in videos:
            yield video.video_no
    finally:
        close = getattr(videos, "aclose", None)
        if close is not None:
            await close()


async def export_transcripts(
    client: MemoriesClient,
    video_nos: AsyncIterable[str],
    sink: Sink,
    /,
    *,
    kinds: Sequence[TranscriptKind],
    max_concurrency: int,
    stats: ExportStats,
    failures: FailureLog | None = None,
    on_progress: Callable[[ExportStats], None] | None = None,
    on_failure: Callable[[FailureRecord], None] | None = None,
    heartbeat: float | None = 1.0,
    read_ahead: int | None = None,
) -> ExportStats:
    """Fetch the transcripts of ``video_nos`` in every kind of ``kinds`` and commit them.

    Pairs ``sink`` already holds are skipped; repeated numbers are fetched once. At most
    ``max_concurrency`` requests are in flight, shared among the kinds. Each transcript is
    committed to ``sink`` as it arrives; each failure is recorded in ``failures`` and passed
    to ``on_failure``. ``on_progress`` receives ``stats`` after every outcome and every
    ``heartbeat`` seconds. ``stats`` is updated in place, so the caller still has the counts
    when the export is cancelled or raises.

    ``read_ahead`` bounds how many pairs per kind wait between the input and the fetching.
    ``None`` (the default) reads the input to its end as fast as it comes, so that
    ``stats.total`` is known early; the waiting numbers are the strings the dedupe set holds
    already, so that costs a pointer per pair. Pass a bound when the total is known
    beforehand (``stats.total`` set by the caller).

    Raises :class:`~memories_async.AccountHaltedError` when an account-wide error stops the
    fetching (what finished before stays committed), the error of ``video_nos`` if reading
    it fails (an :class:`~memories_async._ids.IdInputError`, or a
    :class:`~memories_async.MemoriesError` from a library listing), and :class:`OSError`
    when the output or the failures file cannot be written.
    """
    if not kinds:
        raise ValueError("'kinds' must name at least one TranscriptKind")
    run = _ExportRun(
        client,
        sink,
        kinds=kinds,
        stats=stats,
        failures=failures,
        on_progress=on_progress,
        on_failure=on_failure,
    )
    await run.run(video_nos, max_concurrency, heartbeat, read_ahead)
    return stats


class _ExportRun:
    """The tasks and callbacks of one :func:`export_transcripts` call."""

    def __init__(
        self,
        client: MemoriesClient,
        sink: Sink,
        /,
        *,
        kinds: Sequence[TranscriptKind],
        stats: ExportStats,
        failures: FailureLog | None,
        on_progress: Callable[[ExportStats], None] | None,
        on_failure: Callable[[FailureRecord], None] | None,
    ) -> None:
        self.client = client
        self.sink = sink
        self.kinds = tuple(kinds)
        self.stats = stats
        self.failures = failures
        self.on_progress = on_progress
        self.on_failure = on_failure
        self.seen: set[str] = set()

    async def run(
        self,
        video_nos: AsyncIterable[str],
        max_concurrency: int,
        heartbeat: float | None,
        read_ahead: int | None,
    ) -> None:
        """Feed one batch per kind from the ids and consume every outcome."""
        queues: list[tuple[TranscriptKind, asyncio.Queue[str | None]]] = [
            (kind, asyncio.Queue(maxsize=read_ahead or 0)) for kind in self.kinds
        ]
        shares = split_concurrency(max_concurrency, len(queues))
        try:
            async with contextlib.AsyncExitStack() as stack:
                batches = []
                for (kind, queue), share in zip(queues, shares, strict=True):
                    batch = self.client.fetch_transcriptions(
                        _drain(queue),
                        kind=kind,
                        max_concurrency=share,
                        dedupe=False,
                        on_event=self.on_event,
                    )
                    batches.append(await stack.enter_async_context(batch))
                async with asyncio.TaskGroup() as group:
                    group.create_task(self.dispatch(video_nos, queues))
                    consumers = [group.create_task(self.consume(batch)) for batch in batches]
                    ticker = None
                    if heartbeat is not None:
                        ticker = group.create_task(self.beat(heartbeat))
                    await asyncio.wait(consumers)
                    if ticker is not None:
                        ticker.cancel()
        except BaseExceptionGroup as errors:
            raise _first_error(errors) from None
        finally:
            self.stats.finished = time.monotonic()
            self.progress()

    def progress(self) -> None:
        """Refresh the rate-limit count and pass the stats to ``on_progress``."""
        governor = self.client.governor.stats()
        self.stats.rate_limited = governor.refused
        self.stats.pacing = governor.rate
        if self.on_progress is not None:
            self.on_progress(self.stats)

    def on_event(self, event: BatchEvent) -> None:
        """Count retries as the batches report them."""
        if event.type in (EventType.RETRIED, EventType.RATE_LIMITED):
            self.stats.retries += 1

    def fail(
        self, video_no: str, kind: TranscriptKind, code: str, attempts: int, message: str
    ) -> None:
        """Count a failure, append it to the failures file and report it."""
        self.stats.failed += 1
        record = FailureRecord(video_no, kind, code, attempts, one_line(message))
        if self.failures is not None:
            self.failures.record(video_no, kind, code, attempts, record.message)
        if self.on_failure is not None:
            self.on_failure(record)

    def handle(self, outcome: Outcome) -> None:
        """Commit a fetched transcript, or record a failure."""
        if not isinstance(outcome, Fetched):
            error = outcome.error
            code = failure_code(error)
            self.fail(outcome.video_no, outcome.kind, code, outcome.attempts, str(error))
            return
        transcript = outcome.transcript
        if self.sink.is_done(outcome.video_no, outcome.kind):  # pragma: no cover - deduped
            self.stats.duplicates += 1
            return
        try:
            self.sink.commit(transcript)
        except (ValueError, TypeError) as exc:
            self.fail(outcome.video_no, outcome.kind, "render", outcome.attempts, str(exc))
            return
        self.stats.exported += 1
        if transcript.is_empty:
            self.stats.empty += 1
        self.stats.latency.add(outcome.elapsed)

    async def dispatch(
        self,
        video_nos: AsyncIterable[str],
        queues: list[tuple[TranscriptKind, asyncio.Queue[str | None]]],
    ) -> None:
        """Hand each new (video, kind) the sink does not hold to the batch of its kind."""
        stats = self.stats
        numbers = aiter(video_nos)
        try:
            async for number in numbers:
                if number in self.seen:
                    stats.duplicates += 1
                    continue
                self.seen.add(number)
                for kind, queue in queues:
                    if self.sink.is_done(number, kind):
                        stats.skipped += 1
                        continue
                    stats.queued += 1
                    await queue.put(number)
        finally:
            # Close the source now (a listing, a stdin reader), not when it is collected.
            close = getattr(numbers, "aclose", None)
            if close is not None:
                await close()
        stats.total = stats.queued
        for _kind, queue in queues:
            await queue.put(None)

    async def consume(self, batch: AsyncIterable[Outcome]) -> None:
        """Handle every outcome of one batch as it arrives."""
        async for outcome in batch:
            self.handle(outcome)
            self.progress()

    async def beat(self, interval: float) -> None:
        """Report progress every ``interval`` seconds, even when nothing finishes."""
        while True:
            await asyncio.sleep(interval)
            self.progress()


async def _drain(queue: asyncio.Queue[str | None]) -> AsyncIterator[str]:
    """Yield the numbers put in ``queue`` until its ``None`` end mark."""
    while (number := await queue.get()) is not None:
        yield number


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that stopped a task group: the first that is not a cancellation."""
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            return _first_error(error)
        if not isinstance(error, asyncio.CancelledError):
            return error
    return group.exceptions[0]  # pragma: no cover - a group holds a real error


def summary_data(
    stats: ExportStats,
    /,
    *,
    status: str,
    exit_code: int,
    output: str,
    fmt: str,
    kinds: Sequence[TranscriptKind],
    failures_file: str | None,
    error: str | None = None,
) -> dict[str, Any]:
    """The summary of a run as JSON-ready data, for ``--json-summary`` and the table.

    ``status`` is ``"completed"``, ``"completed_with_failures"``, ``"interrupted"``,
    ``"halted"`` (an account-wide error) or ``"error"``.
    """
    elapsed = stats.elapsed()
    return {
        "status": status,
        "exit_code": exit_code,
        "exported": stats.exported,
        "empty": stats.empty,
        "skipped": stats.skipped,
        "failed": stats.failed,
        "duplicates": stats.duplicates,
        "total": stats.total,
        "retries": stats.retries,
        "rate_limited": stats.rate_limited,
        "pacing": stats.pacing,
        "elapsed_seconds": round(elapsed, 3),
        "rate_per_second": round(stats.rate(), 3),
        "latency_p50_seconds": _rounded(stats.latency.percentile(50)),
        "latency_p95_seconds": _rounded(stats.latency.percentile(95)),
        "output": output,
        "format": fmt,
        "kinds": [kind.value for kind in kinds],
        "failures_file": failures_file,
        "error": error,
    }


def _rounded(value: float | None) -> float | None:
    """Round a figure of the summary; ``None`` stays ``None``."""
    return None if value is None else round(value, 4)


def describe_failure(record: FailureRecord, /) -> str:
    """One line for a failure: ``VI… audio: <message> (3 attempts)``."""
    attempts = f" ({record.attempts} attempts)" if record.attempts > 1 else ""
    return f"{record.video_no} {record.kind.value}: {record.message}{attempts}"


def error_message(error: BaseException, /) -> str:
    """One line for an error that stopped the export."""
    if isinstance(error, MemoriesError):
        return str(error)
    return one_line(str(error)) or type(error).__name__
