"""The batch engine against the fake server: outcomes, bounds, halting, cancellation.

Also its events and stats, the governor converging under a fixed QPS, and memory that
stays flat over a million ids (on a transport that answers at once).
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import aiohttp
import coverage
import pytest
import pytest_asyncio

from memories_async import (
    AccountHaltedError,
    AuthenticationError,
    BatchEvent,
    EventType,
    Failed,
    Fetched,
    HTTPStatusError,
    InsufficientCreditsError,
    InvalidVideoNumberError,
    LatencyHistogram,
    MemoriesClient,
    RetryPolicy,
    TranscriptKind,
    TransientAPIError,
)
from memories_async.testing import (
    DEFAULT_RANDOM_FAULTS,
    FakeLibrary,
    FakeServer,
    FakeVideo,
    FaultKind,
    FaultRule,
    KeyState,
    Latency,
    RateLimits,
)

pytestmark = pytest.mark.asyncio

FAST = RetryPolicy(backoff=False, attempts=6)


@pytest.fixture(scope="module")
def library() -> FakeLibrary:
    return FakeLibrary.generate(1000, seed=7)


@pytest_asyncio.fixture
async def server(library: FakeLibrary) -> AsyncIterator[FakeServer]:
    async with FakeServer(library) as s:
        yield s


def ready(library: FakeLibrary) -> list[str]:
    """The numbers of the videos in status PARSE (the others are not ready: see test_wait)."""
    return [v.video_no for v in library if v.status == "PARSE"]


def leftover_tasks() -> list[asyncio.Task[Any]]:
    """Tasks of the batch engine still alive (the fake server's own tasks are not ours)."""
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("memories-async")]


def client_for(server: FakeServer, **kwargs: Any) -> MemoriesClient:
    kwargs.setdefault("retry", FAST)
    return MemoriesClient(api_key=server.api_key, base_url=server.url, **kwargs)


def expected_segments(library: FakeLibrary, video_no: str, kind: str = "visual") -> int:
    video = library[video_no]
    if video.status != "PARSE":
        return 0
    return len(video.segments(kind) or ())


async def test_faulty_server_every_transcript_exactly_once(library: FakeLibrary) -> None:
    ids = ready(library)
    doomed = set(ids[:5])
    faults = [
        FaultRule(FaultKind.HTTP_503, video_nos=doomed),
        FaultRule(*DEFAULT_RANDOM_FAULTS, probability=0.15),
    ]
    async with FakeServer(library, faults=faults, seed=3) as server:
        async with client_for(server) as client:
            async with client.fetch_transcriptions(ids, max_concurrency=24) as batch:
                outcomes = [o async for o in batch]
            stats = batch.stats()
    assert server.stats.total_faults > 100
    assert Counter(o.video_no for o in outcomes) == Counter(ids)
    fetched = {o.video_no: o for o in outcomes if isinstance(o, Fetched)}
    failed = {o.video_no: o for o in outcomes if isinstance(o, Failed)}
    assert set(failed) == doomed
    for outcome in failed.values():
        assert isinstance(outcome.error, HTTPStatusError)
        assert outcome.error.status == 503
        assert outcome.attempts == FAST.attempts
        assert outcome.error.video_no == outcome.video_no
    for number, got in fetched.items():
        assert got.kind is TranscriptKind.VISUAL
        assert len(got.transcript.segments) == expected_segments(library, number)
    assert stats.succeeded == len(fetched)
    assert stats.failed == len(failed)
    assert stats.retries > 100
    assert stats.peak_in_flight <= 24
    assert stats.latency_p50 is not None


async def test_concurrency_never_exceeds_the_bound(library: FakeLibrary) -> None:
    ids = ready(library)[:300]
    latency = Latency.uniform(0.001, 0.01)
    async with FakeServer(library, latency=latency) as server, client_for(server) as client:
        async with client.fetch_transcriptions(ids, max_concurrency=7) as batch:
            count = sum([1 async for _ in batch])
    assert count == 300
    assert server.stats.peak_in_flight <= 7
    assert server.stats.peak_in_flight >= 2
    assert batch.stats().peak_in_flight <= 7


async def test_duplicates_fetched_once_and_invalid_ids_fail(
    server: FakeServer, library: FakeLibrary
) -> None:
    first, second = ready(library)[:2]
    ids: list[Any] = [first, f"  {first} ", second, "", "   ", None, 42, first, "VI 1"]
    async with client_for(server) as client:
        results = await client.gather_transcriptions(ids)
        async with client.fetch_transcriptions(ids) as batch:
            outcomes = [o async for o in batch]
        assert batch.stats().duplicates == 3
    assert server.stats.requests_by_video[first] == 2  # once per batch
    invalid = [o for o in outcomes if isinstance(o, Failed)]
    assert len(invalid) == 4  # "", None, 42, "VI 1" ("   " is a repeat of "")
    assert all(isinstance(o.error, InvalidVideoNumberError) for o in invalid)
    assert all(o.attempts == 0 for o in invalid)
    assert results[first, TranscriptKind.VISUAL].ok
    assert results["None", TranscriptKind.VISUAL].ok is False


async def test_both_kinds_and_ordered_delivery(server: FakeServer, library: FakeLibrary) -> None:
    ids = ready(library)[:60]
    async with (
        client_for(server) as client,
        client.fetch_transcriptions(
            ids, kind=("visual", "audio"), ordered=True, max_concurrency=8
        ) as batch,
    ):
        outcomes = [o async for o in batch]
    assert [(o.video_no, o.kind) for o in outcomes] == [
        (n, k) for n in ids for k in (TranscriptKind.VISUAL, TranscriptKind.AUDIO)
    ]
    for outcome in outcomes:
        assert isinstance(outcome, Fetched)
        assert len(outcome.transcript.segments) == expected_segments(
            library, outcome.video_no, outcome.kind
        )


async def test_gathered_outcomes_follow_the_input_order_and_take_either_kind(
    library: FakeLibrary,
) -> None:
    # Answers come back in another order than asked (random latencies); the mapping
    # still iterates in input order, once per distinct job, and takes "audio" as a kind.
    ids = ready(library)[:12]
    given = [*ids[:4], ids[1], *ids[4:], ids[0]]  # 14 inputs, 12 distinct
    async with (
        FakeServer(library, latency=Latency.uniform(0.0, 0.02), seed=3) as server,
        client_for(server) as client,
    ):
        results = await client.gather_transcriptions(given, kind="both", max_concurrency=12)
    assert list(results) == [(n, k) for n in ids for k in TranscriptKind]
    assert len(results) == 24
    first = results[(ids[0], "audio")]
    assert first is results[ids[0], TranscriptKind.AUDIO]
    assert first.kind is TranscriptKind.AUDIO
    assert (ids[0], "audio") in results
    assert results.get((ids[0], "visual")) is results[ids[0], TranscriptKind.VISUAL]
    assert results.get(("VI-none", "audio")) is None
    assert results.get(("VI-none", "audio"), first) is first
    assert results.fetched == [o for o in results.values() if o.ok]
    assert results.failed == [o for o in results.values() if not o.ok]
    assert (
        repr(results) == f"<Outcomes {len(results.fetched)} fetched, {len(results.failed)} failed>"
    )
    with pytest.raises(KeyError):
        results["VI-none", "audio"]


async def test_ordered_outcomes_align_with_the_input_without_dedupe(
    server: FakeServer, library: FakeLibrary
) -> None:
    # With the default dedupe, a repeated number has no outcome of its own (zip would
    # misalign); dedupe=False gives one outcome per input, in input order.
    ids = ready(library)[:5]
    given = [*ids, ids[2]]
    async with client_for(server) as client:
        async with client.fetch_transcriptions(given, ordered=True) as batch:
            deduped = [o.video_no async for o in batch]
        async with client.fetch_transcriptions(given, ordered=True, dedupe=False) as batch:
            aligned = [o.video_no async for o in batch]
    assert deduped == ids
    assert aligned == given


async def test_jobs_given_as_pairs_share_one_concurrency(
    library: FakeLibrary,
) -> None:
    # Pairs and bare numbers mix: a pair is one job of its kind, whatever ``kind``
    # says; a bare number is one job per kind of the batch.
    ids = ready(library)[:40]
    jobs: list[Any] = [(n, "audio") for n in ids[:20]]
    jobs += [(n, TranscriptKind.VISUAL) for n in ids[:20]]
    jobs += ids[20:]
    jobs.append((ids[0], "audio"))  # a repeated pair: fetched once
    latency = Latency.uniform(0.001, 0.01)
    async with FakeServer(library, latency=latency) as server, client_for(server) as client:
        async with client.fetch_transcriptions(jobs, kind="visual", max_concurrency=6) as batch:
            outcomes = [o async for o in batch]
        assert batch.stats().duplicates == 1
    got = sorted((o.video_no, o.kind.value) for o in outcomes)
    expected = sorted(
        [(n, "audio") for n in ids[:20]]
        + [(n, "visual") for n in ids[:20]]
        + [(n, "visual") for n in ids[20:]]
    )
    assert got == expected
    assert all(o.ok for o in outcomes)
    assert 2 <= server.stats.peak_in_flight <= 6


@pytest.mark.parametrize(
    ("job", "message"),
    [
        (("VI1", "both"), r"kind of a job must be 'visual' or 'audio', got 'both'"),
        (("VI1", "visual", "x"), r"a job is a \(video_no, kind\) pair"),
    ],
)
async def test_a_malformed_job_stops_the_batch_after_the_outcomes(
    server: FakeServer, library: FakeLibrary, job: tuple[Any, ...], message: str
) -> None:
    numbers = ready(library)[:3]
    async with client_for(server) as client:
        seen = []
        with pytest.raises(ValueError, match=message):
            async with client.fetch_transcriptions([*numbers, job, numbers[0]]) as batch:
                async for outcome in batch:
                    seen.append(outcome.video_no)
    assert sorted(seen) == sorted(numbers)


async def test_the_batch_engine_does_not_import_the_client() -> None:
    # The engine is given what to call: no import cycle between _batch and _client.
    import ast
    import inspect

    from memories_async import _batch

    tree = ast.parse(inspect.getsource(_batch))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "_client" not in imported


async def test_async_iterable_input_from_list_videos(
    server: FakeServer, library: FakeLibrary
) -> None:
    async with client_for(server) as client:
        numbers = (v.video_no async for v in client.list_videos(status="PARSE"))
        async with client.fetch_transcriptions(numbers, kind="audio") as batch:
            outcomes = [o async for o in batch]
    parsed = [v.video_no for v in library.videos(status="PARSE")]
    assert sorted(o.video_no for o in outcomes) == sorted(parsed)
    assert all(o.ok for o in outcomes)


async def test_account_error_halts_the_batch_once(library: FakeLibrary) -> None:
    ids = ready(library)
    async with FakeServer(library, api_keys={"sk-test-other": KeyState.ACTIVE}) as server:
        async with MemoriesClient(
            api_key="sk-test-wrong", base_url=server.url, retry=FAST
        ) as client:
            with pytest.raises(AccountHaltedError) as info:
                async with client.fetch_transcriptions(ids, max_concurrency=8) as batch:
                    async for _ in batch:
                        pytest.fail("no outcome expected")  # pragma: no cover
    assert isinstance(info.value.cause, AuthenticationError)
    assert "0401" in str(info.value)
    assert server.stats.total_requests <= 8


async def test_halt_delivers_finished_outcomes_first(library: FakeLibrary) -> None:
    ids = ready(library)[:200]
    async with (
        FakeServer(
            library, latency=Latency.fixed(0.002), api_keys={"sk-test-poor": KeyState.ACTIVE}
        ) as server,
        MemoriesClient(api_key="sk-test-poor", base_url=server.url, retry=FAST) as c,
    ):
        delivered: list[str] = []
        with pytest.raises(AccountHaltedError) as info:
            async with c.fetch_transcriptions(ids, max_concurrency=4) as batch:
                async for outcome in batch:
                    delivered.append(outcome.video_no)
                    if len(delivered) == 20:
                        server.keys["sk-test-poor"] = KeyState.NO_CREDITS
    assert isinstance(info.value.cause, InsufficientCreditsError)
    assert len(delivered) >= 20
    assert len(set(delivered)) == len(delivered)
    assert len(delivered) < 200


async def test_events_and_stats(library: FakeLibrary) -> None:
    ids = ready(library)[:40]
    target = ids[3]
    faults = [FaultRule(FaultKind.NETWORK_ABNORMAL, video_nos={target}, first_attempts=1)]
    events: list[BatchEvent] = []
    async with FakeServer(library, faults=faults) as server, client_for(server) as client:
        async with client.fetch_transcriptions(ids, on_event=events.append) as batch:
            outcomes = [o async for o in batch]
    kinds = Counter(e.type for e in events)
    assert kinds[EventType.QUEUED] == 40
    assert kinds[EventType.STARTED] == 40
    assert kinds[EventType.SUCCEEDED] == 40
    assert kinds[EventType.RETRIED] == 1
    retried = next(e for e in events if e.type is EventType.RETRIED)
    assert retried.video_no == target
    assert isinstance(retried.error, TransientAPIError)
    assert next(o for o in outcomes if o.video_no == target).attempts == 2
    stats = batch.stats()
    assert (stats.queued, stats.succeeded, stats.failed, stats.retries) == (40, 40, 0, 1)
    assert stats.done == 40
    assert stats.rate > 0
    assert "done=40" in repr(batch)


async def test_failures_are_events_too(library: FakeLibrary) -> None:
    good, target = ready(library)[:2]
    faults = [FaultRule(FaultKind.HTTP_500, video_nos={target})]
    events: list[BatchEvent] = []
    async with FakeServer(library, faults=faults) as server, client_for(server) as client:
        async with client.fetch_transcriptions(
            [good, target, "VI 1"], on_event=events.append
        ) as batch:
            outcomes = {o.video_no: o async for o in batch}
    failed = {e.video_no: e for e in events if e.type is EventType.FAILED}
    assert set(failed) == {target, "VI 1"}
    assert failed[target].attempt == outcomes[target].attempts == FAST.attempts
    assert isinstance(failed[target].error, HTTPStatusError)
    assert failed[target].elapsed > 0
    assert failed["VI 1"].attempt == 0
    assert isinstance(failed["VI 1"].error, InvalidVideoNumberError)
    retried = [e for e in events if e.type is EventType.RETRIED]
    assert [e.attempt for e in retried] == list(range(1, FAST.attempts))


async def test_rate_limited_events(library: FakeLibrary) -> None:
    ids = ready(library)[:10]
    faults = [FaultRule(FaultKind.RATE_LIMITED, video_nos={ids[0]}, first_attempts=2)]
    events: list[BatchEvent] = []
    async with FakeServer(library, faults=faults) as server, client_for(server) as client:
        results = await asyncio.wait_for(
            _collect(client.fetch_transcriptions(ids, on_event=events.append)), 30
        )
    assert len(results) == 10
    assert Counter(e.type for e in events)[EventType.RATE_LIMITED] == 2


async def _collect(batch: Any) -> list[Any]:
    async with batch:
        return [o async for o in batch]


async def test_failing_event_callback_stops_the_batch(
    server: FakeServer, library: FakeLibrary
) -> None:
    def explode(event: BatchEvent) -> None:
        if event.type is EventType.SUCCEEDED:
            raise RuntimeError("subscriber failed")

    ids = ready(library)[:50]
    async with client_for(server) as client:
        with pytest.raises(RuntimeError, match="subscriber failed"):
            async with client.fetch_transcriptions(ids, on_event=explode) as batch:
                async for _ in batch:
                    pass
    assert not leftover_tasks()


async def test_input_error_is_raised_after_the_outcomes(
    server: FakeServer, library: FakeLibrary
) -> None:
    numbers = ready(library)[:5]

    def source() -> Iterator[str]:
        yield from numbers
        raise OSError("disk gone")

    async with client_for(server) as client:
        seen = []
        with pytest.raises(OSError, match="disk gone"):
            async with client.fetch_transcriptions(source()) as batch:
                async for outcome in batch:
                    seen.append(outcome.video_no)
        assert sorted(seen) == sorted(numbers)
        # The error is raised once; the batch then stays ended.
        with pytest.raises(StopAsyncIteration):
            await batch.__anext__()


async def test_leaving_early_leaves_nothing_behind(
    server: FakeServer, library: FakeLibrary
) -> None:
    ids = ready(library)
    async with client_for(server) as client:
        async with client.fetch_transcriptions(ids, max_concurrency=16) as batch:
            async for _ in batch:
                break
        assert not leftover_tasks()
        with pytest.raises(ValueError, match="consumer"):
            async with client.fetch_transcriptions(ids) as batch:
                async for _ in batch:
                    raise ValueError("consumer failed")
        assert not leftover_tasks()
        # The client is still usable afterwards.
        assert (await client.get_transcription(ids[0])).video_no == ids[0]


@pytest.mark.parametrize("seed", range(8))
async def test_cancellation_at_random_points_leaves_nothing_behind(
    library: FakeLibrary, seed: int
) -> None:
    rng = random.Random(seed)
    ids = ready(library)
    async with FakeServer(
        library,
        latency=Latency.uniform(0.0, 0.004),
        faults=[FaultRule(*DEFAULT_RANDOM_FAULTS, probability=0.1)],
        seed=seed,
    ) as server:
        async with client_for(server) as client:
            stop_after = rng.randint(0, 200)

            async def consume() -> int:
                count = 0
                async with client.fetch_transcriptions(ids, max_concurrency=16) as batch:
                    async for _ in batch:
                        count += 1
                return count

            task = asyncio.create_task(consume())
            while server.stats.total_requests < stop_after and not task.done():
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not leftover_tasks()
        for _ in range(200):
            if server.stats.in_flight == 0:
                break
            await asyncio.sleep(0.005)
        assert server.stats.in_flight == 0


async def test_iterating_without_async_with_is_refused(server: FakeServer) -> None:
    async with client_for(server) as client:
        batch = client.fetch_transcriptions(["VI1"])
        with pytest.raises(RuntimeError, match="async with"):
            await batch.__anext__()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_concurrency": 0}, ValueError, "'max_concurrency' must be > 0"),
        ({"max_concurrency": 2.5}, TypeError, "'max_concurrency' must be an int"),
        ({"kind": "subtitles"}, ValueError, "'kind' must be"),
        ({"kind": ()}, ValueError, "at least one"),
        ({"unique_id": ""}, ValueError, "unique_id"),
    ],
)
async def test_argument_errors_say_how_to_fix(
    server: FakeServer, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    async with client_for(server) as client:
        with pytest.raises(error, match=message):
            client.fetch_transcriptions(["VI1"], **kwargs)
        with pytest.raises(TypeError, match="not one string"):
            client.fetch_transcriptions("VI1")


@pytest.mark.realtime
async def test_governor_converges_under_a_fixed_qps(library: FakeLibrary) -> None:
    ids = ready(library)[:240]
    limits = RateLimits(qps=80)
    async with (
        FakeServer(library, rate_limits=limits) as server,
        MemoriesClient(
            api_key=server.api_key, base_url=server.url, retry=RetryPolicy(attempts=5)
        ) as client,
        client.fetch_transcriptions(ids, max_concurrency=32) as batch,
    ):
        outcomes = [o async for o in batch]
    assert all(o.ok for o in outcomes)
    assert len(outcomes) == 240
    # Without a governor every wave of 32 would mostly bounce; with it, few do.
    assert server.stats.rate_limited < 0.25 * len(ids)


class _InstantAnswer:
    """The answer of :class:`_InstantSession`: what the client reads of an aiohttp response."""

    status = 200
    headers: dict[str, str] = {}  # noqa: RUF012 - read only
    body = (
        b'{"code":"0000","msg":"success","data":{"videoNo":"VI1","transcriptions":'
        b'[{"index":0,"content":"hello","startTime":"0","endTime":"1"}]}}'
    )
    content_length = len(body)

    async def read(self) -> bytes:
        return self.body

    async def __aenter__(self) -> _InstantAnswer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class _InstantSession:
    """A stand-in for the aiohttp session a client may be given (``session=``): it answers
    every request at once with the same small transcript, without a network."""

    connector = None
    closed = False
    _answer = _InstantAnswer()

    def request(self, *args: Any, **kwargs: Any) -> _InstantAnswer:
        return self._answer


def resident_bytes() -> int:
    """Resident memory of this process (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.realtime
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
async def test_a_million_ids_stream_in_flat_memory() -> None:
    session = cast(aiohttp.ClientSession, _InstantSession())
    client = MemoriesClient(api_key="sk-test-memory", retry=FAST, session=session)
    total = 1_000_000
    checkpoints: dict[int, int] = {}

    def numbers() -> Iterator[str]:
        for n in range(total):
            yield f"VI{n:018d}"

    count = 0
    # Line tracing would make this run minutes long; the smaller tests cover
    # the same lines, so coverage pauses here.
    tracer = coverage.Coverage.current()
    if tracer is not None:
        tracer.stop()
    try:
        async with (
            client,
            client.fetch_transcriptions(numbers(), dedupe=False, max_concurrency=32) as batch,
        ):
            async for _ in batch:
                count += 1
                if count in (20_000, total):
                    checkpoints[count] = resident_bytes()
    finally:
        if tracer is not None:
            tracer.start()
    assert count == total
    assert batch.stats().succeeded == total
    # Resident memory after a million ids is what it was after 2 % of them:
    # nothing accumulates (a list of the outcomes alone would take > 300 MB).
    assert checkpoints[total] - checkpoints[20_000] < 16 * 2**20


@pytest.mark.filterwarnings("ignore::pytest.PytestWarning")
def test_latency_histogram_percentiles() -> None:
    histogram = LatencyHistogram()
    assert histogram.percentile(50) is None
    for n in range(1, 1001):
        histogram.add(n / 1000)
    for q, expected in ((50, 0.5), (95, 0.95), (99, 0.99)):
        value = histogram.percentile(q)
        assert value is not None
        assert abs(value - expected) / expected < 0.03
    histogram.add(0.0)
    assert histogram.count == 1001


async def test_public_and_explicit_videos(library: FakeLibrary) -> None:
    small = FakeLibrary(
        [FakeVideo("PI-000000000000000001", visual=library[next(iter(library)).video_no].visual)]
    )
    async with FakeServer(small) as server, client_for(server) as client:
        results = await client.gather_transcriptions(["PI-000000000000000001"])
    assert results["PI-000000000000000001", TranscriptKind.VISUAL].ok


async def test_both_is_a_kind_of_every_batch_and_not_of_one_transcript(
    server: FakeServer, library: FakeLibrary
) -> None:
    # The command line's --kind both, in the library: visual then audio per number.
    ids = ready(library)[:3]
    async with client_for(server) as client:
        async with client.fetch_transcriptions(ids, kind="both", ordered=True) as batch:
            jobs = [(o.video_no, o.kind) async for o in batch]
        with pytest.raises(ValueError, match="fetch_transcriptions"):
            await client.get_transcription(ids[0], kind="both")
        with pytest.raises(ValueError, match="'visual', 'audio', 'both'"):
            client.fetch_transcriptions(ids, kind="smell")
    assert jobs == [(n, k) for n in ids for k in (TranscriptKind.VISUAL, TranscriptKind.AUDIO)]
