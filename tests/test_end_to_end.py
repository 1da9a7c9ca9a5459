"""The client end to end against the fake server: every endpoint, error code and fault kind."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from memories_async import (
    AccountDisabledError,
    AuthenticationError,
    DecodeError,
    HTTPStatusError,
    InsufficientCreditsError,
    MemoriesClient,
    RateGovernor,
    RateLimitError,
    RequestTimeoutError,
    RetryPolicy,
    TranscriptKind,
    TransientAPIError,
    TransportError,
    VideoStatus,
)
from memories_async._quota import slot_interval
from memories_async.testing import (
    FakeLibrary,
    FakeSegment,
    FakeServer,
    FakeVideo,
    FaultKind,
    FaultRule,
    KeyState,
    RateLimits,
    TranscriptShape,
    WireFormat,
)

from .conftest import FakeTime, fetched

pytestmark = pytest.mark.asyncio

PRIVATE = "VI606041694843813888"
PUBLIC = "PI-000000000000000042"
SEGMENTS = [
    FakeSegment(0, 8, "Under a rocky overhang, three people wash clothes"),
    FakeSegment(8, 8, ' "quoted", ünïcode\nand a line break'),
    FakeSegment(12, 20, "an arrow --> here"),
]


def make_library() -> FakeLibrary:
    return FakeLibrary(
        [
            FakeVideo(PRIVATE, visual=SEGMENTS, audio=SEGMENTS[:1], video_name="clip.mp4"),
            FakeVideo("VI000000000000000002", status="UNPARSE", visual=SEGMENTS),
            FakeVideo("VI000000000000000003", unique_id="tenant", visual=SEGMENTS),
            FakeVideo("VI000000000000000004", visual=SEGMENTS, audio=None),
            FakeVideo(PUBLIC, visual=SEGMENTS, audio=SEGMENTS[1:]),
        ]
    )


@pytest_asyncio.fixture
async def server() -> AsyncIterator[FakeServer]:
    async with FakeServer(make_library()) as s:
        yield s


def connect(server: FakeServer, **kwargs: Any) -> MemoriesClient:
    kwargs.setdefault("retry", RetryPolicy(backoff=False))
    if "api_key" not in kwargs:
        kwargs["api_key"] = server.api_key
    return MemoriesClient(base_url=server.url, **kwargs)


@pytest.mark.parametrize("shape", list(TranscriptShape))
async def test_transcripts_of_every_kind_and_library(shape: TranscriptShape) -> None:
    wire = WireFormat(transcript_shape=shape, extra_fields=True)
    async with FakeServer(make_library(), wire_format=wire) as server, connect(server) as client:
        visual = await client.get_transcription(PRIVATE)
        audio = await client.get_transcription(PRIVATE, kind="audio")
        public = await client.get_transcription(PUBLIC, kind=TranscriptKind.AUDIO)
    assert [(s.start, s.end, s.text) for s in visual.segments] == [
        (float(s.start), float(s.end), s.text) for s in SEGMENTS
    ]
    assert [s.index for s in visual.segments] == [0, 1, 2]
    assert len(audio.segments) == 1
    assert audio.kind is TranscriptKind.AUDIO
    assert [s.text for s in public.segments] == [s.text for s in SEGMENTS[1:]]


async def test_nothing_to_give_is_an_empty_transcript(server: FakeServer) -> None:
    async with connect(server) as client:
        not_ready = await client.get_transcription("VI000000000000000002")
        no_speech = await client.get_transcription("VI000000000000000004", kind="audio")
        other_namespace = await client.get_transcription("VI000000000000000003")
        own_namespace = await client.get_transcription("VI000000000000000003", unique_id="tenant")
    assert not_ready.is_empty
    assert no_speech.is_empty
    assert other_namespace.is_empty
    assert len(own_namespace.segments) == 3


async def test_metadata_listing_and_namespaces(server: FakeServer) -> None:
    async with connect(server) as client:
        video = await client.get_metadata(PRIVATE)
        unknown = await client.get_metadata("VI999999999999999999")
        listed = [v async for v in client.list_videos(page_size=2)]
        ready = [v async for v in client.list_videos(status=VideoStatus.PARSE)]
        tenant = [v async for v in client.list_videos(unique_id="tenant")]
        namespaces = await client.list_unique_ids()
    assert video is not None
    assert (video.video_no, video.name, video.status) == (PRIVATE, "clip.mp4", VideoStatus.PARSE)
    assert unknown is None
    assert sorted(v.video_no for v in listed) == sorted(
        ["VI000000000000000002", "VI000000000000000004", PRIVATE]
    )
    assert all(v.status is VideoStatus.PARSE for v in ready)
    assert len(ready) == 2
    assert [v.video_no for v in tenant] == ["VI000000000000000003"]
    assert set(namespaces) == {"default", "tenant"}


async def test_listing_a_generated_library_page_by_page() -> None:
    library = FakeLibrary.generate(450, seed=11)
    async with FakeServer(library) as server, connect(server) as client:
        listed = [v async for v in client.list_videos()]
        failed = [v async for v in client.list_videos(status="FAILED")]
    assert sorted(v.video_no for v in listed) == sorted(v.video_no for v in library)
    assert server.stats.requests["list_videos"] >= 4  # 3 pages of 200, then the failed filter
    assert all(v.status.is_failed for v in failed)


@pytest.mark.parametrize(
    ("state", "error"),
    [
        (KeyState.NO_CREDITS, InsufficientCreditsError),
        (KeyState.DISABLED, AccountDisabledError),
    ],
)
async def test_account_states(state: KeyState, error: type[Exception]) -> None:
    async with FakeServer(make_library(), api_keys={"sk-test-e2e": state}) as server:
        async with connect(server, api_key="sk-test-e2e") as client:
            with pytest.raises(error):
                await client.get_transcription(PRIVATE)
            with pytest.raises(error):
                await client.get_metadata(PRIVATE)
        assert server.stats.total_requests == 1


async def test_bad_key(server: FakeServer) -> None:
    async with connect(server, api_key="sk-test-wrong-key") as client:
        with pytest.raises(AuthenticationError) as info:
            await client.list_unique_ids()
    assert "sk-test-wrong-key" not in str(info.value)
    assert info.value.code == "0401"


async def test_unknown_video_is_a_transient_code_reported_after_retries(
    server: FakeServer,
) -> None:
    async with connect(server) as client:
        with pytest.raises(TransientAPIError) as info:
            await client.get_transcription("VI123")
    assert info.value.code == "0001"
    assert info.value.attempts == RetryPolicy().transient_attempts


@pytest.mark.parametrize(
    "kind",
    [
        FaultKind.HTTP_500,
        FaultKind.HTTP_502,
        FaultKind.HTTP_503,
        FaultKind.NETWORK_ABNORMAL,
        FaultKind.RATE_LIMITED,
        FaultKind.TRUNCATED_JSON,
        FaultKind.CONNECTION_RESET,
        FaultKind.HTML_200,
    ],
)
async def test_each_fault_is_retried_away(kind: FaultKind) -> None:
    faults = [FaultRule(kind, video_nos={PRIVATE}, first_attempts=2)]
    async with FakeServer(make_library(), faults=faults) as server, connect(server) as client:
        transcript, attempts = await fetched(client, PRIVATE)
    assert attempts == 3
    assert len(transcript.segments) == 3
    assert server.stats.faults[kind] == 2


async def test_retries_back_off_on_the_governors_time() -> None:
    # The path every call takes: the client's retry loop, its back-off drawn from the
    # governor's random and slept on the governor's sleep (no real wait, no patching).
    fake = FakeTime()
    governor = RateGovernor(adaptive=False, clock=fake.clock, sleep=fake.sleep, random=lambda: 0.5)
    faults = [FaultRule(FaultKind.HTTP_503, video_nos={PRIVATE}, first_attempts=2)]
    retries: list[tuple[type[Exception], int, float]] = []

    def on_retry(error: Exception, attempt: int, wait: float) -> None:
        retries.append((type(error), attempt, wait))

    async with (
        FakeServer(make_library(), faults=faults) as server,
        connect(server, retry=RetryPolicy(total_timeout=None), governor=governor) as client,
    ):
        transcript = await client.get_transcription(PRIVATE, on_retry=on_retry)
        # Waits of random * initial_wait * 2 ** (n - 1) before try n + 1.
        assert retries == [(HTTPStatusError, 1, 0.25), (HTTPStatusError, 2, 0.5)]
        assert fake.sleeps == [0.25, 0.5]
        assert len(transcript.segments) == 3
        # A batch reports the attempts of every job, a success's included.
        server.faults = [FaultRule(FaultKind.HTTP_503, video_nos={PRIVATE}, first_attempts=1)]
        outcomes = await client.gather_transcriptions([PRIVATE, "VI000000000000000004"])
    assert outcomes[PRIVATE, TranscriptKind.VISUAL].attempts == 2
    assert outcomes["VI000000000000000004", TranscriptKind.VISUAL].attempts == 1
    assert server.stats.faults[FaultKind.HTTP_503] == 3


async def test_total_timeout_runs_on_the_governors_clock() -> None:
    # Refused at every slot of 1 a second: refusals use up no attempts, only the
    # total_timeout of 10 s, measured on the clock the governor sleeps on (with
    # time.monotonic the call would go on until 10 s of real time had passed).
    fake = FakeTime()
    governor = RateGovernor(rate=1, adaptive=False, clock=fake.clock, sleep=fake.sleep)
    faults = [FaultRule(FaultKind.RATE_LIMITED, video_nos={PRIVATE})]
    policy = RetryPolicy(attempts=2, total_timeout=10.0)
    async with (
        FakeServer(make_library(), faults=faults) as server,
        connect(server, retry=policy, governor=governor) as client,
    ):
        with pytest.raises(RateLimitError) as info:
            await client.get_transcription(PRIVATE)
    # Tries a slot apart (1 s and the governor's margin): the 11th, past 10 s, is the last.
    assert info.value.attempts == 11
    assert fake.sleeps == [pytest.approx(slot_interval(1))] * 10
    assert governor.stats().refused == 11


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        (FaultKind.HTTP_503, HTTPStatusError),
        (FaultKind.NETWORK_ABNORMAL, TransientAPIError),
        (FaultKind.TRUNCATED_JSON, DecodeError),
        (FaultKind.CONNECTION_RESET, TransportError),
        (FaultKind.HTML_200, DecodeError),
    ],
)
async def test_each_persistent_fault_is_reported_in_one_line(
    kind: FaultKind, error: type[Exception]
) -> None:
    faults = [FaultRule(kind, video_nos={PRIVATE})]
    async with FakeServer(make_library(), faults=faults) as server:
        async with connect(server, retry=RetryPolicy(backoff=False, attempts=3)) as client:
            with pytest.raises(error) as info:
                await client.get_transcription(PRIVATE)
    message = str(info.value)
    assert "\n" not in message
    assert PRIVATE in message
    assert server.api_key not in message


async def test_hang_hits_the_timeout() -> None:
    faults = [FaultRule(FaultKind.HANG, video_nos={PRIVATE}, first_attempts=1)]
    async with FakeServer(make_library(), faults=faults) as server:
        async with connect(server, timeout=0.2) as client:
            transcript, attempts = await fetched(client, PRIVATE)
            assert attempts == 2
            assert len(transcript.segments) == 3
        faults_forever = [FaultRule(FaultKind.HANG, video_nos={PRIVATE})]
        server.faults = faults_forever
        async with connect(server, timeout=0.05, retry=RetryPolicy(backoff=False, attempts=2)) as c:
            with pytest.raises(RequestTimeoutError):
                await c.get_transcription(PRIVATE)


@pytest.mark.realtime
@pytest.mark.parametrize("http_429", [False, True])
async def test_rate_limits_are_absorbed(http_429: bool) -> None:
    # A strict quota: slow start overshoots it once at least.
    limits = RateLimits.strict(10, http_429=http_429, retry_after=http_429)
    async with FakeServer(make_library(), rate_limits=limits) as server:
        async with connect(server, retry=RetryPolicy(attempts=3, initial_wait=0.01)) as client:
            results = await client.gather_transcriptions(
                [PRIVATE, "VI000000000000000004"] * 1, kind=("visual", "audio")
            )
            await asyncio.gather(*(client.get_transcription(PRIVATE) for _ in range(25)))
    assert all(o.ok for o in results.values())
    assert server.stats.rate_limited >= 1
    assert client.governor.stats().refused == server.stats.rate_limited


async def test_rate_limit_error_when_patience_runs_out() -> None:
    # Refusals never use up attempts: only the total time ends them.
    faults = [FaultRule(FaultKind.RATE_LIMITED, video_nos={PRIVATE})]
    policy = RetryPolicy(backoff=False, attempts=1, total_timeout=0.3)
    async with FakeServer(make_library(), faults=faults) as server:
        async with connect(server, retry=policy, rate=50) as client:
            with pytest.raises(RateLimitError):
                await client.get_transcription(PRIVATE)


@contextlib.asynccontextmanager
async def _serving(handler: Any) -> AsyncIterator[str]:
    """A bare aiohttp server on 127.0.0.1 answering every GET with ``handler``; its URL."""
    from aiohttp import web

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_a_redirect_loop_is_one_clear_transport_error() -> None:
    from aiohttp import web

    from memories_async import MemoriesClient, TransportError

    async def loop_forever(request: web.Request) -> web.Response:
        raise web.HTTPFound(str(request.url))

    policy = RetryPolicy(backoff=False, attempts=1)
    async with (
        _serving(loop_forever) as url,
        MemoriesClient(api_key="sk-test-redirects", base_url=url, retry=policy) as client,
    ):
        with pytest.raises(TransportError) as caught:
            await client.get_transcription("VI1")
    message = str(caught.value)
    assert "TooManyRedirects: redirected 10 times, the last time from http://127.0.0.1" in message
    assert "message=''" not in message


@pytest.mark.parametrize("chunked", [False, True])
async def test_an_answer_larger_than_the_cap_fails_its_call_unread(chunked: bool) -> None:
    from aiohttp import web

    from memories_async import MemoriesClient

    big = b'{"code":"0000","msg":"ok","data":{"transcriptions":[' + b" " * 3_000_000 + b"]}}"

    async def answer(request: web.Request) -> web.StreamResponse:
        if not chunked:
            return web.Response(body=big, content_type="application/json")
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(big), 65536):
            await response.write(big[start : start + 65536])
        await response.write_eof()
        return response

    async with _serving(answer) as url:
        async with MemoriesClient(
            api_key="sk-test-big", base_url=url, max_response_bytes=1_000_000
        ) as client:
            with pytest.raises(DecodeError, match="more than the 1,000,000 allowed") as caught:
                await client.get_transcription("VI1")
            assert caught.value.video_no == "VI1"
            assert not caught.value.retryable
        async with MemoriesClient(api_key="sk-test-big", base_url=url) as client:
            assert (await client.get_transcription("VI1")).is_empty  # under the default cap
