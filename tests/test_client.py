"""The client against a mocked API (aioresponses): endpoints, retries, cooldown, ownership."""

from __future__ import annotations

import asyncio
import logging
import re
from contextlib import aclosing
from typing import Any

import aiohttp
import orjson
import pytest
from aioresponses import CallbackResult, aioresponses
from yarl import URL

from memories_async import (
    AuthenticationError,
    Config,
    ConfigError,
    DecodeError,
    HTTPStatusError,
    InsufficientCreditsError,
    InvalidVideoNumberError,
    MemoriesClient,
    RateGovernor,
    RateLimitError,
    RequestTimeoutError,
    RetryPolicy,
    Segment,
    TranscriptKind,
    TransientAPIError,
    TransportError,
    VideoStatus,
)

from .conftest import API_KEY, BASE_URL, FakeTime, envelope, fetched, url

pytestmark = pytest.mark.asyncio

LIVE = {
    "videoNo": "VI606041694843813888",
    "transcriptions": [
        {"index": 0, "content": "Under a rocky overhang", "startTime": "0", "endTime": "8"},
        {"index": 1, "content": " three people", "startTime": "8", "endTime": "8"},
    ],
    "createTime": "1755245460412",
    "video_bucket": "ignored",
}


def pattern(endpoint: str) -> re.Pattern[str]:
    return re.compile(re.escape(url(endpoint)) + r"(\?.*)?$")


def sent(mock: aioresponses, endpoint: str) -> list[Any]:
    """The calls recorded for ``endpoint``, in order."""
    return [
        call
        for (method, u), calls in mock.requests.items()
        if URL(u).path.endswith("/" + endpoint)
        for call in calls
    ]


def query(call: Any) -> dict[str, str]:
    return dict(call.kwargs.get("params") or {})


# -- endpoints ------------------------------------------------------------------


async def test_visual_transcription(client: MemoriesClient, mock_api: aioresponses) -> None:
    mock_api.get(pattern("get_video_transcription"), payload=envelope(LIVE))
    transcript = await client.get_transcription("VI606041694843813888")
    assert transcript.kind is TranscriptKind.VISUAL
    assert transcript.video_no == "VI606041694843813888"
    assert transcript.segments == (
        Segment(0, 0.0, 8.0, "Under a rocky overhang"),
        Segment(1, 8.0, 8.0, " three people"),
    )
    assert transcript.created_at is not None
    (call,) = sent(mock_api, "get_video_transcription")
    assert query(call) == {"video_no": "VI606041694843813888"}
    assert call.kwargs["headers"]["Authorization"] == API_KEY


async def test_every_request_names_the_sdk_and_the_application(
    client: MemoriesClient, mock_api: aioresponses
) -> None:
    mock_api.get(pattern("get_video_transcription"), payload=envelope(LIVE), repeat=True)
    await client.get_transcription("VI1")
    async with MemoriesClient(api_key=API_KEY, base_url=BASE_URL, user_agent="my-app/2.1") as named:
        await named.get_transcription("VI1")
    first, second = sent(mock_api, "get_video_transcription")
    agent = first.kwargs["headers"]["User-Agent"]
    assert re.fullmatch(r"memories-async/\S+ Python/3\.\d+\.\d+ aiohttp/\S+", agent)
    assert second.kwargs["headers"]["User-Agent"] == f"my-app/2.1 {agent}"


async def test_audio_without_speech_is_empty(
    client: MemoriesClient, mock_api: aioresponses
) -> None:
    mock_api.get(pattern("get_audio_transcription"), payload=envelope(None))
    transcript = await client.get_transcription("VI1", kind="audio")
    assert transcript.kind is TranscriptKind.AUDIO
    assert transcript.is_empty


async def test_unique_id_from_config_and_per_call(mock_api: aioresponses) -> None:
    mock_api.get(pattern("get_audio_transcription"), payload=envelope(None), repeat=True)
    async with MemoriesClient(api_key=API_KEY, base_url=BASE_URL, unique_id="tenant") as c:
        await c.get_transcription("VI1", kind=TranscriptKind.AUDIO)
        await c.get_transcription("VI1", kind=TranscriptKind.AUDIO, unique_id="other")
        with pytest.raises(ValueError, match="unique_id"):
            await c.get_transcription("VI1", unique_id="")
    first, second = sent(mock_api, "get_audio_transcription")
    assert query(first)["unique_id"] == "tenant"
    assert query(second)["unique_id"] == "other"


@pytest.mark.parametrize(
    ("kind", "endpoint"),
    [("visual", "get_public_video_transcription"), ("audio", "get_public_audio_transcription")],
)
async def test_public_videos_use_public_endpoints(
    mock_api: aioresponses, kind: str, endpoint: str
) -> None:
    mock_api.get(pattern(endpoint), payload=envelope(LIVE))
    async with MemoriesClient(api_key=API_KEY, base_url=BASE_URL, unique_id="tenant") as c:
        transcript = await c.get_transcription("PI-123", kind=kind)
    assert len(transcript.segments) == 2
    (call,) = sent(mock_api, endpoint)
    assert query(call) == {"video_no": "PI-123"}


async def test_public_can_be_forced_either_way(
    client: MemoriesClient, mock_api: aioresponses
) -> None:
    mock_api.get(pattern("get_public_video_transcription"), payload=envelope(LIVE))
    mock_api.get(pattern("get_video_transcription"), payload=envelope(LIVE))
    await client.get_transcription("VI1", public=True)
    await client.get_transcription("PI-1", public=False)
    assert len(sent(mock_api, "get_public_video_transcription")) == 1
    assert len(sent(mock_api, "get_video_transcription")) == 1


async def test_visual_falls_back_to_caption_path_and_remembers(
    client: MemoriesClient, mock_api: aioresponses
) -> None:
    mock_api.get(pattern("get_video_transcription"), status=404, body="not found")
    mock_api.get(pattern("get_video_caption"), payload=envelope(LIVE), repeat=True)
    first = await client.get_transcription("VI1")
    second = await client.get_transcription("VI2")
    assert len(first.segments) == len(second.segments) == 2
    assert len(sent(mock_api, "get_video_transcription")) == 1
    assert len(sent(mock_api, "get_video_caption")) == 2


async def test_fallback_failure_reports_caption_error(
    client: MemoriesClient, mock_api: aioresponses
) -> None:
    mock_api.get(pattern("get_video_transcription"), status=404, body="not found")
    mock_api.get(pattern("get_video_caption"), status=404, body="not found")
    with pytest.raises(HTTPStatusError) as info:
        await client.get_transcription("VI1")
    assert info.value.status == 404
    assert info.value.endpoint == "get_video_caption"


async def test_get_metadata(client: MemoriesClient, mock_api: aioresponses) -> None:
    mock_api.get(
        pattern("get_metadata"),
        payload=envelope(
            {
                "video_no": "VI1",
                "video_name": "clip.mp4",
                "duration": "653",
                "size": 169612362,
                "status": "PARSE",
                "create_time": "1755245460412",
                "fps": "29.97",
                "width": 1920,
                "height": "1080",
                "extra": [1, 2],
            }
        ),
    )
    mock_api.get(pattern("get_metadata"), payload=envelope(None))
    video = await client.get_metadata("VI1")
    assert video is not None
    assert video.status is VideoStatus.PARSE
    assert (video.name, video.duration, video.size, video.fps, video.height) == (
        "clip.mp4",
        653.0,
        169612362,
        29.97,
        1080,
    )
    assert await client.get_metadata("VI-unknown") is None


def _videos(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "video_no": f"VI{n:018d}",
            "video_name": f"v{n}.mp4",
            "status": "PARSE",
            "duration": str(n),
            "size": "10",
            "create_time": "1755245460412",
            "cause": "null",
        }
        for n in range(start, start + count)
    ]


async def test_list_videos_stops_on_short_page(
    client: MemoriesClient, mock_api: aioresponses
) -> None:
    mock_api.post(pattern("list_videos"), payload=envelope({"videos": _videos(0, 2)}))
    mock_api.post(pattern("list_videos"), payload=envelope({"videos": _videos(2, 2)}))
    mock_api.post(pattern("list_videos"), payload=envelope({"videos": _videos(4, 1)}))
    videos = [v async for v in client.list_videos(page_size=2, status=VideoStatus.PARSE)]
    assert [v.video_no for v in videos] == [f"VI{n:018d}" for n in range(5)]
    assert all(v.cause is None for v in videos)
    bodies = [orjson.loads(c.kwargs["data"]) for c in sent(mock_api, "list_videos")]
    assert [b["page"] for b in bodies] == [1, 2, 3]
    assert all(b["size"] == 2 and b["status"] == "PARSE" for b in bodies)
    assert "unique_id" not in bodies[0]


async def test_list_videos_stops_when_a_full_page_brings_nothing_new(
    client: MemoriesClient, mock_api: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    # A service that ignores the page number: every page the first one, full, no total.
    mock_api.post(pattern("list_videos"), payload=envelope({"videos": _videos(0, 2)}), repeat=True)
    videos = [v async for v in client.list_videos(page_size=2)]
    assert [v.video_no for v in videos] == [f"VI{n:018d}" for n in range(2)]
    assert len(sent(mock_api, "list_videos")) == 2
    assert "page 2 holds only videos of earlier pages" in caplog.text


async def test_list_videos_gives_a_video_listed_twice_once(
    client: MemoriesClient, mock_api: aioresponses
) -> None:
    # A video uploaded during the listing shifts the pages: one video comes again.
    mock_api.post(pattern("list_videos"), payload=envelope({"videos": _videos(0, 2)}))
    mock_api.post(pattern("list_videos"), payload=envelope({"videos": _videos(1, 2)}))
    mock_api.post(pattern("list_videos"), payload=envelope({"videos": _videos(3, 1)}))
    videos = [v.video_no async for v in client.list_videos(page_size=2)]
    assert videos == [f"VI{n:018d}" for n in range(4)]


async def test_list_videos_has_an_upper_bound(
    client: MemoriesClient, mock_api: aioresponses, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("memories_async._client.MAX_LIST_PAGES", 3)
    for page in range(4):
        mock_api.post(pattern("list_videos"), payload=envelope({"videos": _videos(2 * page, 2)}))
    with pytest.raises(DecodeError, match="did not end after 3 pages of 2"):
        _ = [v async for v in client.list_videos(page_size=2)]
    assert len(sent(mock_api, "list_videos")) == 3


async def test_list_videos_stops_on_string_total_count(
    client: MemoriesClient, mock_api: aioresponses
) -> None:
    mock_api.post(
        pattern("list_videos"),
        payload=envelope({"videos": _videos(0, 2), "total_count": "4", "current_page": 1}),
    )
    mock_api.post(
        pattern("list_videos"),
        payload=envelope({"videos": _videos(2, 2), "total_count": "4", "current_page": 2}),
    )
    videos = [v async for v in client.list_videos(page_size=2)]
    assert len(videos) == 4
    assert len(sent(mock_api, "list_videos")) == 2


async def test_list_videos_sends_filters_and_stops_early(
    client: MemoriesClient, mock_api: aioresponses
) -> None:
    mock_api.post(pattern("list_videos"), payload=envelope({"videos": _videos(0, 200)}))
    async with aclosing(
        client.list_videos(video_name="clip", tag="t", video_nos=["VI1 "], unique_id="u")
    ) as videos:
        async for _video in videos:
            break
    (call,) = sent(mock_api, "list_videos")
    body = orjson.loads(call.kwargs["data"])
    assert body == {
        "page": 1,
        "size": 200,
        "unique_id": "u",
        "video_name": "clip",
        "video_nos": ["VI1"],
        "tag": "t",
    }


@pytest.mark.parametrize("size", [0, 201, True])
async def test_list_videos_page_size_checked(client: MemoriesClient, size: int) -> None:
    with pytest.raises(ValueError, match="page_size"):
        async for _ in client.list_videos(page_size=size):
            pass  # pragma: no cover


async def test_list_unique_ids(client: MemoriesClient, mock_api: aioresponses) -> None:
    mock_api.get(
        pattern("list_unique_ids"), payload=envelope({"unique_ids": ["default", "holiday_2025"]})
    )
    assert await client.list_unique_ids() == ("default", "holiday_2025")


# -- input checks -------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "   ", "VI 1", "VI1\n2", None, 42])
async def test_malformed_video_numbers_never_reach_the_network(
    client: MemoriesClient, mock_api: aioresponses, bad: Any
) -> None:
    with pytest.raises(InvalidVideoNumberError):
        await client.get_transcription(bad)
    with pytest.raises(InvalidVideoNumberError):
        await client.get_metadata(bad)
    assert not mock_api.requests


async def test_unknown_kind_is_refused(client: MemoriesClient) -> None:
    with pytest.raises(ValueError, match="'kind' must be 'visual' or 'audio'"):
        await client.get_transcription("VI1", kind="video")


# -- errors and retries -------------------------------------------------------


async def test_transient_0001_is_retried_then_succeeds(
    client: MemoriesClient, mock_api: aioresponses
) -> None:
    endpoint = pattern("get_video_transcription")
    mock_api.get(endpoint, payload=envelope(code="0001", msg="network abnormal"))
    mock_api.get(endpoint, payload=envelope(code="0001", msg="network abnormal"))
    mock_api.get(endpoint, payload=envelope(LIVE))
    transcript, attempts = await fetched(client, "VI1")
    assert attempts == 3
    assert len(transcript.segments) == 2


async def test_transient_0001_gives_up_after_transient_attempts(
    client: MemoriesClient, mock_api: aioresponses
) -> None:
    mock_api.get(
        pattern("get_video_transcription"),
        payload=envelope(code="0001", msg="video not found"),
        repeat=True,
    )
    with pytest.raises(TransientAPIError) as info:
        await client.get_transcription("VI1")
    assert info.value.attempts == client.config.retry.transient_attempts
    assert len(sent(mock_api, "get_video_transcription")) == info.value.attempts
    assert info.value.video_no == "VI1"
    assert "video not found" in str(info.value)


async def test_server_errors_are_retried(client: MemoriesClient, mock_api: aioresponses) -> None:
    endpoint = pattern("get_video_transcription")
    mock_api.get(endpoint, status=502, body="<html><body>Bad Gateway</body></html>")
    mock_api.get(endpoint, status=200, body="<html>proxy</html>", content_type="text/html")
    mock_api.get(endpoint, status=200, body=b'{"code": "0000", "data": {"tran')
    mock_api.get(endpoint, payload=envelope(LIVE))
    _, attempts = await fetched(client, "VI1")
    assert attempts == 4


async def test_retries_give_up_with_the_last_error(mock_api: aioresponses) -> None:
    mock_api.get(pattern("get_video_transcription"), status=503, body="busy", repeat=True)
    policy = RetryPolicy(attempts=3, backoff=False)
    async with MemoriesClient(api_key=API_KEY, base_url=BASE_URL, retry=policy) as c:
        with pytest.raises(HTTPStatusError) as info:
            await c.get_transcription("VI1")
    assert info.value.status == 503
    assert info.value.retryable
    assert info.value.attempts == 3
    assert len(sent(mock_api, "get_video_transcription")) == 3


async def test_timeouts_and_connection_errors_are_retried(
    client: MemoriesClient, mock_api: aioresponses
) -> None:
    endpoint = pattern("get_video_transcription")
    mock_api.get(endpoint, exception=TimeoutError())
    mock_api.get(endpoint, exception=aiohttp.ServerDisconnectedError())
    mock_api.get(endpoint, payload=envelope(LIVE))
    _, attempts = await fetched(client, "VI1")
    assert attempts == 3


async def test_timeout_error_kind(mock_api: aioresponses) -> None:
    mock_api.get(pattern("get_video_transcription"), exception=TimeoutError(), repeat=True)
    policy = RetryPolicy(attempts=2, backoff=False)
    async with MemoriesClient(api_key=API_KEY, base_url=BASE_URL, retry=policy) as c:
        with pytest.raises(RequestTimeoutError) as info:
            await c.get_transcription("VI1")
    assert isinstance(info.value, TransportError)
    assert info.value.attempts == 2
    assert isinstance(info.value.__cause__, TimeoutError)


async def test_account_errors_are_not_retried_and_stop_the_client(
    client: MemoriesClient, mock_api: aioresponses
) -> None:
    mock_api.get(
        pattern("get_video_transcription"),
        payload=envelope(code="0401", msg="authorization invalid"),
    )
    with pytest.raises(AuthenticationError) as info:
        await client.get_transcription("VI1")
    assert info.value.attempts == 1
    assert info.value.fatal
    # Every later call fails the same way without reaching the network.
    with pytest.raises(AuthenticationError) as again:
        await client.get_transcription("VI2", kind="audio")
    assert again.value.video_no == "VI2"
    assert len(sent(mock_api, "get_video_transcription")) == 1
    assert not sent(mock_api, "get_audio_transcription")


async def test_account_error_on_http_status(client: MemoriesClient, mock_api: aioresponses) -> None:
    mock_api.get(
        pattern("get_audio_transcription"),
        status=402,
        payload={"code": "0402", "msg": "insufficient credits"},
    )
    with pytest.raises(InsufficientCreditsError) as info:
        await client.get_transcription("VI1", kind="audio")
    assert info.value.status == 402


async def test_structure_errors_name_the_field_and_video(
    client: MemoriesClient, mock_api: aioresponses
) -> None:
    bad = {"transcriptions": [{"index": 0, "content": "x", "startTime": "soon", "endTime": "1"}]}
    mock_api.get(pattern("get_video_transcription"), payload=envelope(bad))
    with pytest.raises(DecodeError) as info:
        await client.get_transcription("VI9")
    assert not info.value.retryable
    assert info.value.field == "$.transcriptions[0].startTime"
    assert info.value.video_no == "VI9"
    assert len(sent(mock_api, "get_video_transcription")) == 1


# -- the shared cooldown ---------------------------------------------------------


async def test_burst_reaches_the_governor() -> None:
    async with MemoriesClient(api_key=API_KEY, base_url=BASE_URL, rate=1, burst=3) as c:
        assert c.config.burst == 3
        # Three slots at once after an idle time, then one a second.
        assert [c.governor.try_acquire() is not None for _ in range(4)] == [True] * 3 + [False]


async def test_a_refusal_pauses_nobody_else(mock_api: aioresponses) -> None:
    # Without Retry-After a refused request takes the next free slot; the
    # other calls of the client go on at the rate in force.
    fake = FakeTime()
    governor = RateGovernor(rate=10, adaptive=False, clock=fake.clock, sleep=fake.sleep)
    seen: dict[str, list[float]] = {}

    def answer(u: URL, **kwargs: Any) -> CallbackResult:
        number = kwargs["params"]["video_no"]
        seen.setdefault(number, []).append(fake.now)
        if number == "VI-A" and len(seen[number]) == 1:
            return CallbackResult(
                payload=envelope(code="0429", msg="Request has exceeded the limit.")
            )
        return CallbackResult(payload=envelope(LIVE))

    mock_api.get(pattern("get_video_transcription"), callback=answer, repeat=True)
    async with MemoriesClient(
        api_key=API_KEY, base_url=BASE_URL, retry=RetryPolicy(backoff=False), governor=governor
    ) as c:
        _, attempts = await fetched(c, "VI-A")
        others = await asyncio.gather(*(fetched(c, f"VI-{n}") for n in range(3)))
    assert attempts == 2
    assert all(a == 1 for _, a in others)
    # Every request took its own slot, 0.1 s (and the margin) apart: no pause.
    times = sorted(t for sent in seen.values() for t in sent)
    assert len(times) == 5
    assert times[-1] < 5 * 0.11
    stats = governor.stats()
    assert (stats.refused, stats.pauses) == (1, 0)


async def test_rate_limit_storm_is_not_an_attempt_budget(mock_api: aioresponses) -> None:
    endpoint = pattern("get_video_transcription")
    for _ in range(6):
        mock_api.get(endpoint, payload=envelope(code="0429", msg="Request has exceeded the limit."))
    mock_api.get(endpoint, payload=envelope(LIVE))
    policy = RetryPolicy(attempts=2, backoff=False)
    async with MemoriesClient(api_key=API_KEY, base_url=BASE_URL, retry=policy) as c:
        _, attempts = await fetched(c, "VI1")
        assert attempts == 7
        assert c.governor.stats().refused == 6


async def test_rate_limit_storm_eventually_reported(mock_api: aioresponses) -> None:
    mock_api.get(
        pattern("get_video_transcription"),
        payload=envelope(code="0429", msg="Request has exceeded the limit."),
        repeat=True,
    )
    # Refusals are not failures: they do not use up attempts, only the total time.
    policy = RetryPolicy(attempts=2, backoff=False, total_timeout=0.2)
    async with MemoriesClient(api_key=API_KEY, base_url=BASE_URL, retry=policy, rate=200) as c:
        with pytest.raises(RateLimitError) as info:
            await c.get_transcription("VI1")
    assert info.value.attempts > 2 * 4
    assert info.value.rate_limited


async def test_http_429_retry_after_drives_the_cooldown(mock_api: aioresponses) -> None:
    fake = FakeTime()
    governor = RateGovernor(clock=fake.clock, sleep=fake.sleep)
    endpoint = pattern("get_video_transcription")
    mock_api.get(endpoint, status=429, body="slow down", headers={"Retry-After": "7"})
    mock_api.get(endpoint, payload=envelope(LIVE))
    async with MemoriesClient(
        api_key=API_KEY, base_url=BASE_URL, retry=RetryPolicy(backoff=False), governor=governor
    ) as c:
        _, attempts = await fetched(c, "VI1")
    assert attempts == 2
    assert fake.sleeps == [7.0]


async def test_retry_after_on_a_5xx_applies_without_backoff(mock_api: aioresponses) -> None:
    # backoff=False drops the back-off, not the server's Retry-After (RetryPolicy docs):
    # the call waits for it on the governor's time, and every caller pauses with it.
    fake = FakeTime()
    governor = RateGovernor(adaptive=False, clock=fake.clock, sleep=fake.sleep)
    endpoint = pattern("get_video_transcription")
    mock_api.get(endpoint, status=503, body="busy", headers={"Retry-After": "9"})
    mock_api.get(endpoint, payload=envelope(LIVE))
    retries: list[tuple[int, float]] = []
    async with MemoriesClient(
        api_key=API_KEY, base_url=BASE_URL, retry=RetryPolicy(backoff=False), governor=governor
    ) as c:
        await c.get_transcription("VI1", on_retry=lambda _e, n, wait: retries.append((n, wait)))
    assert retries == [(1, 9.0)]
    # One wait of 9 s, the call's own on the governor's sleep: the pause it started has
    # ended when it wakes, so it waits for no slot.
    assert fake.sleeps == [9.0]
    stats = governor.stats()
    assert (stats.pauses, stats.waited) == (1, 0.0)


async def test_on_retry_sees_each_failed_attempt(mock_api: aioresponses) -> None:
    endpoint = pattern("get_audio_transcription")
    mock_api.get(endpoint, status=502, body="bad gateway")
    mock_api.get(endpoint, payload=envelope(code="0429", msg="Request has exceeded the limit."))
    mock_api.get(endpoint, payload=envelope(LIVE))
    seen: list[tuple[str, int, int | None]] = []

    def on_retry(error: Exception, attempt: int, _wait: float) -> None:
        assert isinstance(error, HTTPStatusError | RateLimitError)
        seen.append((type(error).__name__, attempt, error.status))

    async with MemoriesClient(
        api_key=API_KEY, base_url=BASE_URL, retry=RetryPolicy(backoff=False)
    ) as c:
        transcript = await c.get_transcription("VI1", kind="audio", on_retry=on_retry)
        assert c.governor.stats().refused == 1
    assert seen == [("HTTPStatusError", 1, 502), ("RateLimitError", 2, 200)]
    assert len(transcript.segments) == 2


# -- sessions, configuration, redaction -------------------------------------------


async def test_borrowed_session_is_not_closed(mock_api: aioresponses) -> None:
    mock_api.get(pattern("list_unique_ids"), payload=envelope({"unique_ids": []}))
    async with aiohttp.ClientSession() as session:
        async with MemoriesClient(api_key=API_KEY, base_url=BASE_URL, session=session) as c:
            assert await c.list_unique_ids() == ()
        assert c.closed
        assert not session.closed


async def _batch_of(c: MemoriesClient, mock: aioresponses, count: int, concurrency: int) -> None:
    """Run one batch of ``count`` transcripts at ``concurrency``."""
    mock.get(pattern("get_video_transcription"), payload=envelope(LIVE), repeat=True)
    async with c.fetch_transcriptions(
        [f"VI{n}" for n in range(count)], max_concurrency=concurrency
    ) as batch:
        assert all([o.ok async for o in batch])


def _pool_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "connection pool" in r.getMessage()]


async def test_an_owned_pool_grows_on_first_use_and_warns_once_later(
    mock_api: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "memories_async")
    async with MemoriesClient(api_key=API_KEY, base_url=BASE_URL, max_connections=2) as c:
        await _batch_of(c, mock_api, 4, concurrency=4)  # first use: the pool holds 4
        assert _pool_warnings(caplog) == []
        await _batch_of(c, mock_api, 8, concurrency=8)
        await _batch_of(c, mock_api, 8, concurrency=8)
    [message] = _pool_warnings(caplog)
    assert "holds 4 connections, fewer than the 8" in message
    assert "raise max_connections" in message


@pytest.mark.parametrize(
    ("limits", "held"),
    [
        ({"limit": 3}, 3),
        ({"limit": 100, "limit_per_host": 2}, 2),
        ({"limit": 0, "limit_per_host": 5}, 5),
    ],
)
async def test_a_borrowed_pool_too_small_is_warned_about_on_first_use(
    mock_api: aioresponses,
    caplog: pytest.LogCaptureFixture,
    limits: dict[str, int],
    held: int,
) -> None:
    caplog.set_level(logging.WARNING, "memories_async")
    connector = aiohttp.TCPConnector(**limits)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        MemoriesClient(api_key=API_KEY, base_url=BASE_URL, session=session) as c,
    ):
        await _batch_of(c, mock_api, 6, concurrency=6)
    [message] = _pool_warnings(caplog)
    assert f"holds {held} connections, fewer than the 6" in message
    assert "session's connector" in message


async def test_a_borrowed_pool_large_enough_or_unbounded_is_not_warned_about(
    mock_api: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "memories_async")
    for limits in ({"limit": 6, "limit_per_host": 0}, {"limit": 0, "limit_per_host": 0}):
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(**limits)) as session,
            MemoriesClient(api_key=API_KEY, base_url=BASE_URL, session=session) as c,
        ):
            await _batch_of(c, mock_api, 6, concurrency=6)
    assert _pool_warnings(caplog) == []


async def test_owned_session_is_closed_and_client_refuses_later_calls() -> None:
    c = MemoriesClient(api_key=API_KEY, base_url=BASE_URL)
    async with c:
        session = c._get_transport().session
    assert session.closed
    with pytest.raises(RuntimeError, match="closed"):
        await c.get_transcription("VI1")
    await c.aclose()


async def test_client_without_key_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMORIES_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="MEMORIES_API_KEY"):
        MemoriesClient()


async def test_settings_come_from_arguments_config_then_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MEMORIES_API_KEY", "sk-from-env")
    monkeypatch.setenv("MEMORIES_UNIQUE_ID", "env-ns")
    c = MemoriesClient(base_url="http://x.test/")
    assert c.config.api_key == "sk-from-env"
    assert c.config.unique_id == "env-ns"
    assert c.config.base_url == "http://x.test"
    explicit = MemoriesClient(config=Config(api_key="sk-explicit"), timeout=5)
    assert explicit.config.api_key == "sk-explicit"
    assert explicit.config.timeout == 5
    assert explicit.config.unique_id is None


async def test_the_key_never_leaks(
    client: MemoriesClient, mock_api: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="memories_async")
    endpoint = pattern("get_video_transcription")
    mock_api.get(endpoint, status=500, body="oops")
    mock_api.get(endpoint, payload=envelope(LIVE))
    mock_api.get(pattern("get_audio_transcription"), payload=envelope(code="0401", msg="bad key"))
    await client.get_transcription("VI1")
    with pytest.raises(AuthenticationError) as info:
        await client.get_transcription("VI1", kind="audio")
    texts = [
        repr(client),
        repr(client.config),
        str(client.config),
        str(info.value),
        repr(info.value),
        caplog.text,
    ]
    assert caplog.records, "expected debug and warning lines"
    assert any("attempt=" in r.getMessage() for r in caplog.records)
    for text in texts:
        assert API_KEY not in text


async def test_real_timeout_against_a_silent_server(unused_tcp_port: int) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()
        finally:
            writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", unused_tcp_port)
    async with server:
        policy = RetryPolicy(attempts=2, backoff=False)
        async with MemoriesClient(
            api_key=API_KEY,
            base_url=f"http://127.0.0.1:{unused_tcp_port}",
            timeout=0.05,
            retry=policy,
        ) as c:
            with pytest.raises(RequestTimeoutError) as info:
                await c.get_transcription("VI1")
    assert info.value.attempts == 2
    assert API_KEY not in str(info.value)


async def test_retry_after_with_a_0429_envelope_drives_the_cooldown(
    mock_api: aioresponses,
) -> None:
    fake = FakeTime()
    governor = RateGovernor(clock=fake.clock, sleep=fake.sleep)
    endpoint = pattern("get_video_transcription")
    mock_api.get(
        endpoint,
        status=429,
        payload=envelope(code="0429", msg="Request has exceeded the limit."),
        headers={"Retry-After": "3"},
    )
    mock_api.get(endpoint, payload=envelope(LIVE))
    async with MemoriesClient(
        api_key=API_KEY, base_url=BASE_URL, retry=RetryPolicy(backoff=False), governor=governor
    ) as c:
        _, attempts = await fetched(c, "VI1")
    assert attempts == 2
    assert fake.sleeps == [3.0]
