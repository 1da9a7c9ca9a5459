"""The batch engine: transcripts of many videos, concurrently, as outcomes.

::

    jobs ─> feeder ─> one task per job (at most max_concurrency) ─> outcomes ─> consumer
              │                                                         │
              └────────────── window (max_concurrency * 2) ─────────────┘

A job is a (video number, kind) pair; a bare video number in the input stands
for one job per kind of the batch. The engine knows nothing of the client: it
is given the coroutine function that fetches one job (aiometer's ``amap`` is
the model), so every kind shares one concurrency and one rate governor.

The feeder reads the input lazily and, for each job, takes one slot of a
window and one of ``max_concurrency`` running slots, then starts a task for
the job. The task gives its running slot back when its answer is in; the
consumer gives the window slot back when it receives the outcome. So no more
than ``max_concurrency`` requests run and no more than the window's jobs exist
between input and consumer, whatever the number of ids: memory is
O(concurrency). Every request also goes through the client's shared
:class:`~memories_async.RateGovernor`.

A task per job rather than a pool of long-lived workers: measured against the
fake server, a pool pulling jobs from a queue cost about 20 µs more CPU per
transcript than a task per job.

An empty answer may be of a video still being processed: a batch given a
:class:`~memories_async._wait.Readiness` (every batch the client makes) asks it for
the video's status before taking the answer for an empty transcript, and with
``wait`` parks the job, its slots given back, until the video is ready (see
``_wait``). The check costs a job nothing but a test of its answer.

One bad video never stops the batch: it becomes a :class:`Failed` outcome.
Only an account-wide error (bad key, no credits, disabled account) stops it,
raising :class:`~memories_async.AccountHaltedError` once the outcomes finished
before it have been delivered.
"""

from __future__ import annotations

import asyncio
import bisect
import enum
import math
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import Any, Generic, Literal, Self, TypeVar, cast, overload

import attrs

from ._errors import AccountError, AccountHaltedError, InvalidVideoNumberError, MemoriesError
from ._models import Transcript, TranscriptKind
from ._protocol import check_video_no, is_public
from ._wait import READY, Readiness, is_failed, not_ready_error

T = TypeVar("T")
D = TypeVar("D")


@attrs.frozen(slots=True)
class Fetched(Generic[T]):
    """A transcript that was fetched.

    ``transcript`` is a :class:`~memories_async.Transcript` in every batch the client
    makes; the engine itself passes on whatever its fetch function returned.
    """

    video_no: str
    kind: TranscriptKind
    transcript: T
    attempts: int
    """Attempts made, the successful one included."""
    elapsed: float
    """Seconds from the first attempt to the answer, retries included."""

    @property
    def ok(self) -> Literal[True]:
        """Always ``True``: ``if outcome.ok:`` tells the two outcomes apart, for a type
        checker too (it narrows an :data:`Outcome` to :class:`Fetched`)."""
        return True


@attrs.frozen(slots=True)
class Failed:
    """A transcript that could not be fetched, with the error that says why."""

    video_no: str
    """The number as given (``repr()`` of the input when it was not a string)."""
    kind: TranscriptKind
    error: MemoriesError
    """The error of the last attempt."""
    attempts: int
    """Attempts made; 0 for a malformed number, which is never sent, and for a video that
    a listing said is not ready (an export of ``--all --status any``)."""
    elapsed: float
    """Seconds from the first attempt to the last answer, retries included."""

    @property
    def ok(self) -> Literal[False]:
        """Always ``False`` (narrows an :data:`Outcome` to :class:`Failed`)."""
        return False


Outcome = Fetched[Transcript] | Failed
"""What the batch yields for each (video number, kind)."""


JobKey = tuple[str, TranscriptKind | str]
"""A key of :class:`Outcomes`: a video number and a kind, as an enum or its value."""


class Outcomes(Mapping[tuple[str, TranscriptKind], "Fetched[T] | Failed"], Generic[T]):
    """The outcomes of a whole batch by (video number, kind), in input order.

    What :meth:`~memories_async.MemoriesClient.gather_transcriptions` and
    :meth:`TranscriptBatch.collect` return: a read-only mapping holding one outcome per
    distinct (video number, kind) of the input, iterated in the order the input first
    named each (a repeated job is fetched once and appears once, so look outcomes up by
    key rather than zipping them with the input). A key's kind may be a
    :class:`~memories_async.TranscriptKind` or its value: ``outcomes[(video_no, "audio")]``.
    A malformed number is kept as given (stripped; its ``repr()`` when it was not a
    string), with its :class:`Failed` outcome.
    """

    __slots__ = ("_outcomes",)

    def __init__(self, outcomes: Iterable[Fetched[T] | Failed] = (), /) -> None:
        self._outcomes: dict[tuple[str, TranscriptKind], Fetched[T] | Failed] = {
            (o.video_no, o.kind): o for o in outcomes
        }

    def __getitem__(self, key: JobKey, /) -> Fetched[T] | Failed:
        # A TranscriptKind is a str enum: "audio" and TranscriptKind.AUDIO are one key.
        return self._outcomes[cast(tuple[str, TranscriptKind], key)]

    def __contains__(self, key: object, /) -> bool:
        return key in self._outcomes

    def __iter__(self) -> Iterator[tuple[str, TranscriptKind]]:
        return iter(self._outcomes)

    def __len__(self) -> int:
        return len(self._outcomes)

    @overload
    def get(self, key: JobKey, /) -> Fetched[T] | Failed | None: ...
    @overload
    def get(self, key: JobKey, default: Fetched[T] | Failed | D, /) -> Fetched[T] | Failed | D: ...
    def get(self, key: JobKey, default: object = None, /) -> object:
        """The outcome of ``key``, or ``default`` when the batch had no such job."""
        return self._outcomes.get(cast(tuple[str, TranscriptKind], key), default)

    @property
    def fetched(self) -> list[Fetched[T]]:
        """The outcomes that are transcripts, in input order."""
        return [o for o in self._outcomes.values() if o.ok]

    @property
    def failed(self) -> list[Failed]:
        """The outcomes that are failures, in input order."""
        return [o for o in self._outcomes.values() if not o.ok]

    def __repr__(self) -> str:
        return f"<Outcomes {len(self.fetched)} fetched, {len(self.failed)} failed>"


class EventType(enum.StrEnum):
    """What happened to one job of a batch."""

    QUEUED = "queued"
    STARTED = "started"
    RETRIED = "retried"
    RATE_LIMITED = "rate_limited"
    WAITING = "waiting"
    """The video is still being processed: the job waits for it (``wait=True``)."""
    READY = "ready"
    """The video a job waited for is ready: its transcript is fetched again."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@attrs.frozen(slots=True)
class BatchEvent:
    """A progress event, for a progress bar or a metrics exporter.

    ``error`` is set on ``retried``, ``rate_limited`` and ``failed``;
    ``attempt`` is the attempt that just ended (retry events) or the total.
    """

    type: EventType
    video_no: str
    kind: TranscriptKind
    attempt: int = 0
    error: MemoriesError | None = None
    elapsed: float = 0.0


class LatencyHistogram:
    """Latency percentiles in constant memory: log buckets 2 % wide, 0.1 ms to days.

    Where a user meets one: the ``latency`` of :class:`ExportStats` holds those of an export
    (read them with :meth:`percentile`). A batch keeps its own, whose percentiles
    :class:`BatchStats` gives.
    """

    __slots__ = ("_counts", "count")
    _BASE = math.log(1.02)
    _FLOOR = 1e-4

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self.count = 0

    def add(self, seconds: float) -> None:
        """Record one latency."""
        bucket = int(math.log(max(seconds, self._FLOOR) / self._FLOOR) / self._BASE)
        self._counts[bucket] = self._counts.get(bucket, 0) + 1
        self.count += 1

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (0 to 100) in seconds, within 2 %; ``None`` when empty."""
        if not self.count:
            return None
        rank = max(1, math.ceil(self.count * q / 100.0))
        seen = 0
        for bucket in sorted(self._counts):
            seen += self._counts[bucket]
            if seen >= rank:
                return self._FLOOR * math.exp((bucket + 0.5) * self._BASE)
        return None  # pragma: no cover - rank never exceeds count


@attrs.frozen(slots=True)
class BatchStats:
    """Counters and rates of a batch so far."""

    queued: int
    succeeded: int
    failed: int
    in_flight: int
    peak_in_flight: int
    retries: int
    rate_limited: int
    duplicates: int
    elapsed: float
    """Seconds since the batch started."""
    rate: float
    """Finished jobs (succeeded + failed) per second."""
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None
    waiting: int = 0
    """Jobs waiting for their video to finish processing (``wait=True``)."""

    @property
    def done(self) -> int:
        """Jobs finished, successfully or not."""
        return self.succeeded + self.failed


BOTH = "both"
"""The ``kind`` of a batch or an export that names both kinds: visual, then audio."""


def batch_kinds(
    kind: TranscriptKind | str | Iterable[TranscriptKind | str],
) -> tuple[TranscriptKind, ...]:
    """The kinds a batch's ``kind`` names: one (``"visual"``, ``"audio"``), ``"both"``
    (visual and audio, as the command line's ``--kind both``), or several."""
    if kind == BOTH:
        return (TranscriptKind.VISUAL, TranscriptKind.AUDIO)
    values = [kind] if isinstance(kind, str) else list(kind)
    kinds: list[TranscriptKind] = []
    for value in values:
        try:
            parsed = TranscriptKind(value)
        except ValueError:
            raise ValueError(
                f"'kind' must be 'visual', 'audio', 'both' or several kinds, got {value!r}"
            ) from None
        if parsed not in kinds:
            kinds.append(parsed)
    if not kinds:
        raise ValueError("'kind' must name at least one of 'visual' and 'audio'")
    return tuple(kinds)


_DONE: Any = object()


class TranscriptBatch(Generic[T]):
    """Transcripts of many videos, delivered as :data:`Outcome` objects as they complete.

    Made by :meth:`MemoriesClient.fetch_transcriptions`, which gives it the
    coroutine function that fetches one job (``await fetch(video_no, kind=kind,
    on_retry=on_retry)``, returning the transcript and the attempts made); use
    it as an async context manager and iterate over it. Leaving the
    ``async with`` block — normally, by ``break``, by an exception or by
    cancellation — cancels the work still running and leaves no task behind.
    """

    def __init__(
        self,
        fetch: Callable[..., Awaitable[tuple[T, int]]],
        jobs: Iterable[object] | AsyncIterable[object],
        *,
        kinds: tuple[TranscriptKind, ...],
        max_concurrency: int,
        ordered: bool,
        dedupe: bool,
        on_event: Callable[[BatchEvent], None] | None,
        prepare: Callable[[int], None] | None = None,
        latency: LatencyHistogram | None = None,
        on_close: Callable[[TranscriptBatch[T]], None] | None = None,
        readiness: Readiness | None = None,
    ) -> None:
        self._fetch = fetch
        # Set when empty answers are checked against the video's status (see _wait).
        self._readiness = readiness
        self._waiting = 0
        self._prepare = prepare
        self._on_close = on_close
        self._input = jobs
        self._kinds = kinds
        self._max_concurrency = max_concurrency
        self._ordered = ordered
        self._dedupe = dedupe
        # One rule for events: each is built and passed on under `if self._on_event is
        # not None` where it happens, so a batch that nobody listens to builds none.
        self._on_event = on_event
        self._window = asyncio.Semaphore(2 * max_concurrency)
        self._running_slots = asyncio.Semaphore(max_concurrency)
        self._running: set[asyncio.Task[None]] = set()
        self._feeder: asyncio.Task[None] | None = None
        self._feeding = False
        self._outcomes: asyncio.Queue[tuple[int, Fetched[T] | Failed] | Any] = asyncio.Queue()
        self._pending: list[tuple[int, Fetched[T] | Failed]] = []
        self._next_sequence = 0
        self._started = False
        self._finished = False
        self._halt: AccountHaltedError | None = None
        self._error: BaseException | None = None
        self._input_error: BaseException | None = None
        self._all_done = False
        self._all_done_sent = False
        self._started_at = time.monotonic()
        self._queued = self._succeeded = self._failed = 0
        self._in_flight = self._peak_in_flight = 0
        self._retries = self._rate_limited = self._duplicates = 0
        self._latency = LatencyHistogram() if latency is None else latency

    def __repr__(self) -> str:
        s = self.stats()
        return (
            f"<TranscriptBatch kinds={[str(k) for k in self._kinds]}"
            f" max_concurrency={self._max_concurrency} done={s.done} queued={s.queued}>"
        )

    # -- lifecycle --------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        self._started_at = time.monotonic()
        if self._prepare is not None:
            self._prepare(self._max_concurrency)
        self._feeding = True
        self._feeder = asyncio.create_task(self._feed(), name="memories-async-feeder")

    async def aclose(self) -> None:
        """Cancel the work still running and wait until every task has ended."""
        self._finished = True
        tasks = [*self._running]
        if self._feeder is not None:
            tasks.append(self._feeder)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._readiness is not None:
            await self._readiness.aclose()
        on_close, self._on_close = self._on_close, None
        if on_close is not None and self._started:
            on_close(self)

    # -- iteration ----------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Fetched[T] | Failed]:
        return self

    async def __anext__(self) -> Fetched[T] | Failed:
        if not self._started:
            raise RuntimeError("use the batch as 'async with ... as batch' before iterating")
        while True:
            if self._pending and (self._pending[0][0] == self._next_sequence or self._all_done):
                return self._deliver(self._pending.pop(0))
            if self._finished or self._all_done:
                self._finish()
            item = await self._outcomes.get()
            if item is _DONE:
                self._all_done = True
            elif self._ordered:
                bisect.insort(self._pending, item, key=lambda entry: entry[0])
            else:
                return self._deliver(item)

    def _deliver(self, item: tuple[int, Fetched[T] | Failed]) -> Fetched[T] | Failed:
        self._next_sequence = item[0] + 1
        self._window.release()
        return item[1]

    def _finish(self) -> None:
        # Every job has ended and every outcome was delivered: end, or raise
        # what stopped the batch (once).
        already, self._finished = self._finished, True
        errors = (self._error, self._halt, self._input_error)
        self._error = self._halt = self._input_error = None
        if not already:
            for error in errors:
                if error is not None:
                    raise error
        raise StopAsyncIteration

    async def collect(self) -> Outcomes[T]:
        """Run the whole batch and return every outcome by (video number, kind).

        The :class:`Outcomes` iterate in the order the input named the jobs, whether or
        not the batch is ``ordered``.
        """
        # Once an outcome is delivered, _next_sequence is the one after its own.
        sequenced = [(self._next_sequence, outcome) async for outcome in self]
        sequenced.sort(key=lambda entry: entry[0])
        return Outcomes(outcome for _, outcome in sequenced)

    def stats(self) -> BatchStats:
        """Counters, latency percentiles and achieved rate so far."""
        elapsed = max(time.monotonic() - self._started_at, 1e-9)
        done = self._succeeded + self._failed
        return BatchStats(
            queued=self._queued,
            succeeded=self._succeeded,
            failed=self._failed,
            in_flight=self._in_flight,
            peak_in_flight=self._peak_in_flight,
            retries=self._retries,
            rate_limited=self._rate_limited,
            duplicates=self._duplicates,
            elapsed=elapsed,
            rate=done / elapsed,
            latency_p50=self._latency.percentile(50),
            latency_p95=self._latency.percentile(95),
            latency_p99=self._latency.percentile(99),
            waiting=self._waiting,
        )

    # -- tasks ----------------------------------------------------------------------

    async def _feed(self) -> None:
        # One set of numbers per kind: half the memory of (number, kind) pairs.
        seen = {kind: set[str]() for kind in TranscriptKind} if self._dedupe else None
        sequence = 0
        kinds = self._kinds
        try:
            async for raw in _iterate(self._input):
                for number, kind in jobs_of(raw, kinds):
                    if seen is not None and isinstance(number, str):
                        numbers = seen[kind]
                        if number in numbers:
                            self._duplicates += 1
                            continue
                        numbers.add(number)
                    await self._window.acquire()
                    await self._running_slots.acquire()
                    if not self._feeding:  # stopped while waiting for a slot
                        self._running_slots.release()
                        self._window.release()
                        return
                    task = asyncio.create_task(
                        self._job(sequence, number, kind), name="memories-async-job"
                    )
                    self._running.add(task)
                    sequence += 1
                    self._queued += 1
                    if self._on_event is not None:
                        self._on_event(BatchEvent(EventType.QUEUED, str(number), kind))
        except Exception as exc:
            # Raised to the consumer once the jobs already started are delivered.
            self._input_error = exc
        finally:
            self._feeding = False
            self._check_all_done()

    async def _job(self, sequence: int, raw: object, kind: TranscriptKind) -> None:
        task = asyncio.current_task()
        try:
            outcome = await self._run(raw, kind)
        except Exception as exc:  # e.g. an on_event callback that raised
            if self._error is None:
                self._error = exc
            self._stop_feeding()
            outcome = None
        finally:
            self._running_slots.release()
            self._running.discard(task)
        if outcome is None:  # the batch stopped: no outcome to deliver
            self._window.release()
        else:
            self._outcomes.put_nowait((sequence, outcome))
        self._check_all_done()

    def _check_all_done(self) -> None:
        if not self._feeding and not self._running and not self._all_done_sent:
            self._all_done_sent = True
            self._outcomes.put_nowait(_DONE)

    async def _run(self, raw: object, kind: TranscriptKind) -> Fetched[T] | Failed | None:
        started = time.monotonic()
        try:
            number = check_video_no(raw)
        except InvalidVideoNumberError as error:
            self._failed += 1
            failed = Failed(repr(raw) if not isinstance(raw, str) else raw, kind, error, 0, 0.0)
            if self._on_event is not None:
                self._on_event(BatchEvent(EventType.FAILED, failed.video_no, kind, 0, error))
            return failed
        self._in_flight += 1
        self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
        if self._on_event is not None:
            self._on_event(BatchEvent(EventType.STARTED, number, kind))

        def on_retry(error: MemoriesError, attempt: int, _wait: float) -> None:
            self._retries += 1
            kind_of_event = EventType.RETRIED
            if error.rate_limited:
                self._rate_limited += 1
                kind_of_event = EventType.RATE_LIMITED
            if self._on_event is not None:
                self._on_event(BatchEvent(kind_of_event, number, kind, attempt, error))

        try:
            readiness = self._readiness
            if readiness is not None and readiness.known_pending(number):
                # A listing said the video is not ready: no request for its empty answer.
                transcript, attempts = await self._when_ready(
                    readiness, number, kind, None, on_retry
                )
            else:
                transcript, attempts = await self._fetch(number, kind=kind, on_retry=on_retry)
                if readiness is not None and readiness.empty(transcript) and not is_public(number):
                    transcript, attempts = await self._when_ready(
                        readiness, number, kind, (transcript, attempts), on_retry
                    )
        except AccountError as error:
            if self._halt is None:
                self._halt = AccountHaltedError(error)
            self._stop_feeding()
            return None
        except MemoriesError as error:
            elapsed = time.monotonic() - started
            self._failed += 1
            failed = Failed(number, kind, error, error.attempts, elapsed)
            if self._on_event is not None:
                event = BatchEvent(EventType.FAILED, number, kind, error.attempts, error, elapsed)
                self._on_event(event)
            return failed
        finally:
            self._in_flight -= 1
        elapsed = time.monotonic() - started
        self._succeeded += 1
        self._latency.add(elapsed)
        fetched = Fetched(number, kind, transcript, attempts, elapsed)
        if self._on_event is not None:
            self._on_event(BatchEvent(EventType.SUCCEEDED, number, kind, attempts, None, elapsed))
        return fetched

    async def _when_ready(
        self,
        readiness: Readiness,
        number: str,
        kind: TranscriptKind,
        answer: tuple[T, int] | None,
        on_retry: Callable[[MemoriesError, int, float], None],
    ) -> tuple[T, int]:
        """The transcript of an empty ``answer`` (``None``: of a video a listing said is not
        ready, not asked for): the answer if its video is ready, else raise that it is
        not, or (``wait``) wait for the video and fetch it (again)."""
        attempts = 0 if answer is None else answer[1]
        status = await readiness.status(number)
        if status is None or status == READY:
            if answer is None:  # pragma: no cover - a listing's pending video is not ready
                return await self._fetch(number, kind=kind, on_retry=on_retry)
            return answer  # no speech (or a video this listing cannot see)
        if is_failed(status) or not readiness.wait:
            error = not_ready_error(number, status)
            error.attempts = attempts
            raise error
        # Parked: its slots go to the jobs that can run; the window's too, unless the
        # outcomes are delivered in order (then the later ones wait for this one anyway).
        self._waiting += 1
        self._in_flight -= 1
        self._running_slots.release()
        window = not self._ordered
        if window:
            self._window.release()
        if self._on_event is not None:
            self._on_event(BatchEvent(EventType.WAITING, number, kind, attempts))
        try:
            await readiness.until_ready(number, status)
        finally:
            self._waiting -= 1
            self._in_flight += 1
            if not self._finished:
                if window:
                    await self._window.acquire()
                await self._running_slots.acquire()
        if self._on_event is not None:
            self._on_event(BatchEvent(EventType.READY, number, kind, attempts))
        transcript, more = await self._fetch(number, kind=kind, on_retry=on_retry)
        return transcript, attempts + more

    def _stop_feeding(self) -> None:
        # Start no more jobs; those running finish and deliver their outcomes.
        if self._feeding and self._feeder is not None:
            self._feeding = False
            self._feeder.cancel()


@overload
def jobs_of(
    item: str | tuple[str, TranscriptKind | str], kinds: Sequence[TranscriptKind], /
) -> tuple[tuple[str, TranscriptKind], ...]: ...
@overload
def jobs_of(
    item: object, kinds: Sequence[TranscriptKind], /
) -> tuple[tuple[object, TranscriptKind], ...]: ...
def jobs_of(
    item: object, kinds: Sequence[TranscriptKind], /
) -> tuple[tuple[object, TranscriptKind], ...]:
    """The (video number, kind) jobs one item of a batch's input stands for.

    A video number stands for one job per kind of ``kinds`` (a string is stripped); a
    ``(video_no, kind)`` pair for that job alone (see :func:`job_of`).
    """
    if isinstance(item, tuple):
        return (job_of(item),)
    number = item.strip() if isinstance(item, str) else item
    return tuple((number, kind) for kind in kinds)


def job_of(item: tuple[object, ...], /) -> tuple[object, TranscriptKind]:
    """The (video number, kind) of a job given as a pair; raises on anything else.

    The number is checked when the job runs (a malformed one becomes a
    :class:`Failed` outcome); a pair of the wrong shape or with an unknown
    kind is an error of the input, raised as :class:`ValueError`.
    """
    if len(item) != 2:
        raise ValueError(f"a job is a (video_no, kind) pair, got {item!r}")
    number, kind = item
    try:
        if type(kind) is not TranscriptKind:
            kind = TranscriptKind(cast(str, kind))  # anything else: ValueError
        return (number.strip() if isinstance(number, str) else number), kind
    except ValueError:
        raise ValueError(
            f"the kind of a job must be 'visual' or 'audio', got {kind!r} (for {number!r})"
        ) from None


async def _iterate(
    source: Iterable[object] | AsyncIterable[object],
) -> AsyncIterator[object]:
    if isinstance(source, AsyncIterable):
        iterator = aiter(source)
        try:
            async for item in iterator:
                yield item
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await close()
    else:
        for n, item in enumerate(source):
            yield item
            if n % 256 == 255:
                await asyncio.sleep(0)
