"""``client.with_options(...)``: a view with other per-call settings that shares the
client's session, rate governor and account state, and owns nothing."""

from __future__ import annotations

from collections import Counter

import aiohttp
import pytest

from memories_async import (
    HTTPStatusError,
    InsufficientCreditsError,
    MemoriesClient,
    RequestTimeoutError,
    RetryPolicy,
)
from memories_async.testing import FakeLibrary, FakeServer, FaultKind, FaultRule, KeyState, Latency

pytestmark = pytest.mark.asyncio

LIBRARY = FakeLibrary.generate(4, seed=5)
VIDEOS = [video.video_no for video in LIBRARY.videos(status="PARSE")]
NO_BACKOFF = RetryPolicy(backoff=False)


def counting_session() -> tuple[aiohttp.ClientSession, Counter[str]]:
    sent: Counter[str] = Counter()
    trace = aiohttp.TraceConfig()

    async def on_start(
        _session: object, _context: object, params: aiohttp.TraceRequestStartParams
    ) -> None:
        sent[params.url.path.rsplit("/", 1)[-1]] += 1

    trace.on_request_start.append(on_start)
    return aiohttp.ClientSession(trace_configs=[trace]), sent


async def test_a_view_has_its_own_settings_and_shares_session_and_governor() -> None:
    session, sent = counting_session()
    async with (
        session,
        FakeServer(LIBRARY) as server,
        MemoriesClient(
            api_key=server.api_key, base_url=server.url, retry=NO_BACKOFF, session=session
        ) as client,
    ):
        view = client.with_options(timeout=5.0, retry=RetryPolicy(attempts=2, backoff=False))
        assert view.config.timeout == 5.0
        assert view.config.retry.attempts == 2
        assert view.config.api_key == client.config.api_key
        assert client.config.timeout == 60.0  # the client's own are unchanged
        assert view.governor is client.governor
        await client.get_transcription(VIDEOS[0])
        await view.get_transcription(VIDEOS[1], kind="audio")
        assert sent == {"get_video_transcription": 1, "get_audio_transcription": 1}
        assert client.governor.stats().accepted == 2  # one governor paced both
        assert "view open" in repr(view)


async def test_the_retry_policy_of_a_view_applies_to_its_calls_only() -> None:
    faults = [FaultRule(FaultKind.HTTP_503, first_attempts=2)]
    async with (
        FakeServer(LIBRARY, faults=faults) as server,
        MemoriesClient(api_key=server.api_key, base_url=server.url, retry=NO_BACKOFF) as client,
    ):
        impatient = client.with_options(retry=RetryPolicy(attempts=1, backoff=False))
        with pytest.raises(HTTPStatusError) as failed:
            await impatient.get_transcription(VIDEOS[0])
        assert failed.value.attempts == 1
        transcript = await client.get_transcription(VIDEOS[1])
        assert not transcript.is_empty
        assert server.stats.requests_by_video[VIDEOS[1]] == 3


async def test_the_timeout_of_a_view_applies_to_its_calls() -> None:
    async with (
        FakeServer(LIBRARY, latency=Latency.fixed(5.0)) as server,
        MemoriesClient(api_key=server.api_key, base_url=server.url, retry=NO_BACKOFF) as client,
    ):
        hasty = client.with_options(timeout=0.01, retry=RetryPolicy(attempts=1))
        with pytest.raises(RequestTimeoutError):
            await hasty.get_transcription(VIDEOS[0])
        assert client.config.timeout == 60.0


async def test_a_view_shares_the_account_state() -> None:
    async with FakeServer(LIBRARY, api_keys={"sk-test-broke": KeyState.NO_CREDITS}) as server:
        async with MemoriesClient(
            api_key="sk-test-broke", base_url=server.url, retry=NO_BACKOFF
        ) as client:
            view = client.with_options(unique_id="tenant-b")
            with pytest.raises(InsufficientCreditsError):
                await view.get_transcription(VIDEOS[0])
            asked = server.stats.requests_by_video[VIDEOS[0]]
            # The client refuses too, without a request: the account is out of credits.
            with pytest.raises(InsufficientCreditsError):
                await client.get_transcription(VIDEOS[0])
            assert server.stats.requests_by_video[VIDEOS[0]] == asked


async def test_a_view_lives_as_long_as_its_client_and_closes_nothing() -> None:
    async with FakeServer(LIBRARY) as server:
        client = MemoriesClient(api_key=server.api_key, base_url=server.url, retry=NO_BACKOFF)
        view = client.with_options(timeout=30.0)
        nested = view.with_options(retry=RetryPolicy(attempts=1))
        async with view:
            await view.get_transcription(VIDEOS[0])
        assert view.closed
        # Closing the view closed neither the session nor the governor of the client.
        await client.get_transcription(VIDEOS[1])
        await nested.get_transcription(VIDEOS[1])
        await client.aclose()
        assert nested.closed
        with pytest.raises(RuntimeError, match="closed"):
            await nested.get_transcription(VIDEOS[0])
        assert "view closed" in repr(nested)
        with pytest.raises(RuntimeError, match="closed"):
            async with nested:
                pass  # pragma: no cover - refused on entry
