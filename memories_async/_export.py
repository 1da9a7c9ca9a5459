"""Exporting many transcripts: video numbers in, the batch engine, a sink and a failures file out.

::

    ids (args / file / stdin / list_videos) ─> jobs ─> one batch ─> outcomes ─┬─> sink.commit
      a lazy generator of the (video, kind) pairs still to do                └─> failures file

The ids become jobs in one lazy generator: each video number stands for every kind asked
for, an id line that names a kind for that pair only. The generator drops repeated pairs
and skips every pair the output already holds (that is what makes a rerun resume), so a
video whose visual transcript was exported by an earlier run costs only its audio request.
Every job then goes through one :class:`~memories_async.TranscriptBatch`: the kinds share
the whole concurrency and the client's rate governor, whatever is left of each. Each
outcome is written as it arrives: a transcript through :meth:`Sink.commit`, a failure to
the :class:`FailureLog`. Nothing is written in the middle of an ``await``, so cancelling the
export (Ctrl-C) at any point leaves every committed transcript in place and nothing half
written.

Nothing here prints: progress goes to an ``on_progress`` callback, which the command line
turns into a progress bar.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import Any, Final

import attrs

from ._batch import (
    Failed,
    Fetched,
    LatencyHistogram,
    TranscriptBatch,
    batch_kinds,
    jobs_of,
)
from ._client import MemoriesClient
from ._converter import live_rows, structure_transcript
from ._errors import MemoriesError, ProcessingFailedError, VideoNotReadyError
from ._formats import ExportFormat, jsonl_line_of_rows
from ._ids import IdItem, NumberSet, aiter_numbers, iter_id_lines
from ._models import Transcript, TranscriptKind, VideoStatus
from ._redact import Redactor
from ._sinks import (
    COMMIT_EVERY,
    COMMIT_INTERVAL,
    FailureLog,
    Sink,
    check_output,
    default_failures_path,
    failure_code,
    one_line,
    open_sink,
)
from ._wait import DEFAULT_POLL, READY, Readiness

logger = logging.getLogger("memories_async.export")


@attrs.frozen(slots=True)
class _Line:
    """A transcript read straight into its JSON line (see :meth:`_ExportRun.structure`)."""

    video_no: str
    kind: TranscriptKind
    data: bytes
    empty: bool


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
    pairs: int = 0
    """Items of the input that named one (video, kind) pair, such as the lines of a
    failures file given back to ``--ids``."""
    failed: int = 0
    not_ready: int = 0
    """Failures of videos still being processed (without ``wait``, or when the wait ran
    out): a rerun fetches them again."""
    processing_failed: int = 0
    """Failures of videos whose processing failed (found when their answer was empty)."""
    waiting: int = 0
    """(video, kind) pairs waiting for their video to finish processing, now."""
    waited: int = 0
    """Pairs that waited for their video, then were fetched."""
    passed_over: dict[str, int] = attrs.field(factory=dict)
    """Videos of a library listing (``--all``) not exported because they are in another
    status than the one listed, by status word: still processing (``UNPARSE``) or failed
    processing (``PARSE_ERROR``, ``FAIL``, ``FAILED``)."""
    retries: int = 0
    """Attempts that failed and were retried, rate-limit answers included."""
    rate_limited: int = 0
    """Rate-limit answers the client received (refused by the quota, then retried)."""
    pacing: float | None = None
    """Requests per second the client paces at now (``None``: unlimited)."""
    started: float = attrs.field(factory=time.monotonic)
    finished: float | None = None
    latency: LatencyHistogram = attrs.field(factory=LatencyHistogram)
    """Seconds from the first attempt to the answer of each transcript fetched, retries
    included."""

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


HOLD_MAX: Final = 64
"""The most listings of ``--follow`` that a pair failing again and again is passed over."""


class HeldBack:
    """The pairs that failed in a ``--follow`` run, passed over by the next listings.

    A pair that failed ``n`` times is fetched again at the ``2 ** (n - 1)``-th listing
    after its last failure (the next one, then every second, fourth, ... up to
    :data:`HOLD_MAX`), so that a video that fails for good costs a few requests and
    lines of the failures file an hour rather than one at every listing, while a
    transient failure is retried at once. Only this run remembers them: a new run
    fetches them all again.
    """

    __slots__ = ("_pairs", "held", "listing")

    def __init__(self) -> None:
        self._pairs: dict[tuple[str, TranscriptKind], tuple[int, int]] = {}
        self.listing = 0
        """The listing in progress (from 0); :meth:`next_listing` moves it on."""
        self.held = 0
        """The pairs passed over by the listing in progress."""

    def failed(self, record: FailureRecord) -> None:
        """Note a failure of this listing."""
        key = (record.video_no, record.kind)
        count = self._pairs.get(key, (0, 0))[0] + 1
        self._pairs[key] = (count, self.listing + min(2 ** (count - 1), HOLD_MAX))

    def next_listing(self) -> None:
        self.listing += 1
        self.held = 0

    async def filter(
        self, items: AsyncIterator[IdItem], kinds: Sequence[TranscriptKind]
    ) -> AsyncIterator[IdItem]:
        """``items`` without the pairs held back by this listing."""
        pairs, listing = self._pairs, self.listing
        async for item in items:
            if not pairs:
                yield item
                continue
            jobs = jobs_of(item, kinds)
            if not any(job in pairs for job in jobs):
                yield item
                continue
            for job in jobs:
                held = pairs.get(job)
                if held is not None and listing < held[1]:
                    self.held += 1
                else:
                    yield job


def count_pending(
    items: Iterable[IdItem], kinds: Sequence[TranscriptKind], sink: Sink, /
) -> tuple[int, int]:
    """Count the pairs ``items`` stand for that are to fetch, and those ``sink`` holds.

    Returns ``(pending, done)``. Repeated pairs are counted each time: this is the cheap
    pass over an id file that gives the progress display its total (corrected when the
    input ends), in memory that does not grow with the file.
    """
    pending = done = 0
    if not sink.done_count:  # nothing to look up: count the pairs
        per_number = len(kinds)
        for item in items:
            pending += 1 if isinstance(item, tuple) else per_number
        return pending, 0
    for item in items:
        for number, kind in jobs_of(item, kinds):
            if sink.is_done(number, kind):
                done += 1
            else:
                pending += 1
    return pending, done


async def library_video_nos(
    client: MemoriesClient,
    /,
    *,
    status: str | None,
    unique_id: str | None = None,
    passed_over: dict[str, int] | None = None,
    statuses: dict[str, str] | None = None,
) -> AsyncGenerator[str, None]:
    """Yield the number of every video of the library, page by page, lazily.

    ``status`` filters on the service side (``"PARSE"``: videos whose transcripts are
    ready); ``None`` lists every video. With a ``passed_over`` mapping, the listing is of
    every video, filtered here: the videos in another status are counted in it, by status
    word (``{"UNPARSE": 20, "FAILED": 7}``), so that a summary can say why they were not
    exported. With a ``statuses`` mapping, the status of every video yielded that is not
    ``PARSE`` is kept in it, so that the export knows, without asking, which empty
    answers are of videos not ready.
    """
    count = passed_over is not None and status is not None
    videos = client.list_videos(status=None if count else status, unique_id=unique_id)
    try:
        async for video in videos:
            if count and video.status != status:
                assert passed_over is not None
                word = str(video.status)
                passed_over[word] = passed_over.get(word, 0) + 1
                continue
            if statuses is not None and video.status != READY:
                statuses[video.video_no] = str(video.status)
            yield video.video_no
    finally:
        close = getattr(videos, "aclose", None)
        if close is not None:
            await close()


async def export_to_sink(
    client: MemoriesClient,
    video_nos: AsyncIterable[IdItem],
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
    commit_every: int = COMMIT_EVERY,
    commit_interval: float = COMMIT_INTERVAL,
    wait: bool = False,
    wait_timeout: float | None = None,
    poll: float = DEFAULT_POLL,
    statuses: Mapping[str, str] | None = None,
) -> ExportStats:
    """Fetch the transcripts of ``video_nos`` in every kind of ``kinds`` and commit them.

    An item of ``video_nos`` may also be a ``(video_no, kind)`` pair: that pair only.
    Pairs ``sink`` already holds are skipped; repeated pairs are fetched once. At most
    ``max_concurrency`` requests are in flight, shared by every kind. Each transcript is
    committed to ``sink`` as it arrives; each failure is recorded in ``failures`` and passed
    to ``on_failure``. ``on_progress`` receives ``stats`` after every outcome and every
    ``heartbeat`` seconds. ``stats`` is updated in place, so the caller still has the counts
    when the export is cancelled or raises.

    The input is read lazily, as the fetching needs it: ``stats.total`` is set once it is
    read to its end, unless the caller counted it beforehand.

    An empty answer is committed only when its video is ready (status ``PARSE``): the
    statuses come from ``statuses`` when given (the listing's: every number absent from
    it is ready), else from bulk lookups. A video not ready is a failure (``not_ready``,
    ``processing_failed``), never recorded as done, so a rerun fetches it again; with
    ``wait`` its pairs wait for it (at most ``wait_timeout`` seconds, checked every
    ``poll``) and are committed as soon as it is ready.

    Records are made durable in groups, off the event loop (:meth:`Sink.sync` in a worker
    thread): after ``commit_every`` records or ``commit_interval`` seconds, whichever comes
    first, and when the export ends. Everything is durable when this returns; if it is
    cancelled or raises, closing ``sink`` and ``failures`` commits what they hold.

    Raises :class:`~memories_async.AccountHaltedError` when an account-wide error stops the
    fetching (what finished before stays committed), the error of ``video_nos`` if reading
    it fails (an :class:`~memories_async._ids.IdInputError`, or a
    :class:`~memories_async.MemoriesError` from a library listing), and :class:`OSError`
    when the output or the failures file cannot be written.
    """
    if not kinds:
        raise ValueError("'kinds' must name at least one TranscriptKind")
    if commit_every < 1 or not commit_interval > 0:
        raise ValueError(
            f"'commit_every' must be >= 1 and 'commit_interval' > 0,"
            f" got {commit_every} and {commit_interval}"
        )
    run = _ExportRun(
        client,
        sink,
        kinds=kinds,
        stats=stats,
        failures=failures,
        on_progress=on_progress,
        on_failure=on_failure,
        commit_every=commit_every,
        commit_interval=commit_interval,
    )
    run.readiness = Readiness(
        client,
        unique_id=client.config.unique_id,
        empty=_is_empty_result,
        wait=wait,
        poll=poll,
        timeout=wait_timeout,
        known=statuses,
    )
    telemetry = client._observer()
    if telemetry is None:
        await run.run(video_nos, max_concurrency, heartbeat)
        return stats
    with telemetry.export_span(sink.format, kinds) as span:
        try:
            await run.run(video_nos, max_concurrency, heartbeat)
        finally:
            telemetry.end_export(span, stats)
    return stats


async def export_transcripts(
    client: MemoriesClient,
    video_nos: Iterable[IdItem] | AsyncIterable[IdItem],
    out: str | os.PathLike[str],
    /,
    *,
    format: ExportFormat | str = ExportFormat.JSONL,
    kind: TranscriptKind | str | Iterable[TranscriptKind | str] = TranscriptKind.VISUAL,
    max_concurrency: int = 16,
    failures: str | os.PathLike[str] | None = None,
    on_progress: Callable[[ExportStats], None] | None = None,
    on_failure: Callable[[FailureRecord], None] | None = None,
    commit_interval: float = COMMIT_INTERVAL,
    wait: bool = False,
    wait_timeout: float | None = None,
    poll: float = DEFAULT_POLL,
) -> ExportStats:
    """Export transcripts to a file or directory with the command line's guarantees.

    ::

        async with MemoriesClient() as client:
            stats = await export_transcripts(client, video_nos, "library.jsonl", kind="both")

    The crash-safe, resumable export of ``memories-async export``, from code:
    ``video_nos`` (any iterable or async iterable of video numbers, or of
    ``(video_no, kind)`` pairs) go to ``out`` in ``format``: a ``jsonl`` or
    ``csv`` file with its ledger (``out + ".ledger"``), or a directory of
    ``srt``, ``vtt`` or ``txt`` files. Calling it again with the same ``out``
    resumes: what ``out`` holds is skipped, and a process killed at any moment
    leaves every transcript there exactly once or not at all. Failures are
    appended to ``failures`` (by default ``out + ".failures.tsv"``, or
    ``failures.tsv`` in the directory), a file that can be given back as
    ``video_nos`` through :func:`read_id_file` to retry exactly what failed.

    ``kind`` is ``"visual"``, ``"audio"``, both (``"both"`` or a pair of
    kinds); ``max_concurrency`` requests at most are in flight, every kind
    sharing them and the client's rate governor. ``on_progress`` receives the
    :class:`ExportStats` after each transcript and every second,
    ``on_failure`` each :class:`FailureRecord`. Returns the stats. Raises
    :class:`~memories_async.OutputError` when ``out`` cannot be used (nothing
    is written then), :class:`~memories_async.AccountHaltedError` when an
    account-wide error stops the export (what was written stays), and
    :class:`OSError` when writing fails; rerunning resumes after any of them.

    A video still being processed is never written as an empty transcript: it is a
    failure (code ``not_ready``; ``processing_failed`` when its processing failed), which
    the next run fetches again. With ``wait=True`` the export waits for such videos instead
    (for at most ``wait_timeout`` seconds, checking every ``poll`` seconds, together) and
    writes each as soon as it is ready.
    """
    try:
        fmt = ExportFormat(format)
    except ValueError:
        names = ", ".join(f.value for f in ExportFormat)
        raise ValueError(f"'format' must be one of {names}, got {format!r}") from None
    kinds = export_kinds(kind)
    path = os.fspath(out)
    stats = ExportStats()
    failures_path = default_failures_path(fmt, path) if failures is None else os.fspath(failures)
    check_output(fmt, path, failures_path)
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(open_sink(fmt, path))
        log = None
        if failures_path is not None:
            log = FailureLog(failures_path, redact=Redactor(client.config.api_key))
            stack.callback(log.close)
        source = video_nos if isinstance(video_nos, AsyncIterable) else aiter_numbers(video_nos)
        await export_to_sink(
            client,
            source,
            sink,
            kinds=kinds,
            max_concurrency=max_concurrency,
            stats=stats,
            failures=log,
            on_progress=on_progress,
            on_failure=on_failure,
            commit_interval=commit_interval,
            wait=wait,
            wait_timeout=wait_timeout,
            poll=poll,
        )
    return stats


def export_kinds(
    kind: TranscriptKind | str | Iterable[TranscriptKind | str], /
) -> tuple[TranscriptKind, ...]:
    """The kinds an export's ``kind`` names: one, several, or ``"both"`` (visual, audio)."""
    return batch_kinds(kind)


def read_id_file(path: str | os.PathLike[str], /) -> Iterator[IdItem]:
    """Yield the items of an id file (or a failures file) lazily, as ``--ids`` reads it.

    Each is a video number, or a ``(video_no, kind)`` pair for a line whose second
    TAB-separated field names a kind. Raises :class:`IdInputError` at a malformed line.
    """
    with open(path, "rb") as stream:
        for _line, item in iter_id_lines(stream, os.fspath(path)):
            yield item


class _ExportRun:
    """The tasks and callbacks of one :func:`export_to_sink` call."""

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
        commit_every: int,
        commit_interval: float,
    ) -> None:
        self.commit_every = commit_every
        self.commit_interval = commit_interval
        self.due = asyncio.Event()
        self.client = client
        self.sink = sink
        self.kinds = tuple(kinds)
        self.stats = stats
        self.failures = failures
        self.on_progress = on_progress
        self.on_failure = on_failure
        self.seen = {kind: NumberSet() for kind in TranscriptKind}
        self.lines = sink.format is ExportFormat.JSONL
        self.readiness: Readiness | None = None
        self.batch: TranscriptBatch[Transcript | _Line] | None = None

    async def run(
        self,
        video_nos: AsyncIterable[IdItem],
        max_concurrency: int,
        heartbeat: float | None,
    ) -> None:
        """Run one batch over the jobs still to do and handle every outcome."""
        client = self.client
        fetch = functools.partial(
            client._fetch_answer, unique_id=None, public=None, structure=self.structure
        )
        batch = client._batch(
            fetch,
            self.jobs(video_nos),
            kinds=self.kinds,
            max_concurrency=max_concurrency,
            dedupe=False,  # done by jobs(), which sees the sink too
            latency=self.stats.latency,
            readiness=self.readiness,
        )
        self.batch = batch
        helpers = [asyncio.create_task(self.committer(), name="memories-async-commit")]
        try:
            async with batch:
                if heartbeat is not None:
                    beat = asyncio.create_task(self.beat(heartbeat), name="memories-async-beat")
                    helpers.append(beat)
                async for outcome in batch:
                    self.handle(outcome)
                    # Refusals are retried: only an outcome of several attempts (or
                    # the heartbeat) can bring news of them.
                    self.progress(refused=outcome.attempts > 1)
            await self.helpers_done(helpers)
            await asyncio.to_thread(self.flush)  # the last group
        finally:
            await self.helpers_done(helpers)
            self.stats.finished = time.monotonic()
            self.progress()

    @staticmethod
    async def helpers_done(helpers: list[asyncio.Task[None]]) -> None:
        """Stop the helper tasks; raise what one of them raised (a failed commit)."""
        for task in helpers:
            task.cancel()
        results = await asyncio.gather(*helpers, return_exceptions=True)
        helpers.clear()
        for result in results:
            if isinstance(result, Exception):
                raise result

    async def committer(self) -> None:
        """Commit a group every ``commit_interval`` seconds, or once ``commit_every`` wait."""
        while True:
            # asyncio.timeout, not wait_for: wait_for swallows a cancellation that
            # comes as the event is set (Python 3.11), and the export would never end.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.commit_interval):
                    await self.due.wait()
            self.due.clear()
            await asyncio.to_thread(self.flush)

    def flush(self) -> None:
        """Make the records and failures so far durable (in a worker thread)."""
        self.sink.sync()
        if self.failures is not None:
            self.failures.sync()

    def progress(self, *, refused: bool = True) -> None:
        """Refresh the pacing (and, with ``refused``, the rate-limit count) and pass the
        stats to ``on_progress``."""
        governor = self.client.governor
        self.stats.pacing = governor.rate
        if self.batch is not None and self.readiness is not None:
            self.stats.waiting = self.batch._waiting
            self.stats.waited = self.readiness.readied
        if refused:
            self.stats.rate_limited = governor.stats().refused
        if self.on_progress is not None:
            self.on_progress(self.stats)

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

    def structure(self, data: Any, *, video_no: str, kind: TranscriptKind) -> Transcript | _Line:
        """Read an answer: as its JSON line when the output is JSONL and the answer has
        the common shape (:func:`live_rows`), else as a :class:`Transcript`."""
        if self.lines:
            fast = live_rows(data, video_no=video_no)
            if fast is not None:
                number, rows = fast
                return _Line(number, kind, jsonl_line_of_rows(number, kind, rows), not rows)
        return structure_transcript(data, video_no=video_no, kind=kind)

    def handle(self, outcome: Fetched[Transcript | _Line] | Failed) -> None:
        """Commit a fetched transcript, or record a failure."""
        self.stats.retries += max(outcome.attempts - 1, 0)
        if not isinstance(outcome, Fetched):
            error = outcome.error
            if isinstance(error, VideoNotReadyError):
                self.stats.not_ready += 1
            elif isinstance(error, ProcessingFailedError):
                self.stats.processing_failed += 1
            code = failure_code(error)
            self.fail(outcome.video_no, outcome.kind, code, outcome.attempts, str(error))
            return
        result = outcome.transcript
        if isinstance(result, _Line):
            self.sink.commit_rendered(result.video_no, result.kind, result.data)
            empty = result.empty
        else:
            try:
                self.sink.commit(result)
            except (ValueError, TypeError) as exc:
                self.fail(outcome.video_no, outcome.kind, "render", outcome.attempts, str(exc))
                return
            empty = result.is_empty
        if result.video_no == outcome.video_no:
            # The output remembers it now: what jobs() remembers is what is in flight
            # or failed, so memory grows with one set of numbers, not two.
            self.seen[outcome.kind].discard(outcome.video_no)
        self.stats.exported += 1
        if self.sink.pending >= self.commit_every:
            self.due.set()
        if empty:
            self.stats.empty += 1

    async def jobs(self, items: AsyncIterable[IdItem]) -> AsyncIterator[tuple[str, TranscriptKind]]:
        """Yield each (video, kind) of ``items`` that is new and that the sink does not hold."""
        stats, seen, kinds, sink = self.stats, self.seen, self.kinds, self.sink
        source = aiter(items)
        try:
            async for item in source:
                if isinstance(item, tuple):
                    stats.pairs += 1
                repeated = True
                for number, kind in jobs_of(item, kinds):
                    if sink.is_done(number, kind):
                        # Held by the output (also when exported by this run): only
                        # what is fetched is remembered, so memory follows the work.
                        stats.skipped += 1
                        repeated = False
                        continue
                    if not seen[kind].add_new(number):
                        continue
                    repeated = False
                    stats.queued += 1
                    yield number, kind
                if repeated:
                    stats.duplicates += 1
        finally:
            # Close the source now (a listing, a stdin reader), not when it is collected.
            close = getattr(source, "aclose", None)
            if close is not None:
                await close()
        stats.total = stats.queued

    async def beat(self, interval: float) -> None:
        """Report progress every ``interval`` seconds, even when nothing finishes."""
        while True:
            await asyncio.sleep(interval)
            self.progress()


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
        "not_ready": passed_over_count(stats.passed_over, processing_failed=False),
        "processing_failed": passed_over_count(stats.passed_over, processing_failed=True),
        "failed_not_ready": stats.not_ready,
        "failed_processing": stats.processing_failed,
        "waited": stats.waited,
        "passed_over": dict(sorted(stats.passed_over.items())),
        "duplicates": stats.duplicates,
        "pairs": stats.pairs,
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


PROCESSING_FAILED: Final = frozenset(
    {VideoStatus.PARSE_ERROR.value, VideoStatus.FAIL.value, VideoStatus.FAILED.value}
)
"""The status words of a video whose processing failed (its transcripts never come)."""


def passed_over_count(passed_over: Mapping[str, int], /, *, processing_failed: bool) -> int:
    """How many videos of ``passed_over`` (:attr:`ExportStats.passed_over`) failed processing,
    or (``processing_failed=False``) are not ready: still processing, or in a status this
    client does not know."""
    return sum(
        number
        for word, number in passed_over.items()
        if (word.upper() in PROCESSING_FAILED) == processing_failed
    )


def _is_empty_result(result: Transcript | _Line, /) -> bool:
    return result.empty if isinstance(result, _Line) else result.is_empty


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
