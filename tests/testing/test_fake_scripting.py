"""Scripting one video's answer or fault: FakeService.answer and FakeService.fail."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from memories_async import HTTPStatusError, MemoriesClient
from memories_async.testing import (
    FakeLibrary,
    FakeSegment,
    FakeServer,
    FakeVideo,
    FaultKind,
    FaultRule,
)
from memories_async.testing._pytest_plugin import open_client

AUDIO = "/serve/api/v1/get_audio_transcription"
KNOWN = "VI400000000000000001"
OTHER = "VI400000000000000002"
NEW = "VI400000000000000099"


@pytest_asyncio.fixture
async def server() -> AsyncIterator[FakeServer]:
    library = FakeLibrary(
        [
            FakeVideo(KNOWN, status="UNPARSE", visual=[FakeSegment(0, 9, "a kitchen")]),
            FakeVideo(OTHER),
        ]
    )
    async with FakeServer(library) as running:
        yield running


@pytest_asyncio.fixture
async def client(server: FakeServer) -> AsyncIterator[MemoriesClient]:
    async with open_client(server) as opened:  # the plugin's memories_client
        yield opened


async def statuses(server: FakeServer, video_no: str, count: int) -> list[int]:
    """The HTTP statuses of ``count`` audio requests for one video, in order."""
    found = []
    async with aiohttp.ClientSession(
        server.url, headers={"Authorization": server.api_key}
    ) as session:
        for _ in range(count):
            async with session.get(AUDIO, params={"video_no": video_no}) as response:
                await response.read()
                found.append(response.status)
    return found


@pytest.mark.asyncio
async def test_an_answer_for_a_new_video_is_served_exactly(
    server: FakeServer, client: MemoriesClient
) -> None:
    video = server.answer(
        NEW, kind="audio", segments=[(0, 2, " hello"), FakeSegment(2, 5, " there")]
    )

    transcript = await client.get_transcription(NEW, kind="audio")

    assert [(s.start, s.end, s.text) for s in transcript.segments] == [
        (0, 2, " hello"),
        (2, 5, " there"),
    ]
    assert video == server.library[NEW]
    assert video.status == "PARSE"
    assert video.unique_id == "default"


@pytest.mark.asyncio
async def test_an_answer_for_a_known_video_makes_it_ready_and_keeps_the_other_kind(
    server: FakeServer, client: MemoriesClient
) -> None:
    assert (await client.get_transcription(KNOWN, kind="visual")).is_empty  # not ready yet

    server.answer(KNOWN, kind="audio", segments=[(1, 3, " hi")])

    assert (await client.get_transcription(KNOWN, kind="audio")).text == "hi"
    assert (await client.get_transcription(KNOWN, kind="visual")).text == "a kitchen"
    assert server.library[KNOWN].status == "PARSE"


@pytest.mark.asyncio
@pytest.mark.parametrize("segments", [None, []])
async def test_no_speech_or_an_empty_transcript(
    server: FakeServer, client: MemoriesClient, segments: list[FakeSegment] | None
) -> None:
    server.answer(OTHER, kind="visual", segments=segments)

    assert server.library[OTHER].visual == (None if segments is None else ())
    assert (await client.get_transcription(OTHER, kind="visual")).is_empty


def test_an_answer_names_one_known_kind() -> None:
    server = FakeServer(FakeLibrary())

    with pytest.raises(ValueError, match="smell"):
        server.answer(NEW, kind="smell", segments=[])
    assert NEW not in server.library


@pytest.mark.asyncio
async def test_a_fault_for_some_times_then_the_answer(server: FakeServer) -> None:
    server.answer(NEW, kind="audio", segments=[(0, 1, " ok")])

    rule = server.fail(NEW, FaultKind.HTTP_503, times=2)

    assert await statuses(server, NEW, 4) == [503, 503, 200, 200]
    assert await statuses(server, OTHER, 1) == [200]
    assert rule == FaultRule(FaultKind.HTTP_503, video_nos={NEW}, first_attempts=2)
    assert server.faults == (rule,)


@pytest.mark.asyncio
async def test_a_fault_for_good_reaches_the_client(
    server: FakeServer, client: MemoriesClient
) -> None:
    server.fail(OTHER, "http_502")

    with pytest.raises(HTTPStatusError) as failed:
        await client.get_transcription(OTHER, kind="visual")

    assert failed.value.status == 502
    assert server.stats.requests_by_video[OTHER] > 1  # retried, failing every time
    await client.get_transcription(KNOWN, kind="visual")  # another video is not faulted


@pytest.mark.asyncio
async def test_a_scripted_fault_comes_first_and_keeps_the_other_rules_counts(
    server: FakeServer,
) -> None:
    server.faults = [
        FaultRule(FaultKind.HTTP_500, video_nos={OTHER}, first_attempts=1),
        FaultRule(FaultKind.HTTP_502, video_nos={NEW}),
    ]
    assert await statuses(server, OTHER, 1) == [500]

    server.fail(NEW, FaultKind.HTTP_503)

    assert await statuses(server, NEW, 1) == [503]
    # Assigning faults restarts the counts; the scripted rule kept this one's.
    assert await statuses(server, OTHER, 1) == [200]


def test_a_fault_needs_a_video_number() -> None:
    server = FakeServer(FakeLibrary())

    with pytest.raises(ValueError, match="non-empty"):
        server.fail("", FaultKind.HTTP_503)
    assert server.faults == ()
