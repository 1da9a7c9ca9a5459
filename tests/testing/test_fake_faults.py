"""Injected faults: each kind, their targeting, and their determinism."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
import pytest_asyncio

from memories_async.testing import (
    DEFAULT_RANDOM_FAULTS,
    Endpoint,
    FakeLibrary,
    FakeSegment,
    FakeServer,
    FakeVideo,
    FaultKind,
    FaultRule,
)

PREFIX = "/serve/api/v1/"
FLAKY = "VI300000000000000001"
STEADY = "VI300000000000000002"
TRANSCRIPT = tuple(
    FakeSegment(i * 5, i * 5 + 5, f"Segment number {i}, «quoted».") for i in range(40)
)


def library() -> FakeLibrary:
    return FakeLibrary([FakeVideo(FLAKY, visual=TRANSCRIPT), FakeVideo(STEADY, visual=TRANSCRIPT)])


@pytest_asyncio.fixture
async def server() -> AsyncIterator[FakeServer]:
    async with FakeServer(library()) as running:
        yield running


@pytest_asyncio.fixture
async def session(server: FakeServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
        server.url, headers={"Authorization": server.api_key}
    ) as client:
        yield client


async def fetch(
    session: aiohttp.ClientSession, video_no: str = FLAKY, endpoint: str = "get_video_transcription"
) -> tuple[int, str, bytes]:
    async with session.get(PREFIX + endpoint, params={"video_no": video_no}) as response:
        return response.status, response.content_type, await response.read()


async def statuses(session: aiohttp.ClientSession, video_no: str, count: int) -> list[int]:
    return [(await fetch(session, video_no))[0] for _ in range(count)]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("kind", "status"),
    [(FaultKind.HTTP_500, 500), (FaultKind.HTTP_502, 502), (FaultKind.HTTP_503, 503)],
)
async def test_http_errors_come_with_an_html_page(
    server: FakeServer, session: aiohttp.ClientSession, kind: FaultKind, status: int
) -> None:
    server.faults = [FaultRule(kind)]

    answer = await fetch(session)

    assert answer[:2] == (status, "text/html")
    assert b"<html>" in answer[2]
    assert str(status).encode() in answer[2]
    assert server.stats.faults == {kind: 1}
    assert not server.stats.codes


@pytest.mark.asyncio
async def test_html_with_http_200(server: FakeServer, session: aiohttp.ClientSession) -> None:
    server.faults = [FaultRule(FaultKind.HTML_200)]

    status, content_type, body = await fetch(session)

    assert (status, content_type) == (200, "text/html")
    assert body.startswith(b"<!DOCTYPE html>")


@pytest.mark.asyncio
async def test_network_abnormal(server: FakeServer, session: aiohttp.ClientSession) -> None:
    server.faults = [FaultRule(FaultKind.NETWORK_ABNORMAL)]

    status, _, body = await fetch(session)

    assert status == 200
    assert orjson.loads(body) == {"code": "0001", "msg": "network abnormal"}
    assert server.stats.codes == {"0001": 1}


@pytest.mark.asyncio
async def test_injected_rate_limit(server: FakeServer, session: aiohttp.ClientSession) -> None:
    server.faults = [FaultRule(FaultKind.RATE_LIMITED)]

    status, _, body = await fetch(session)

    assert status == 200
    assert orjson.loads(body)["code"] == "0429"
    assert server.stats.rate_limited == 1
    assert server.stats.faults == {FaultKind.RATE_LIMITED: 1}


@pytest.mark.asyncio
async def test_truncated_json_is_a_prefix_of_the_real_body(
    server: FakeServer, session: aiohttp.ClientSession
) -> None:
    server.faults = [FaultRule(FaultKind.TRUNCATED_JSON, video_nos={FLAKY})]

    status, content_type, truncated = await fetch(session)
    whole = (await fetch(session, STEADY))[2].replace(STEADY.encode(), FLAKY.encode())

    assert (status, content_type) == (200, "application/json")
    assert 0 < len(truncated) < len(whole)
    assert whole.startswith(truncated)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(truncated)


@pytest.mark.asyncio
async def test_connection_reset_mid_body(
    server: FakeServer, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    server.faults = [FaultRule(FaultKind.CONNECTION_RESET, video_nos={FLAKY})]

    with caplog.at_level(logging.INFO):
        with pytest.raises(aiohttp.ClientError):
            await fetch(session)
        after = await fetch(session, STEADY)

    assert after[0] == 200
    assert server.stats.faults[FaultKind.CONNECTION_RESET] >= 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.asyncio
async def test_a_hang_outlasts_the_client_timeout_and_is_released(
    server: FakeServer, session: aiohttp.ClientSession
) -> None:
    server.faults = [FaultRule(FaultKind.HANG, video_nos={FLAKY})]

    with pytest.raises(asyncio.TimeoutError):
        async with session.get(
            PREFIX + "get_video_transcription",
            params={"video_no": FLAKY},
            timeout=aiohttp.ClientTimeout(total=0.2),
        ):
            pass
    # The client gave up and closed its connection: the server stops waiting too.
    for _ in range(500):
        if server.stats.in_flight == 0:
            break
        await asyncio.sleep(0.01)

    assert server.stats.in_flight == 0
    assert (await fetch(session, STEADY))[0] == 200


@pytest.mark.asyncio
async def test_a_short_hang_ends_with_the_normal_answer(
    server: FakeServer, session: aiohttp.ClientSession
) -> None:
    server.hang_seconds = 0.01
    server.faults = [FaultRule(FaultKind.HANG)]

    status, _, body = await fetch(session)

    assert status == 200
    assert orjson.loads(body)["data"]["videoNo"] == FLAKY


@pytest.mark.asyncio
async def test_first_attempts_fail_then_the_video_recovers(
    server: FakeServer, session: aiohttp.ClientSession
) -> None:
    server.faults = [FaultRule(FaultKind.HTTP_503, video_nos={FLAKY}, first_attempts=2)]

    flaky = await statuses(session, FLAKY, 4)
    steady = await statuses(session, STEADY, 2)

    assert flaky == [503, 503, 200, 200]
    assert steady == [200, 200]
    assert server.stats.requests_by_video == {FLAKY: 4, STEADY: 2}


@pytest.mark.asyncio
async def test_reset_restarts_attempt_counts(
    server: FakeServer, session: aiohttp.ClientSession
) -> None:
    server.faults = [FaultRule(FaultKind.HTTP_502, first_attempts=1)]
    assert await statuses(session, FLAKY, 2) == [502, 200]

    server.reset()

    assert await statuses(session, FLAKY, 2) == [502, 200]


@pytest.mark.asyncio
async def test_rules_can_target_endpoints(
    server: FakeServer, session: aiohttp.ClientSession
) -> None:
    server.faults = [FaultRule(FaultKind.HTTP_500, endpoints={Endpoint.GET_METADATA})]

    metadata = await fetch(session, endpoint="get_metadata")
    transcript = await fetch(session)

    assert (metadata[0], transcript[0]) == (500, 200)


@pytest.mark.asyncio
async def test_the_first_matching_rule_wins(
    server: FakeServer, session: aiohttp.ClientSession
) -> None:
    server.faults = [
        FaultRule(FaultKind.HTTP_500, video_nos={FLAKY}),
        FaultRule(FaultKind.HTTP_502),
    ]

    assert (await fetch(session))[0] == 500
    assert (await fetch(session, STEADY))[0] == 502


async def fault_pattern(seed: int, count: int = 60) -> tuple[list[str], str]:
    """Fetch FLAKY ``count`` times at a 30% fault rate; return the answers and a normal one."""
    # Resets are left out: how a client library reacts to one (e.g. by retrying on a fresh
    # connection) is not the fake's to decide, and would change the request count.
    kinds = [kind for kind in DEFAULT_RANDOM_FAULTS if kind is not FaultKind.CONNECTION_RESET]
    rule = FaultRule(*kinds, probability=0.3, video_nos={FLAKY})
    async with (
        FakeServer(library(), seed=seed, faults=[rule]) as server,
        aiohttp.ClientSession(server.url, headers={"Authorization": server.api_key}) as session,
    ):
        status, content_type, body = await fetch(session, STEADY)
        normal = f"{status} {content_type} {len(body)}"
        pattern = []
        for _ in range(count):
            status, content_type, body = await fetch(session)
            pattern.append(f"{status} {content_type} {len(body)}")
        assert server.stats.total_faults == sum(1 for item in pattern if item != normal)
        return pattern, normal


@pytest.mark.asyncio
async def test_random_faults_are_deterministic_for_a_seed() -> None:
    first, normal = await fault_pattern(1)
    again, _ = await fault_pattern(1)
    other, _ = await fault_pattern(2)

    assert first == again
    assert first != other
    assert 0 < first.count(normal) < len(first)


@pytest.mark.asyncio
async def test_several_kinds_are_drawn_in_turn(server: FakeServer) -> None:
    server.faults = [FaultRule(FaultKind.HTTP_500, FaultKind.HTTP_503)]
    async with aiohttp.ClientSession(
        server.url, headers={"Authorization": server.api_key}
    ) as session:
        seen = set(await statuses(session, FLAKY, 30))

    assert seen == {500, 503}
    assert set(server.stats.faults) == {FaultKind.HTTP_500, FaultKind.HTTP_503}


@pytest.mark.asyncio
async def test_probability_zero_never_faults(
    server: FakeServer, session: aiohttp.ClientSession
) -> None:
    server.faults = [FaultRule(FaultKind.HTTP_500, probability=0.0)]

    assert set(await statuses(session, FLAKY, 10)) == {200}


def test_default_random_faults_exclude_hangs_and_rate_limits() -> None:
    assert FaultKind.HANG not in DEFAULT_RANDOM_FAULTS
    assert FaultKind.RATE_LIMITED not in DEFAULT_RANDOM_FAULTS
    assert FaultRule.random(0.1).kinds == DEFAULT_RANDOM_FAULTS


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((), {}, ValueError),
        ((FaultKind.HTTP_500,), {"probability": 1.5}, ValueError),
        ((FaultKind.HTTP_500,), {"first_attempts": 0}, ValueError),
        ((FaultKind.HTTP_500,), {"video_nos": FLAKY}, TypeError),
        (("http_418",), {}, ValueError),
    ],
)
def test_fault_rules_reject_bad_values(
    args: tuple[str, ...], kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        FaultRule(*args, **kwargs)  # type: ignore[arg-type]


def test_fault_rules_accept_names() -> None:
    rule = FaultRule("hang", endpoints=["list_videos"], video_nos=[FLAKY])

    assert rule.kinds == (FaultKind.HANG,)
    assert rule.endpoints == frozenset({Endpoint.LIST_VIDEOS})
    assert rule.video_nos == frozenset({FLAKY})
