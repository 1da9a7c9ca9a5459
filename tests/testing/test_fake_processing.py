"""Videos that finish processing, and videos that arrive, on the fake service's clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from memories_async import MemoriesClient, VideoStatus
from memories_async.testing import (
    FakeLibrary,
    FakeSegment,
    FakeServer,
    FakeServerOptions,
    FakeVideo,
    build_fake_server,
)
from memories_async.testing._options import command_line, options_from
from memories_async.testing._pytest_plugin import open_client

KNOWN = "VI500000000000000001"
NEW = "VI500000000000000002"


class Clock:
    """A clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest_asyncio.fixture
async def server(clock: Clock) -> AsyncIterator[FakeServer]:
    async with FakeServer(
        FakeLibrary([FakeVideo(KNOWN, visual=[FakeSegment(0, 5, "a street")])]), clock=clock
    ) as running:
        yield running


@pytest_asyncio.fixture
async def client(server: FakeServer) -> AsyncIterator[MemoriesClient]:
    async with open_client(server) as opened:
        yield opened


async def status(client: MemoriesClient, video_no: str) -> str | None:
    video = await client.get_metadata(video_no)
    return None if video is None else str(video.status)


@pytest.mark.asyncio
async def test_a_video_is_ready_once_its_time_has_come(
    server: FakeServer, client: MemoriesClient, clock: Clock
) -> None:
    server.processing(KNOWN, ready_after=5.0)
    assert server.scheduled == 1
    assert await status(client, KNOWN) == "UNPARSE"
    assert (await client.get_transcription(KNOWN)).is_empty
    clock.now += 4.9
    assert await status(client, KNOWN) == "UNPARSE"
    clock.now += 0.1
    assert await status(client, KNOWN) == "PARSE"
    assert server.scheduled == 0
    assert not (await client.get_transcription(KNOWN)).is_empty


@pytest.mark.asyncio
async def test_a_new_video_is_processed_with_a_generated_transcript_or_fails(
    server: FakeServer, client: MemoriesClient, clock: Clock
) -> None:
    server.processing(NEW, ready_after=1.0, then="PARSE_ERROR")
    listed = [v async for v in client.list_videos(status=VideoStatus.UNPARSE)]
    assert [v.video_no for v in listed] == [NEW]
    clock.now += 1.0
    assert await status(client, NEW) == "PARSE_ERROR"
    assert (await client.get_transcription(NEW)).is_empty


@pytest.mark.asyncio
async def test_videos_arrive_in_the_order_they_are_due(
    server: FakeServer, client: MemoriesClient, clock: Clock
) -> None:
    later = FakeVideo(NEW, create_time=2_000_000_000_000)
    now = FakeVideo("VI500000000000000003")
    server.add_video(later, after=10.0)
    server.add_video(now)
    assert NEW not in server.library
    assert now.video_no in server.library
    assert [v.video_no async for v in client.list_videos()] == [KNOWN, now.video_no]
    clock.now += 10.0
    assert [v.video_no async for v in client.list_videos()] == [NEW, KNOWN, now.video_no]


@pytest.mark.asyncio
async def test_a_change_of_a_removed_video_is_dropped(
    server: FakeServer, client: MemoriesClient, clock: Clock
) -> None:
    server.processing(KNOWN, ready_after=1.0)
    server.library.remove(KNOWN)
    clock.now += 1.0
    assert await status(client, KNOWN) is None
    assert server.scheduled == 0


def test_bad_schedules_are_refused() -> None:
    server = FakeServer(FakeLibrary([FakeVideo(KNOWN)]))
    with pytest.raises(ValueError, match="'ready_after' must be >= 0"):
        server.processing(KNOWN, ready_after=-1)
    with pytest.raises(ValueError, match="'then' must be a status word"):
        server.processing(KNOWN, ready_after=1, then="")
    with pytest.raises(ValueError, match="'after' must be >= 0"):
        server.add_video(FakeVideo(NEW), after=float("nan"))
    with pytest.raises(ValueError, match="already in the library"):
        server.add_video(FakeVideo(KNOWN), after=1)
    assert server.library[KNOWN].status == "PARSE"


@pytest.mark.asyncio
async def test_uploads_arrive_every_interval_and_are_processed(
    client: MemoriesClient, server: FakeServer, clock: Clock
) -> None:
    server.upload_every(10.0, processing=5.0)
    assert [v.video_no async for v in client.list_videos()] == [KNOWN]
    clock.now += 10.0
    first = "VI900000000000000001"
    assert [v.video_no async for v in client.list_videos()] == [first, KNOWN]
    assert await status(client, first) == "UNPARSE"
    clock.now += 15.0  # the first is processed; the second is uploaded, the third not yet
    listed = [v async for v in client.list_videos()]
    assert [(v.video_no, str(v.status)) for v in listed] == [
        ("VI900000000000000002", "UNPARSE"),
        (first, "PARSE"),
        (KNOWN, "PARSE"),
    ]
    clock.now += 25.0  # three more were due meanwhile (at 130, 140, 150): all come at once
    assert len([v async for v in client.list_videos()]) == 6
    with pytest.raises(ValueError, match="'seconds' must be > 0"):
        server.upload_every(0)


def test_the_options_script_processing_and_uploads() -> None:
    options = FakeServerOptions(videos=200, processing=30.0, arrivals=60.0)
    server = build_fake_server(options)
    pending = [v for v in server.library if v.status == "UNPARSE"]
    assert pending
    assert server.scheduled == len(pending) + 1  # each finishes, and the next upload
    assert options.to_argv()[-4:] == ["--processing", "30.0", "--arrivals", "60.0"]
    parsed = command_line().parse_args(["--processing", "30", "--arrivals", "60"])
    assert options_from(parsed).processing == 30.0
    with pytest.raises(ValueError, match="'arrivals' must be > 0"):
        FakeServerOptions(arrivals=0)
