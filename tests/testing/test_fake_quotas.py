"""Strict account-wide quotas: shared buckets, decisions on arrival, the noisy neighbour, stats.

The limiter is driven by a virtual clock (``Clock``): no assertion depends on real time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
from click.testing import CliRunner

from memories_async._cli.app import cli
from memories_async._cli.common import Invocation
from memories_async.testing import (
    Endpoint,
    FakeLibrary,
    FakeServer,
    FakeStats,
    FakeVideo,
    FaultKind,
    FaultRule,
    KeyState,
    Latency,
    RateLimits,
    TimelineEntry,
    build_fake_server,
)
from memories_async.testing import FakeServerOptions as Options
from memories_async.testing import _command as command_line
from memories_async.testing._limiter import RateLimiter

PREFIX = "/serve/api/v1/"
VIDEO = "VI500000000000000001"
PUBLIC = "PI-500000000000000002"
KEY_A = "sk-test-quota-a"
KEY_B = "sk-test-quota-b"
# A rate that never refills within a test: limits are reached by count, not by time.
FROZEN = 1e-6


class Clock:
    """A virtual clock: it shows ``now`` until the test moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def limiter(limits: RateLimits, clock: Clock, stats: FakeStats | None = None) -> RateLimiter:
    return RateLimiter(limits, clock=clock, stats=stats)


def admitted(limiter: RateLimiter, clock: Clock, at: float, endpoint: Endpoint) -> bool:
    clock.now = at
    return limiter.acquire(endpoint) is None


# -- RateLimits ------------------------------------------------------------------------------


def test_strict_limits_share_one_transcription_bucket_without_burst() -> None:
    limits = RateLimits.strict(3)

    assert limits.transcription_qps == 3
    assert limits.burst == 1
    assert limits.neighbour_qps is None
    for endpoint in (
        Endpoint.VIDEO_TRANSCRIPTION,
        Endpoint.VIDEO_CAPTION,
        Endpoint.AUDIO_TRANSCRIPTION,
        Endpoint.PUBLIC_VIDEO_TRANSCRIPTION,
        Endpoint.PUBLIC_AUDIO_TRANSCRIPTION,
    ):
        assert limits.limit(endpoint) == 3
    assert limits.limit(Endpoint.LIST_VIDEOS) == 5
    assert limits.limit(Endpoint.GET_METADATA) == 1
    assert limits.limit(Endpoint.LIST_UNIQUE_IDS) is None
    assert RateLimits.strict(2, burst=4, http_429=True, retry_after=True) == RateLimits(
        per_endpoint={"list_videos": 5.0, "get_metadata": 1.0},
        burst=4,
        http_429=True,
        retry_after=True,
        transcription_qps=2,
    )


def test_the_lenient_limits_are_unchanged() -> None:
    assert RateLimits() == RateLimits(qps=None, burst=None, transcription_qps=None)
    assert RateLimits(qps=2).limit(Endpoint.AUDIO_TRANSCRIPTION) == 2
    assert RateLimits.documented().transcription_qps is None
    assert RateLimits.documented().limit(Endpoint.AUDIO_TRANSCRIPTION) == 1


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: RateLimits.strict(5, neighbour_qps=6), r"below 'qps' \(5\), got 6"),
        (lambda: RateLimits.strict(5, neighbour_qps=5), r"below 'qps' \(5\), got 5"),
        (lambda: RateLimits.strict(5, neighbour_qps=0), "'neighbour_qps' must be above 0"),
        (lambda: RateLimits.strict(5, burst=0.5), "'burst' must be >= 1"),
        (lambda: RateLimits.strict(0), "must be > 0"),
        (
            lambda: RateLimits(transcription_qps=2, neighbour_qps=3),
            r"below 'transcription_qps' \(2\), got 3",
        ),
        (
            lambda: RateLimits(qps=5, neighbour_qps=1),
            r"'neighbour_qps' needs the account-wide transcription bucket: set "
            r"'transcription_qps' too, or use RateLimits\.strict",
        ),
        (
            lambda: RateLimits(transcription_qps=2, per_endpoint={"get_video_caption": 1.0}),
            "'get_video_transcription' given both in 'per_endpoint' and by 'transcription_qps'",
        ),
    ],
)
def test_bad_quotas_say_how_to_fix_the_call(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


# -- the limiter on a virtual clock ------------------------------------------------------------


def test_a_burst_of_one_refuses_requests_closer_than_one_over_qps() -> None:
    clock = Clock()
    bucket = limiter(RateLimits.strict(4), clock)  # one token every 0.25 s
    video = Endpoint.VIDEO_TRANSCRIPTION

    assert admitted(bucket, clock, 0.0, video)
    assert not admitted(bucket, clock, 0.0, video)
    assert not admitted(bucket, clock, 0.125, video)
    assert not admitted(bucket, clock, 0.1875, video)
    # The refusals took nothing: a request 1/qps after the last accepted one is accepted.
    assert admitted(bucket, clock, 0.25, video)
    assert admitted(bucket, clock, 0.75, video)  # a long pause does not save up a burst
    assert not admitted(bucket, clock, 0.875, video)


def test_a_refusal_says_when_a_token_comes() -> None:
    clock = Clock()
    bucket = limiter(RateLimits.strict(4), clock)
    bucket.acquire(Endpoint.AUDIO_TRANSCRIPTION)

    clock.now = 0.125
    assert bucket.acquire(Endpoint.AUDIO_TRANSCRIPTION) == 0.125


def test_visual_and_audio_share_the_account_bucket() -> None:
    clock = Clock()
    bucket = limiter(RateLimits.strict(4), clock)

    assert admitted(bucket, clock, 0.0, Endpoint.VIDEO_TRANSCRIPTION)
    for endpoint in (
        Endpoint.VIDEO_CAPTION,
        Endpoint.AUDIO_TRANSCRIPTION,
        Endpoint.PUBLIC_VIDEO_TRANSCRIPTION,
        Endpoint.PUBLIC_AUDIO_TRANSCRIPTION,
    ):
        assert not admitted(bucket, clock, 0.125, endpoint), endpoint
    assert admitted(bucket, clock, 0.25, Endpoint.PUBLIC_AUDIO_TRANSCRIPTION)
    assert not admitted(bucket, clock, 0.25, Endpoint.VIDEO_TRANSCRIPTION)


def test_listing_and_metadata_keep_their_own_buckets() -> None:
    clock = Clock()
    bucket = limiter(RateLimits.strict(FROZEN), clock)

    assert admitted(bucket, clock, 0.0, Endpoint.AUDIO_TRANSCRIPTION)
    assert admitted(bucket, clock, 0.0, Endpoint.LIST_VIDEOS)
    assert admitted(bucket, clock, 0.0, Endpoint.GET_METADATA)
    assert not admitted(bucket, clock, 0.125, Endpoint.LIST_VIDEOS)  # 5 QPS: 0.2 s apart
    assert admitted(bucket, clock, 0.25, Endpoint.LIST_VIDEOS)
    assert not admitted(bucket, clock, 0.5, Endpoint.GET_METADATA)  # 1 QPS
    assert admitted(bucket, clock, 1.0, Endpoint.GET_METADATA)
    assert all(admitted(bucket, clock, 1.0, Endpoint.LIST_UNIQUE_IDS) for _ in range(10))
    assert not admitted(bucket, clock, 1.0, Endpoint.VIDEO_CAPTION)


def test_the_neighbour_consumes_its_rate_over_a_long_time() -> None:
    clock = Clock()
    stats = FakeStats()
    bucket = limiter(RateLimits.strict(5, neighbour_qps=2), clock, stats)
    accepted = 0

    # A greedy caller polls every 10 ms for 1000 s; the neighbour still gets its 2 QPS.
    for tick in range(1, 100_001):
        accepted += admitted(bucket, clock, tick / 100, Endpoint.AUDIO_TRANSCRIPTION)

    assert stats.neighbour_taken in (1999, 2000)  # the take due at 1000 s may still be owed
    assert stats.neighbour_refused > 0
    assert 2850 <= accepted <= 3000  # what is left of 5 QPS, less the polling's rounding


def test_the_neighbour_alone_takes_exactly_its_schedule() -> None:
    clock = Clock()
    stats = FakeStats()
    bucket = limiter(RateLimits.strict(5, neighbour_qps=2), clock, stats)

    clock.now = 10_000.0
    bucket.acquire(Endpoint.AUDIO_TRANSCRIPTION)
    assert (stats.neighbour_taken, stats.neighbour_refused) == (20_000, 0)

    bucket.acquire(Endpoint.LIST_VIDEOS)  # other buckets do not replay the neighbour
    assert stats.neighbour_taken == 20_000


def test_the_neighbour_has_priority_and_keeps_its_schedule() -> None:
    clock = Clock()
    stats = FakeStats()
    bucket = limiter(RateLimits.strict(4, neighbour_qps=2), clock, stats)
    audio = Endpoint.AUDIO_TRANSCRIPTION

    assert admitted(bucket, clock, 0.0, audio)
    assert admitted(bucket, clock, 0.375, audio)
    # 0.5: the neighbour's first attempt finds half a token; it is owed the next one.
    assert not admitted(bucket, clock, 0.5625, audio)
    assert (stats.neighbour_taken, stats.neighbour_refused) == (0, 1)
    # 0.625: the token is there, and the neighbour takes it before the caller.
    assert not admitted(bucket, clock, 0.625, audio)
    assert (stats.neighbour_taken, stats.neighbour_refused) == (1, 1)
    assert admitted(bucket, clock, 0.875, audio)
    # Its next attempt is still at 2/2 = 1.0 s, not 0.5 s after the late take.
    clock.now = 0.9375
    bucket.acquire(Endpoint.LIST_VIDEOS)
    assert not admitted(bucket, clock, 0.9375, audio)
    assert (stats.neighbour_taken, stats.neighbour_refused) == (1, 1)
    assert not admitted(bucket, clock, 1.0, audio)
    assert (stats.neighbour_taken, stats.neighbour_refused) == (1, 2)


def test_a_limiter_without_stats_still_replays_its_neighbour() -> None:
    clock = Clock()
    bucket = limiter(RateLimits.strict(4, neighbour_qps=2), clock)

    assert not admitted(bucket, clock, 0.5, Endpoint.VIDEO_TRANSCRIPTION)


# -- the service -----------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


class Waits:
    """The service's ``sleep``: ``asyncio.sleep`` unless a test sets ``hook``."""

    def __init__(self) -> None:
        self.hook: Callable[[float], Awaitable[None]] | None = None

    async def __call__(self, seconds: float) -> None:
        await (asyncio.sleep(seconds) if self.hook is None else self.hook(seconds))


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest_asyncio.fixture
async def server(clock: Clock, waits: Waits) -> AsyncIterator[FakeServer]:
    keys = {KEY_A: KeyState.ACTIVE, KEY_B: KeyState.ACTIVE, "sk-test-broke": KeyState.NO_CREDITS}
    async with FakeServer(
        FakeLibrary([FakeVideo(VIDEO), FakeVideo(PUBLIC)]),
        api_keys=keys,
        rate_limits=RateLimits.strict(4),
        record_timeline=True,
        clock=clock,
        sleep=waits,
    ) as running:
        yield running


@pytest_asyncio.fixture
async def session(server: FakeServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(server.url) as client:
        yield client


async def call(
    session: aiohttp.ClientSession, endpoint: str = "get_video_transcription", key: str = KEY_A
) -> str:
    """Send one request and return the code of its answer."""
    headers = {"Authorization": key}
    if endpoint == "list_videos":
        request = session.post(PREFIX + endpoint, data=b'{"page": 1}', headers=headers)
    else:
        video_no = PUBLIC if "public" in endpoint else VIDEO
        request = session.get(PREFIX + endpoint, params={"video_no": video_no}, headers=headers)
    async with request as response:
        code: str = orjson.loads(await response.read())["code"]
        return code


async def arrive(
    server: FakeServer, session: aiohttp.ClientSession, endpoint: str = "get_video_transcription"
) -> asyncio.Task[str]:
    """Send a request and return once the server has received (and judged) it."""
    before = server.stats.total_requests
    task = asyncio.create_task(call(session, endpoint))
    async with asyncio.timeout(30):
        while server.stats.total_requests == before:
            await asyncio.sleep(0.001)
    return task


def decisions(server: FakeServer) -> list[tuple[float, str, str, bool]]:
    assert server.stats.timeline is not None
    return [(e.at, e.endpoint, e.key, e.accepted) for e in server.stats.timeline]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "latency", [Latency.fixed(0.2), Latency.uniform(0.0, 0.2)], ids=["fixed", "uniform"]
)
async def test_requests_one_over_qps_apart_pass_whatever_the_latency(
    server: FakeServer, session: aiohttp.ClientSession, clock: Clock, latency: Latency
) -> None:
    server.latency = latency
    first = await arrive(server, session)
    clock.now = 0.25
    second = await arrive(server, session, "get_audio_transcription")

    assert [await first, await second] == ["0000", "0000"]
    assert [accepted for *_, accepted in decisions(server)] == [True, True]


@pytest.mark.asyncio
async def test_the_decision_follows_the_order_of_arrival(
    server: FakeServer, session: aiohttp.ClientSession
) -> None:
    server.rate_limits = RateLimits.strict(FROZEN, burst=2)
    server.latency = Latency.fixed(0.3)
    slow = [await arrive(server, session) for _ in range(2)]
    server.latency = Latency.none()
    fast = [await arrive(server, session) for _ in range(2)]

    # The late arrivals are answered first, yet refused: the early ones took the tokens.
    assert [await task for task in slow + fast] == ["0000", "0000", "0429", "0429"]


@pytest.mark.asyncio
async def test_a_refusal_is_decided_before_the_latency_and_answered_after_it(
    server: FakeServer, session: aiohttp.ClientSession, waits: Waits
) -> None:
    server.rate_limits = RateLimits.strict(FROZEN)
    assert await call(session) == "0000"
    seen: list[tuple[float, list[bool], int]] = []

    async def wait(seconds: float) -> None:
        # What the limiter decided, and what was answered, when the latency starts.
        accepted = [entry.accepted for entry in server.stats.timeline or ()]
        seen.append((seconds, accepted, server.stats.rate_limited))

    waits.hook = wait
    server.latency = Latency.fixed(0.5)

    assert await call(session) == "0429"
    assert seen == [(0.5, [True, False], 0)]
    assert server.stats.rate_limited == 1


@pytest.mark.asyncio
async def test_a_faulted_request_has_used_its_token(
    server: FakeServer, session: aiohttp.ClientSession
) -> None:
    server.rate_limits = RateLimits.strict(FROZEN)
    server.faults = [FaultRule(FaultKind.HTTP_503, first_attempts=1)]

    async with session.get(
        PREFIX + "get_video_transcription",
        params={"video_no": VIDEO},
        headers={"Authorization": KEY_A},
    ) as response:
        assert response.status == 503

    assert await call(session) == "0429"
    assert server.stats.accepted_by_key == {KEY_A: 1}


@pytest.mark.asyncio
async def test_injected_refusals_come_whatever_the_rate(
    server: FakeServer, session: aiohttp.ClientSession, clock: Clock
) -> None:
    server.faults = [FaultRule(FaultKind.RATE_LIMITED, probability=0.5)]
    codes = []
    for second in range(40):
        clock.now = float(second)  # far slower than the quota: the buckets never refuse
        codes.append(await call(session, "get_audio_transcription"))

    refused = codes.count("0429")
    assert 0 < refused < 40
    assert set(codes) == {"0000", "0429"}
    assert server.stats.faults == {FaultKind.RATE_LIMITED: refused}
    assert server.stats.rate_limited == refused
    assert server.stats.rate_limited_by_key == {KEY_A: refused}
    assert server.stats.accepted_by_key == {KEY_A: 40}
    assert all(accepted for *_, accepted in decisions(server))


@pytest.mark.asyncio
async def test_stats_per_key_and_the_timeline(
    server: FakeServer, session: aiohttp.ClientSession, clock: Clock
) -> None:
    server.faults = [FaultRule(FaultKind.RATE_LIMITED, endpoints=["get_metadata"])]

    assert await call(session, key=KEY_A) == "0000"
    clock.now = 0.125
    assert await call(session, "get_audio_transcription", key=KEY_B) == "0429"
    assert await call(session, "list_unique_ids", key=KEY_B) == "0000"
    assert await call(session, "get_metadata", key=KEY_B) == "0429"
    assert await call(session, key="sk-test-unknown") == "0401"
    assert await call(session, key="sk-test-broke") == "0402"
    clock.now = 0.25
    assert await call(session, "get_public_audio_transcription", key=KEY_B) == "0000"

    stats = server.stats
    assert stats.requests_by_key == {KEY_A: 1, KEY_B: 4, "sk-test-unknown": 1, "sk-test-broke": 1}
    assert stats.accepted_by_key == {KEY_A: 1, KEY_B: 3}
    assert stats.rate_limited_by_key == {KEY_B: 2}
    assert stats.rate_limited == 2
    assert decisions(server) == [
        (0.0, "get_video_transcription", KEY_A, True),
        (0.125, "get_audio_transcription", KEY_B, False),
        (0.125, "list_unique_ids", KEY_B, True),
        (0.125, "get_metadata", KEY_B, True),
        (0.25, "get_public_audio_transcription", KEY_B, True),
    ]
    assert stats.timeline is not None
    entry = stats.timeline[1]
    assert isinstance(entry, TimelineEntry)
    assert (entry.at, entry.endpoint, entry.key, entry.accepted) == (
        0.125,
        Endpoint.AUDIO_TRANSCRIPTION,
        KEY_B,
        False,
    )
    assert stats.timeline.maxlen == 1_000_000
    for text in (repr(stats), repr(entry), repr(server)):
        assert "sk-test" not in text
    assert repr(entry) == (
        "TimelineEntry(at=0.125, endpoint='get_audio_transcription', accepted=False)"
    )


@pytest.mark.asyncio
async def test_the_neighbour_in_the_service_and_reset(
    server: FakeServer, session: aiohttp.ClientSession, clock: Clock
) -> None:
    server.rate_limits = RateLimits.strict(4, neighbour_qps=2)
    assert await call(session) == "0000"
    clock.now = 0.5
    assert await call(session) == "0429"  # the neighbour took the token at 0.5
    clock.now = 0.625
    assert await call(session) == "0429"
    assert (server.stats.neighbour_taken, server.stats.neighbour_refused) == (1, 0)

    clock.now = 10.0
    server.reset()

    stats = server.stats
    assert (stats.neighbour_taken, stats.neighbour_refused) == (0, 0)
    assert stats.timeline is not None
    assert not stats.timeline
    assert not stats.requests_by_key
    assert not stats.accepted_by_key
    assert not stats.rate_limited_by_key
    # A fresh schedule and a fresh timeline, both starting at the reset.
    clock.now = 10.25
    assert await call(session) == "0000"
    clock.now = 10.5
    assert await call(session) == "0429"
    assert stats.neighbour_taken == 1
    assert decisions(server) == [
        (0.25, "get_video_transcription", KEY_A, True),
        (0.5, "get_video_transcription", KEY_A, False),
    ]


def test_no_timeline_unless_asked() -> None:
    stats = FakeServer(FakeLibrary()).stats

    assert stats.timeline is None
    stats.reset()
    assert stats.timeline is None


# -- building and command lines ----------------------------------------------------------------


def test_build_fake_server_maps_the_quota_options() -> None:
    strict = build_fake_server(Options(videos=1, strict=True))
    assert strict.rate_limits == RateLimits.strict(5)

    tuned = build_fake_server(
        Options(
            videos=1,
            strict=True,
            qps=2,
            burst=3,
            neighbour_qps=0.5,
            http_429=True,
            retry_after=True,
            record_timeline=True,
        )
    )
    assert tuned.rate_limits == RateLimits.strict(
        2, burst=3, neighbour_qps=0.5, http_429=True, retry_after=True
    )
    assert tuned.stats.timeline is not None

    lenient = build_fake_server(Options(videos=1, qps=2, burst=3))
    assert lenient.rate_limits == RateLimits(qps=2, burst=3)
    assert lenient.stats.timeline is None


def test_a_neighbour_needs_strict_limits() -> None:
    with pytest.raises(ValueError, match=r"add strict=True \(--strict on the command line\)"):
        Options(videos=1, qps=5, neighbour_qps=1)


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace ``run_fake_server`` by one that builds the server and keeps it."""
    seen: dict[str, Any] = {}

    def run(options: Options, /, *, on_ready: object) -> None:
        seen["options"] = options
        seen["server"] = build_fake_server(options)

    monkeypatch.setattr(command_line, "run_fake_server", run)
    return seen


QUOTA_FLAGS = ["--videos", "2", "--strict", "--qps", "2", "--burst", "3", "--neighbour-qps", "1"]


def invoke_click(args: list[str]) -> Any:
    return CliRunner().invoke(
        cli, args, catch_exceptions=False, obj=Invocation(tuple(args)), env={}
    )


def test_python_m_takes_the_quota_flags(captured: dict[str, Any]) -> None:
    assert command_line.main(QUOTA_FLAGS) == 0

    assert captured["server"].rate_limits == RateLimits.strict(2, burst=3, neighbour_qps=1)


def test_python_m_defaults_to_lenient_limits(captured: dict[str, Any]) -> None:
    assert command_line.main(["--videos", "1", "--strict"]) == 0
    assert captured["server"].rate_limits == RateLimits.strict(5)

    assert command_line.main(["--videos", "1"]) == 0
    options = captured["options"]
    assert (options.strict, options.burst, options.neighbour_qps) == (False, None, None)
    assert captured["server"].rate_limits == RateLimits()


def test_click_takes_the_quota_flags(captured: dict[str, Any]) -> None:
    result = invoke_click(["fake-server", *QUOTA_FLAGS])

    assert result.exit_code == 0, result.output
    assert captured["server"].rate_limits == RateLimits.strict(2, burst=3, neighbour_qps=1)

    assert invoke_click(["fake-server", "--videos", "1", "--strict"]).exit_code == 0
    assert captured["server"].rate_limits == RateLimits.strict(5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--neighbour-qps", "1"], "add strict=True (--strict"),
        (["--strict", "--neighbour-qps", "9"], "below 'qps' (5.0), got 9.0"),
    ],
)
def test_both_command_lines_reject_a_bad_neighbour(
    captured: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    with pytest.raises(SystemExit) as exited:
        command_line.main(["--videos", "1", *args])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err

    result = invoke_click(["fake-server", "--videos", "1", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())


def test_click_rejects_a_burst_below_one(captured: dict[str, Any]) -> None:
    result = invoke_click(["fake-server", "--burst", "0.5"])

    assert result.exit_code == 2
    assert "--burst" in result.stderr
    assert "server" not in captured


def test_both_command_lines_are_one_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        command_line.main(["--help"])
    python_m = capsys.readouterr().out
    click_help = invoke_click(["fake-server", "--help"])

    assert click_help.exit_code == 0
    assert click_help.stdout.startswith("usage: memories-async fake-server [-h]")
    assert "--neighbour-qps QPS" in python_m
    # The same options, the same default port.
    assert click_help.stdout.partition("options:")[2] == python_m.partition("options:")[2]
