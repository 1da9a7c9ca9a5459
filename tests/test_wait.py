"""Videos still being processed: not ready is never an empty transcript; waiting for them.

Against the fake server, whose videos finish processing on its clock: here a count of the
requests it received (a video "ready after 20" is ready for the 21st request), so when
each video is ready does not depend on how fast the machine is. The test of the polling
rate runs on real time.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from memories_async import (
    AccountHaltedError,
    EventType,
    Failed,
    Fetched,
    HTTPStatusError,
    MemoriesClient,
    ProcessingFailedError,
    RetryPolicy,
    VideoNotFoundError,
    VideoNotReadyError,
    VideoStatus,
    WaitTimeoutError,
)
from memories_async._wait import POLL_SHARE, Readiness
from memories_async.testing import (
    Endpoint,
    FakeLibrary,
    FakeSegment,
    FakeServer,
    FakeVideo,
    FaultKind,
    FaultRule,
    KeyState,
    RateLimits,
)
from memories_async.testing._pytest_plugin import open_client

pytestmark = pytest.mark.asyncio

SPEECH = "VI700000000000000001"
SILENT = "VI700000000000000002"
PENDING = "VI700000000000000003"
BROKEN = "VI700000000000000004"
WORDS = [FakeSegment(0, 2, " hello there")]


def library() -> FakeLibrary:
    return FakeLibrary(
        [
            FakeVideo(SPEECH, visual=WORDS, audio=WORDS),
            FakeVideo(SILENT, audio=None),
            FakeVideo(PENDING, status="UNPARSE", audio=WORDS),
            FakeVideo(BROKEN, status="PARSE_ERROR", audio=WORDS),
        ]
    )


@pytest_asyncio.fixture
async def server() -> AsyncIterator[FakeServer]:
    made: list[FakeServer] = []

    def requests_so_far() -> float:
        return made[0].stats.total_requests if made else 0

    made.append(FakeServer(library(), clock=requests_so_far))
    async with made[0] as running:
        yield running


@pytest_asyncio.fixture
async def client(server: FakeServer) -> AsyncIterator[MemoriesClient]:
    async with open_client(server) as opened:
        yield opened


def numbers(count: int, start: int = 1000) -> list[str]:
    return [f"VI7{start + i:017d}" for i in range(count)]


async def test_not_ready_and_failed_processing_are_failures_not_empty_transcripts(
    server: FakeServer, client: MemoriesClient
) -> None:
    outcomes = await client.gather_transcriptions([SPEECH, SILENT, PENDING, BROKEN], kind="audio")
    speech, silent = outcomes[(SPEECH, "audio")], outcomes[(SILENT, "audio")]
    assert isinstance(speech, Fetched)
    assert speech.transcript.text == "hello there"
    assert isinstance(silent, Fetched)
    assert silent.transcript.is_empty
    pending, broken = outcomes[(PENDING, "audio")], outcomes[(BROKEN, "audio")]
    assert isinstance(pending, Failed)
    assert isinstance(broken, Failed)
    assert type(pending.error) is VideoNotReadyError
    assert pending.error.status == "UNPARSE"
    assert pending.error.video_no == PENDING
    assert "not ready (status UNPARSE)" in str(pending.error)
    assert isinstance(broken.error, ProcessingFailedError)
    assert "processing failed (status PARSE_ERROR)" in str(broken.error)
    # The three empty answers cost one or two status lookups, and no get_metadata.
    assert 1 <= server.stats.requests[Endpoint.LIST_VIDEOS] <= 2
    assert server.stats.requests[Endpoint.GET_METADATA] == 0


async def test_statuses_of_empty_answers_are_looked_up_in_bulk(
    server: FakeServer, client: MemoriesClient
) -> None:
    pending = numbers(400)
    server.library.add(*(FakeVideo(n, status="UNPARSE") for n in pending))
    outcomes = await client.gather_transcriptions(pending, max_concurrency=32)
    assert all(
        isinstance(o, Failed) and type(o.error) is VideoNotReadyError for o in outcomes.values()
    )
    lookups = server.stats.requests[Endpoint.LIST_VIDEOS]
    # One lookup in flight at a time; what is asked for meanwhile goes in the next one.
    assert lookups <= len(pending) / 8
    assert server.stats.requests[Endpoint.GET_METADATA] == 0


async def test_a_video_outside_the_listing_is_asked_for_alone(
    server: FakeServer, client: MemoriesClient
) -> None:
    # Read under another namespace: not listed, and not known to get_metadata either.
    outcomes = await client.gather_transcriptions([SPEECH], unique_id="other")
    (outcome,) = outcomes.values()
    assert isinstance(outcome, Fetched)
    assert outcome.transcript.is_empty
    assert server.stats.requests[Endpoint.GET_METADATA] == 1


async def test_public_videos_need_no_status(server: FakeServer, client: MemoriesClient) -> None:
    server.library.add(FakeVideo("PI-700000000000000001", visual=()))
    outcomes = await client.gather_transcriptions(["PI-700000000000000001"])
    assert all(isinstance(o, Fetched) for o in outcomes.values())
    assert server.stats.requests[Endpoint.LIST_VIDEOS] == 0


async def test_wait_fetches_each_video_once_as_it_finishes(
    server: FakeServer, client: MemoriesClient
) -> None:
    staggered = numbers(6)
    for i, number in enumerate(staggered):
        server.processing(number, ready_after=20 + 4 * i)
    server.processing(BROKEN, ready_after=15, then="FAILED")
    events: list[EventType] = []
    waiting_seen = []

    def on_event(event: object) -> None:
        events.append(event.type)  # type: ignore[attr-defined]

    ids = [SPEECH, *staggered, BROKEN]
    async with client.fetch_transcriptions(
        ids, wait=True, poll=0.01, on_event=on_event, max_concurrency=2
    ) as batch:
        order = []
        async for outcome in batch:
            order.append(outcome)
            waiting_seen.append(batch.stats().waiting)
    assert order[0].video_no == SPEECH  # ready at once: not held up by the others
    fetched = [o for o in order if isinstance(o, Fetched)]
    assert Counter(o.video_no for o in fetched) == Counter([SPEECH, *staggered])
    assert all(not o.transcript.is_empty for o in fetched)
    (failed,) = (o for o in order if isinstance(o, Failed))
    assert isinstance(failed.error, ProcessingFailedError)
    assert failed.error.status == "FAILED"
    # Each waited-for video: one empty answer, then one fetch once ready.
    for number in staggered:
        assert server.stats.requests_by_video[number] == 2
    assert events.count(EventType.WAITING) == len(staggered) + 1
    assert events.count(EventType.READY) == len(staggered)
    assert max(waiting_seen) >= 1
    assert batch.stats().waiting == 0
    assert server.stats.requests[Endpoint.GET_METADATA] == 0


async def test_waiting_jobs_give_their_slots_to_ready_ones(
    server: FakeServer, client: MemoriesClient
) -> None:
    pending = numbers(8)
    for number in pending:
        server.processing(number, ready_after=60)
    ready = numbers(20, start=5000)
    server.library.add(*(FakeVideo(n, visual=WORDS) for n in ready))
    async with client.fetch_transcriptions(
        [*pending, *ready], wait=True, poll=0.02, max_concurrency=2
    ) as batch:
        order = [outcome.video_no async for outcome in batch]
    # Two slots and eight videos waited for: the ready ones were fetched meanwhile.
    assert set(order[: len(ready)]) == set(ready)
    assert set(order[len(ready) :]) == set(pending)


async def test_wait_timeout_and_a_video_that_disappears(
    server: FakeServer, client: MemoriesClient
) -> None:
    server.processing(SPEECH, ready_after=3600)
    async with client.fetch_transcriptions(
        [SPEECH, PENDING], wait=True, poll=0.01, wait_timeout=0.05, kind="audio"
    ) as batch:
        async for outcome in batch:
            assert isinstance(outcome, Failed)
            if outcome.video_no == PENDING:
                assert isinstance(outcome.error, WaitTimeoutError)
                assert outcome.error.status == "UNPARSE"
                assert "still not ready (status UNPARSE) after waiting 0.05 seconds" in str(
                    outcome.error
                )
                server.library.remove(SPEECH)
            else:
                assert isinstance(outcome.error, VideoNotFoundError | WaitTimeoutError)


async def test_a_removed_video_waited_for_is_not_found(
    server: FakeServer, client: MemoriesClient
) -> None:
    server.processing(SILENT, ready_after=3600)
    async with client.fetch_transcriptions([SILENT], wait=True, poll=0.01) as batch:
        while batch.stats().waiting == 0:
            await asyncio.sleep(0.005)
        server.library.remove(SILENT)
        outcomes = [o async for o in batch]
    (outcome,) = outcomes
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, VideoNotFoundError)
    assert server.stats.requests[Endpoint.GET_METADATA] >= 1  # asked for alone, not listed


async def test_leaving_a_waiting_batch_leaves_no_task(
    server: FakeServer, client: MemoriesClient
) -> None:
    server.processing(SPEECH, ready_after=3600)
    async with client.fetch_transcriptions([SPEECH, SILENT], wait=True, poll=0.01) as batch:
        async for outcome in batch:
            assert outcome.video_no == SILENT
            while batch.stats().waiting == 0:
                await asyncio.sleep(0.005)
            break
    await asyncio.sleep(0)
    assert [t for t in asyncio.all_tasks() if t.get_name().startswith("memories-async")] == []


async def test_polling_stays_within_the_quota() -> None:
    # The service's list_videos limit is 5 QPS; a client paced at 16 QPS spends at most a
    # quarter of it, 4 QPS, on status lookups and polls, however short the poll asked for.
    limits = RateLimits(per_endpoint={Endpoint.LIST_VIDEOS: 5.0})
    async with FakeServer(library(), rate_limits=limits) as server:
        await check_polling_rate(server)


async def check_polling_rate(server: FakeServer) -> None:
    pending = numbers(20)
    for number in pending:
        server.processing(number, ready_after=1.5)
    loop = asyncio.get_running_loop()
    async with MemoriesClient(
        api_key=server.api_key, base_url=server.url, rate=16.0, retry=RetryPolicy(backoff=False)
    ) as client:
        started = loop.time()
        batch = client.fetch_transcriptions(pending, wait=True, poll=0.001, max_concurrency=20)
        async with batch:
            outcomes = [o async for o in batch]
        elapsed = loop.time() - started
    assert all(isinstance(o, Fetched) for o in outcomes)
    assert server.stats.rate_limited_by_endpoint[Endpoint.LIST_VIDEOS] == 0
    lookups = server.stats.requests[Endpoint.LIST_VIDEOS]
    assert 2 <= lookups <= 1 + POLL_SHARE * 16.0 * elapsed
    assert server.stats.requests[Endpoint.VIDEO_TRANSCRIPTION] > len(pending)  # some waited


async def test_a_failed_lookup_fails_its_jobs(server: FakeServer, client: MemoriesClient) -> None:
    server.faults = [FaultRule(FaultKind.HTTP_500, endpoints={Endpoint.LIST_VIDEOS})]
    outcomes = await client.gather_transcriptions([SPEECH, SILENT, PENDING], kind="audio")
    assert outcomes[(SPEECH, "audio")].ok
    for number in (SILENT, PENDING):
        outcome = outcomes[(number, "audio")]
        assert isinstance(outcome, Failed)
        assert isinstance(outcome.error, HTTPStatusError)


async def test_a_failed_poll_is_tried_again_and_the_last_status_is_reported(
    server: FakeServer, client: MemoriesClient, caplog: pytest.LogCaptureFixture
) -> None:
    async with client.fetch_transcriptions(
        [PENDING], wait=True, poll=0.01, wait_timeout=0.3, kind="audio"
    ) as batch:
        while batch.stats().waiting == 0:
            await asyncio.sleep(0.005)
        server.faults = [
            # Every attempt of one poll (5, the client's retry policy), then answers.
            FaultRule(FaultKind.HTTP_500, endpoints={Endpoint.LIST_VIDEOS}, first_attempts=5)
        ]
        server.library.replace(PENDING, status="REVIEWING")
        (outcome,) = [o async for o in batch]
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, WaitTimeoutError)
    assert outcome.error.status == "REVIEWING"  # the status the last poll saw
    assert "checking whether 1 videos are ready failed: HTTP 500" in caplog.text


async def test_an_account_error_while_polling_stops_the_batch(
    server: FakeServer, client: MemoriesClient
) -> None:
    async with client.fetch_transcriptions([PENDING], wait=True, poll=0.01) as batch:
        while batch.stats().waiting == 0:
            await asyncio.sleep(0.005)
        server.keys[server.api_key] = KeyState.DISABLED
        with pytest.raises(AccountHaltedError):
            _ = [o async for o in batch]


async def test_known_statuses_need_no_lookup(server: FakeServer, client: MemoriesClient) -> None:
    readiness = Readiness(client, unique_id=None, empty=bool, known={PENDING: "UNPARSE"})
    assert await readiness.status(PENDING) == "UNPARSE"
    assert await readiness.status(SPEECH) == VideoStatus.PARSE.value
    assert server.stats.total_requests == 0


async def test_wait_settings_are_checked(client: MemoriesClient) -> None:
    with pytest.raises(ValueError, match="'poll' must be a number of seconds > 0"):
        client.fetch_transcriptions([SPEECH], wait=True, poll=0)
    with pytest.raises(ValueError, match="'timeout' must be a number of seconds > 0 or None"):
        client.fetch_transcriptions([SPEECH], wait=True, wait_timeout=-1)


# -- wait_until_ready -----------------------------------------------------------------


async def test_wait_until_ready_returns_the_video_once_processed(
    server: FakeServer, client: MemoriesClient
) -> None:
    server.processing(PENDING, ready_after=3)
    video = await client.wait_until_ready(PENDING, poll=0.01, timeout=30)
    assert video.video_no == PENDING
    assert video.status is VideoStatus.PARSE
    checks = server.stats.requests[Endpoint.GET_METADATA]
    assert checks >= 2
    assert server.stats.requests[Endpoint.LIST_VIDEOS] == 0
    assert (await client.wait_until_ready(SPEECH)).video_no == SPEECH
    assert server.stats.requests[Endpoint.GET_METADATA] == checks + 1


async def test_wait_until_ready_backs_off(server: FakeServer, client: MemoriesClient) -> None:
    # 0.01 + 0.015 + 0.0225 + ...: about 9 checks in half a second, not 50.
    with pytest.raises(WaitTimeoutError) as caught:
        await client.wait_until_ready(PENDING, poll=0.01, timeout=0.5)
    assert caught.value.status == "UNPARSE"
    assert caught.value.timeout == 0.5
    assert isinstance(caught.value, VideoNotReadyError)
    assert server.stats.requests[Endpoint.GET_METADATA] <= 12


async def test_wait_until_ready_failures(server: FakeServer, client: MemoriesClient) -> None:
    with pytest.raises(ProcessingFailedError, match=r"status PARSE_ERROR") as failed:
        await client.wait_until_ready(BROKEN)
    assert failed.value.status == "PARSE_ERROR"
    assert failed.value.video_no == BROKEN
    with pytest.raises(VideoNotFoundError, match=r"no such video.*video_no=VI799"):
        await client.wait_until_ready("VI799")
    with pytest.raises(ValueError, match="'poll'"):
        await client.wait_until_ready(PENDING, poll=float("nan"))
    with pytest.raises(ValueError, match="'timeout'"):
        await client.wait_until_ready(PENDING, timeout=0)


async def test_cancelling_wait_until_ready_leaves_nothing(
    server: FakeServer, client: MemoriesClient
) -> None:
    task = asyncio.create_task(client.wait_until_ready(PENDING, poll=0.01))
    while server.stats.requests[Endpoint.GET_METADATA] < 2:
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [t for t in asyncio.all_tasks() if t.get_name().startswith("memories-async")] == []
    assert (await client.wait_until_ready(SPEECH)).video_no == SPEECH


async def test_a_timeout_error_that_is_not_the_waits_own_passes_through(
    client: MemoriesClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def times_out(*_args: object, **_kwargs: object) -> None:
        raise TimeoutError("a deadline of the caller's")

    monkeypatch.setattr(client, "get_metadata", times_out)
    with pytest.raises(TimeoutError, match="a deadline of the caller's"):
        await client.wait_until_ready(PENDING)
    with pytest.raises(TimeoutError, match="a deadline of the caller's") as caught:
        await client.wait_until_ready(PENDING, timeout=30)
    assert not isinstance(caught.value, WaitTimeoutError)


async def test_many_waits_at_once_poll_within_the_share_of_one() -> None:
    # Twenty waits polling every 10 ms would send hundreds of get_metadata requests a
    # second; together they take turns, at most a quarter of the client's pace (40 QPS),
    # as a batch's lookups do, and leave the rest to transcripts.
    pending = numbers(20)
    async with FakeServer(library()) as server:
        for number in pending:
            server.processing(number, ready_after=1.0)
        loop = asyncio.get_running_loop()
        async with MemoriesClient(
            api_key=server.api_key, base_url=server.url, rate=40.0, retry=RetryPolicy(backoff=False)
        ) as client:
            view = client.with_options(timeout=30)  # a view takes its turns with its client
            started = loop.time()
            videos = await asyncio.gather(
                *(
                    (view if i % 2 else client).wait_until_ready(number, poll=0.01)
                    for i, number in enumerate(pending)
                )
            )
            elapsed = loop.time() - started
    assert [video.video_no for video in videos] == pending
    checks = server.stats.requests[Endpoint.GET_METADATA]
    assert len(pending) <= checks <= 1 + POLL_SHARE * 40.0 * elapsed
