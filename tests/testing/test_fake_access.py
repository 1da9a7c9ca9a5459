"""Authentication and rate limiting of the fake server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
from multidict import CIMultiDictProxy

from memories_async.testing import (
    DEFAULT_API_KEY,
    Endpoint,
    FakeLibrary,
    FakeServer,
    FakeVideo,
    KeyState,
    RateLimits,
)

PREFIX = "/serve/api/v1/"
VIDEO = "VI200000000000000001"
PUBLIC = "PI-200000000000000002"
# A rate that never refills within a test: limits are reached by count, not by time.
FROZEN = 1e-6


@pytest_asyncio.fixture
async def server() -> AsyncIterator[FakeServer]:
    keys = {
        "sk-test-a": KeyState.ACTIVE,
        "sk-test-b": KeyState.ACTIVE,
        "sk-test-broke": KeyState.NO_CREDITS,
        "sk-test-banned": KeyState.DISABLED,
    }
    async with FakeServer(
        FakeLibrary([FakeVideo(VIDEO), FakeVideo(PUBLIC)]), api_keys=keys
    ) as running:
        yield running


@pytest_asyncio.fixture
async def session(server: FakeServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(server.url) as client:
        yield client


async def call(
    session: aiohttp.ClientSession,
    endpoint: str = "get_video_transcription",
    key: str | None = "sk-test-a",
) -> tuple[int, dict[str, Any], CIMultiDictProxy[str]]:
    headers = {} if key is None else {"Authorization": key}
    if endpoint == "list_videos":
        request = session.post(PREFIX + endpoint, data=b'{"page": 1, "size": 10}', headers=headers)
    else:
        video_no = PUBLIC if "public" in endpoint else VIDEO
        request = session.get(PREFIX + endpoint, params={"video_no": video_no}, headers=headers)
    async with request as response:
        return response.status, orjson.loads(await response.read()), response.headers


def test_default_key_is_obviously_fake() -> None:
    server = FakeServer(FakeLibrary())

    assert server.api_key == DEFAULT_API_KEY
    assert DEFAULT_API_KEY.startswith("sk-test-")
    assert not DEFAULT_API_KEY.startswith("sk-mavi-")


def test_api_key_needs_an_active_key() -> None:
    server = FakeServer(FakeLibrary(), api_keys={"sk-test-x": KeyState.DISABLED})

    with pytest.raises(LookupError, match="no active API key"):
        _ = server.api_key


def test_api_keys_must_not_be_one_string() -> None:
    with pytest.raises(TypeError, match="not one string"):
        FakeServer(FakeLibrary(), api_keys="sk-test-x")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("sk-test-a", "0000"),
        ("sk-test-b", "0000"),
        (None, "0401"),
        ("", "0401"),
        ("sk-test-unknown", "0401"),
        ("Bearer sk-test-a", "0401"),
        ("sk-test-broke", "0402"),
        ("sk-test-banned", "0403"),
    ],
)
@pytest.mark.parametrize("endpoint", [e.value for e in Endpoint])
async def test_keys_are_checked_on_every_endpoint(
    session: aiohttp.ClientSession, endpoint: str, key: str | None, code: str
) -> None:
    status, answer, _ = await call(session, endpoint, key)

    assert status == 200
    assert answer["code"] == code
    if code != "0000":
        assert set(answer) == {"code", "msg"}


@pytest.mark.asyncio
async def test_keys_can_change_while_running(
    server: FakeServer, session: aiohttp.ClientSession
) -> None:
    server.keys["sk-test-a"] = KeyState.NO_CREDITS
    server.keys["sk-test-new"] = KeyState.ACTIVE

    assert (await call(session, key="sk-test-a"))[1]["code"] == "0402"
    assert (await call(session, key="sk-test-new"))[1]["code"] == "0000"


@pytest.mark.asyncio
async def test_rate_limit_is_shared_by_all_keys(
    server: FakeServer, session: aiohttp.ClientSession
) -> None:
    server.rate_limits = RateLimits(qps=FROZEN, burst=2)

    codes = [(await call(session, key=key))[1]["code"] for key in ("sk-test-a", "sk-test-b") * 2]

    assert codes == ["0000", "0000", "0429", "0429"]
    assert server.stats.rate_limited == 2
    assert server.stats.rate_limited_by_endpoint == {Endpoint.VIDEO_TRANSCRIPTION: 2}
    assert server.stats.codes == {"0000": 2, "0429": 2}


@pytest.mark.asyncio
async def test_rate_limit_answer_is_0429_with_http_200(
    server: FakeServer, session: aiohttp.ClientSession
) -> None:
    server.rate_limits = RateLimits(qps=FROZEN)
    await call(session)

    status, answer, headers = await call(session)

    assert status == 200
    assert answer == {"code": "0429", "msg": "Request has exceeded the limit."}
    assert "Retry-After" not in headers


@pytest.mark.asyncio
async def test_rate_limit_can_be_a_real_http_429_with_retry_after(
    server: FakeServer, session: aiohttp.ClientSession
) -> None:
    server.rate_limits = RateLimits(qps=0.5, http_429=True, retry_after=True)
    await call(session)

    status, answer, headers = await call(session)

    assert status == 429
    assert answer["code"] == "0429"
    assert int(headers["Retry-After"]) in (1, 2)


@pytest.mark.asyncio
async def test_buckets_are_per_endpoint_and_caption_shares_transcription(
    server: FakeServer, session: aiohttp.ClientSession
) -> None:
    server.rate_limits = RateLimits(
        per_endpoint={Endpoint.VIDEO_TRANSCRIPTION: FROZEN, "get_metadata": FROZEN}
    )

    first = await call(session, "get_video_transcription")
    alias = await call(session, "get_video_caption")
    audio = [await call(session, "get_audio_transcription") for _ in range(5)]
    metadata = [await call(session, "get_metadata") for _ in range(2)]

    assert first[1]["code"] == "0000"
    assert alias[1]["code"] == "0429"
    assert {answer["code"] for _, answer, _ in audio} == {"0000"}
    assert [answer["code"] for _, answer, _ in metadata] == ["0000", "0429"]


@pytest.mark.asyncio
async def test_refused_keys_do_not_use_tokens(
    server: FakeServer, session: aiohttp.ClientSession
) -> None:
    server.rate_limits = RateLimits(qps=FROZEN)

    refused = await call(session, key="sk-test-unknown")
    accepted = await call(session)

    assert (refused[1]["code"], accepted[1]["code"]) == ("0401", "0000")


@pytest.mark.asyncio
async def test_reset_refills_the_buckets(
    server: FakeServer, session: aiohttp.ClientSession
) -> None:
    server.rate_limits = RateLimits(qps=FROZEN)
    await call(session)
    assert (await call(session))[1]["code"] == "0429"

    server.reset()

    assert (await call(session))[1]["code"] == "0000"
    assert server.stats.rate_limited == 0


def test_documented_limits() -> None:
    limits = RateLimits.documented()

    assert limits.limit(Endpoint.VIDEO_TRANSCRIPTION) == 1.0
    assert limits.limit(Endpoint.VIDEO_CAPTION) == 1.0
    assert limits.limit(Endpoint.PUBLIC_AUDIO_TRANSCRIPTION) == 1.0
    assert limits.limit(Endpoint.LIST_VIDEOS) == 5.0
    assert limits.limit(Endpoint.GET_METADATA) == 1.0
    assert limits.limit(Endpoint.LIST_UNIQUE_IDS) is None
    assert RateLimits.documented(transcription_qps=5).limit(Endpoint.AUDIO_TRANSCRIPTION) == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"qps": 0}, "must be > 0"),
        ({"per_endpoint": {"list_videos": -1.0}}, "must be > 0"),
        ({"burst": 0.5}, "'burst' must be >= 1"),
        (
            {"per_endpoint": {"get_video_caption": 1.0, "get_video_transcription": 2.0}},
            "given twice",
        ),
    ],
)
def test_rate_limits_reject_bad_values(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RateLimits(**kwargs)


def test_rate_limits_reject_unknown_endpoints() -> None:
    with pytest.raises(ValueError, match="get_videos"):
        RateLimits(per_endpoint={"get_videos": 1.0})
