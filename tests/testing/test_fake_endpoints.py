"""The fake answers every endpoint in the shapes of the live service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio

from memories_async.testing import (
    FakeLibrary,
    FakeSegment,
    FakeServer,
    FakeVideo,
    Generated,
    TranscriptShape,
    WireFormat,
)

PREFIX = "/serve/api/v1/"
READY = "VI100000000000000001"
PROCESSING = "VI100000000000000002"
SILENT = "VI100000000000000003"
OTHER_NS = "VI100000000000000004"
EMPTY = "VI100000000000000005"
PUBLIC = "PI-100000000000000006"
TRICKY_TEXT = 'He said, "stop" --> then\nleft. Zoë ☕'

SEGMENTS = (
    FakeSegment(0, 8, "Under a rocky overhang, three people are washing clothes."),
    FakeSegment(8, 8, TRICKY_TEXT),
    FakeSegment(12, 26, "A gap came before this one."),
)
SPEECH = (FakeSegment(0, 3, " Hello there."), FakeSegment(5, 9, " Bye."))


def small_library() -> FakeLibrary:
    return FakeLibrary(
        [
            FakeVideo(
                READY,
                video_name="clip.mp4",
                duration=653,
                size=169_612_362,
                create_time=1_755_245_460_412,
                visual=SEGMENTS,
                audio=SPEECH,
                tags=("travel",),
            ),
            FakeVideo(PROCESSING, status="UNPARSE", create_time=1, visual=SEGMENTS, audio=SPEECH),
            FakeVideo(SILENT, create_time=2, visual=SEGMENTS, audio=None),
            FakeVideo(OTHER_NS, unique_id="Holiday", create_time=3, visual=SEGMENTS),
            FakeVideo(EMPTY, create_time=4, visual=(), audio=()),
            FakeVideo(PUBLIC, visual=SEGMENTS, audio=SPEECH),
        ]
    )


@pytest_asyncio.fixture
async def server() -> AsyncIterator[FakeServer]:
    async with FakeServer(small_library()) as running:
        yield running


@pytest_asyncio.fixture
async def session(server: FakeServer) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": server.api_key}
    async with aiohttp.ClientSession(server.url, headers=headers) as client:
        yield client


async def get(session: aiohttp.ClientSession, endpoint: str, **params: str) -> Any:
    async with session.get(PREFIX + endpoint, params=params) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        return orjson.loads(await response.read())


async def post(session: aiohttp.ClientSession, endpoint: str, body: object) -> Any:
    async with session.post(PREFIX + endpoint, data=orjson.dumps(body)) as response:
        assert response.status == 200
        return orjson.loads(await response.read())


def live_segments(segments: tuple[FakeSegment, ...]) -> list[dict[str, Any]]:
    return [
        {"index": i, "content": s.text, "startTime": str(s.start), "endTime": str(s.end)}
        for i, s in enumerate(segments)
    ]


OK = {"code": "0000", "msg": "success", "success": True, "failed": False}


@pytest.mark.asyncio
@pytest.mark.parametrize("endpoint", ["get_video_transcription", "get_video_caption"])
async def test_visual_transcription_has_the_live_shape(
    session: aiohttp.ClientSession, endpoint: str
) -> None:
    answer = await get(session, endpoint, video_no=READY, unique_id="default")

    assert answer == {
        **OK,
        "data": {"videoNo": READY, "transcriptions": live_segments(SEGMENTS)},
    }


@pytest.mark.asyncio
async def test_audio_transcription_keeps_leading_spaces(session: aiohttp.ClientSession) -> None:
    answer = await get(session, "get_audio_transcription", video_no=READY)

    assert answer == {**OK, "data": {"videoNo": READY, "transcriptions": live_segments(SPEECH)}}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("endpoint", "video_no"),
    [
        ("get_video_transcription", PROCESSING),
        ("get_audio_transcription", PROCESSING),
        ("get_audio_transcription", SILENT),
        ("get_video_transcription", OTHER_NS),
        ("get_metadata", OTHER_NS),
        ("get_metadata", "VI999999999999999999"),
    ],
    ids=["unparsed", "unparsed-audio", "no-speech", "other-namespace", "meta-ns", "meta-unknown"],
)
async def test_not_ready_silent_or_foreign_videos_answer_null_data(
    session: aiohttp.ClientSession, endpoint: str, video_no: str
) -> None:
    answer = await get(session, endpoint, video_no=video_no)

    assert answer == {**OK, "data": None}


@pytest.mark.asyncio
async def test_an_empty_transcript_is_an_empty_list(session: aiohttp.ClientSession) -> None:
    answer = await get(session, "get_video_transcription", video_no=EMPTY)

    assert answer["data"] == {"videoNo": EMPTY, "transcriptions": []}


@pytest.mark.asyncio
async def test_namespaces_are_case_sensitive(session: aiohttp.ClientSession) -> None:
    found = await get(session, "get_video_transcription", video_no=OTHER_NS, unique_id="Holiday")
    missed = await get(session, "get_video_transcription", video_no=OTHER_NS, unique_id="holiday")

    assert found["data"]["videoNo"] == OTHER_NS
    assert missed["data"] is None


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"video_no": ""},
        {"video_no": "VI 12"},
        {"video_no": "x" * 65},
        {"video_no": READY, "unique_id": ""},
    ],
    ids=["missing", "empty", "space", "too-long", "empty-unique-id"],
)
@pytest.mark.parametrize("endpoint", ["get_video_transcription", "get_metadata"])
async def test_bad_parameters_answer_0003(
    session: aiohttp.ClientSession, endpoint: str, params: dict[str, str]
) -> None:
    answer = await get(session, endpoint, **params)

    assert answer["code"] == "0003"
    assert set(answer) == {"code", "msg"}


@pytest.mark.asyncio
async def test_public_endpoints_ignore_unique_id(session: aiohttp.ClientSession) -> None:
    answer = await get(session, "get_public_video_transcription", video_no=PUBLIC, unique_id="")

    assert answer["data"]["videoNo"] == PUBLIC


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("endpoint", "video_no"),
    [
        ("get_video_transcription", "VI999999999999999999"),
        ("get_audio_transcription", PUBLIC),
        ("get_public_video_transcription", READY),
        ("get_public_audio_transcription", "PI-999"),
    ],
)
async def test_unknown_videos_on_transcription_endpoints_answer_0001(
    session: aiohttp.ClientSession, endpoint: str, video_no: str
) -> None:
    answer = await get(session, endpoint, video_no=video_no)

    assert answer == {"code": "0001", "msg": "video not found"}


@pytest.mark.asyncio
@pytest.mark.parametrize("video_no", [None, "", "PI-1;drop"])
async def test_public_endpoints_check_the_number(
    session: aiohttp.ClientSession, video_no: str | None
) -> None:
    params = {} if video_no is None else {"video_no": video_no}

    answer = await get(session, "get_public_audio_transcription", **params)

    assert answer["code"] == "0003"


@pytest.mark.asyncio
async def test_public_endpoints_serve_pi_videos_without_unique_id(
    session: aiohttp.ClientSession,
) -> None:
    visual = await get(session, "get_public_video_transcription", video_no=PUBLIC)
    audio = await get(session, "get_public_audio_transcription", video_no=PUBLIC)

    assert visual["data"] == {"videoNo": PUBLIC, "transcriptions": live_segments(SEGMENTS)}
    assert audio["data"] == {"videoNo": PUBLIC, "transcriptions": live_segments(SPEECH)}


@pytest.mark.asyncio
async def test_metadata_has_snake_case_string_numbers(session: aiohttp.ClientSession) -> None:
    answer = await get(session, "get_metadata", video_no=READY, unique_id="default")

    assert answer == {
        **OK,
        "data": {
            "video_no": READY,
            "video_name": "clip.mp4",
            "status": "PARSE",
            "duration": "653",
            "size": "169612362",
            "create_time": "1755245460412",
            "cause": "null",
            "fps": "30",
            "width": "1920",
            "height": "1080",
        },
    }


@pytest.mark.asyncio
async def test_list_unique_ids(session: aiohttp.ClientSession) -> None:
    answer = await get(session, "list_unique_ids")

    assert answer == {**OK, "data": {"unique_ids": ["Holiday", "default"]}}


@pytest.mark.asyncio
async def test_list_videos_has_the_live_shape(session: aiohttp.ClientSession) -> None:
    answer = await post(session, "list_videos", {"page": 1, "size": 1, "unique_id": "default"})

    assert answer == {
        **OK,
        "data": {
            "videos": [
                {
                    "video_no": READY,
                    "video_name": "clip.mp4",
                    "status": "PARSE",
                    "duration": "653",
                    "size": "169612362",
                    "create_time": "1755245460412",
                    "cause": "null",
                }
            ],
            "current_page": 1,
            "page_size": 1,
            "total_count": "4",
        },
    }


@pytest.mark.asyncio
async def test_list_videos_pages_newest_first_and_ends_short(
    session: aiohttp.ClientSession,
) -> None:
    pages = [await post(session, "list_videos", {"page": page, "size": 3}) for page in (1, 2, 3)]

    numbers = [[v["video_no"] for v in page["data"]["videos"]] for page in pages]
    assert numbers == [[READY, EMPTY, SILENT], [PROCESSING], []]
    assert [page["data"]["current_page"] for page in pages] == [1, 2, 3]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"status": "UNPARSE"}, [PROCESSING]),
        ({"video_name": "CLIP"}, [READY]),
        ({"video_no": SILENT}, [SILENT]),
        ({"video_nos": [SILENT, READY, "VI0"]}, [READY, SILENT]),
        ({"video_nos": f"{SILENT},{EMPTY}"}, [EMPTY, SILENT]),
        ({"tag": "travel"}, [READY]),
        ({"status": "PARSE", "tag": "nope"}, []),
        ({"unique_id": "Holiday"}, [OTHER_NS]),
        ({"unique_id": "nobody"}, []),
    ],
)
async def test_list_videos_filters(
    session: aiohttp.ClientSession, filters: dict[str, Any], expected: list[str]
) -> None:
    answer = await post(session, "list_videos", {"page": 1, "size": 200, **filters})

    assert [v["video_no"] for v in answer["data"]["videos"]] == expected
    assert answer["data"]["total_count"] == str(len(expected))


@pytest.mark.asyncio
async def test_list_videos_defaults_page_and_size(session: aiohttp.ClientSession) -> None:
    answer = await post(session, "list_videos", {})

    assert answer["data"]["current_page"] == 1
    assert answer["data"]["page_size"] == 20


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "body",
    [
        {"page": 0, "size": 10},
        {"page": 1, "size": 201},
        {"page": 1, "size": 0},
        {"page": "one"},
        {"page": True},
        {"unique_id": ""},
        {"status": 3},
        {"video_nos": [1, 2]},
        [1, 2],
    ],
)
async def test_list_videos_rejects_bad_bodies(session: aiohttp.ClientSession, body: object) -> None:
    answer = await post(session, "list_videos", body)

    assert answer["code"] == "0003"


@pytest.mark.asyncio
async def test_list_videos_rejects_a_body_that_is_not_json(
    session: aiohttp.ClientSession,
) -> None:
    async with session.post(PREFIX + "list_videos", data=b"page=1") as response:
        answer = orjson.loads(await response.read())

    assert answer["code"] == "0003"


@pytest.mark.asyncio
async def test_list_videos_accepts_numbers_as_strings(session: aiohttp.ClientSession) -> None:
    answer = await post(session, "list_videos", {"page": "2", "size": "2"})

    assert [v["video_no"] for v in answer["data"]["videos"]] == [SILENT, PROCESSING]


@pytest.mark.asyncio
async def test_the_documented_shape_and_extra_fields(
    server: FakeServer, session: aiohttp.ClientSession
) -> None:
    server.wire_format = WireFormat(
        TranscriptShape.DOCUMENTED, numbers_as_strings=False, extra_fields=True
    )

    transcript = await get(session, "get_video_transcription", video_no=READY)
    listing = await post(session, "list_videos", {"page": 1, "size": 1})

    assert transcript["data"]["transcription"][1] == {
        "index": 1,
        "text": TRICKY_TEXT,
        "start": 8.0,
        "end": 8.0,
    }
    assert transcript["data"]["createTime"] == "1755245460412"
    assert {"video_bucket", "video_blob"} <= set(transcript["data"])
    video = listing["data"]["videos"][0]
    assert (video["duration"], video["size"], video["tags"]) == (653, 169_612_362, ["travel"])
    assert listing["data"]["total_count"] == 4


@pytest.mark.asyncio
async def test_error_flags_are_optional(server: FakeServer, session: aiohttp.ClientSession) -> None:
    server.wire_format = WireFormat(error_flags=True)

    answer = await get(session, "get_metadata")

    assert answer == {
        "code": "0003",
        "msg": answer["msg"],
        "data": None,
        "success": False,
        "failed": True,
    }


@pytest.mark.asyncio
async def test_library_changes_are_served_at_once(
    server: FakeServer, session: aiohttp.ClientSession
) -> None:
    before = await get(session, "get_video_transcription", video_no=PROCESSING)
    server.library.replace(PROCESSING, status="PARSE")
    after = await get(session, "get_video_transcription", video_no=PROCESSING)
    server.library.replace(PROCESSING, visual=[FakeSegment(1, 2, "changed")])
    changed = await get(session, "get_video_transcription", video_no=PROCESSING)

    assert before["data"] is None
    assert after["data"]["transcriptions"] == live_segments(SEGMENTS)
    assert changed["data"]["transcriptions"][0]["content"] == "changed"


@pytest.mark.asyncio
async def test_generated_transcripts_are_served_like_explicit_ones(
    session: aiohttp.ClientSession, server: FakeServer
) -> None:
    video = FakeVideo("VI100000000000000099", duration=1500, visual=Generated(7))
    server.library.add(video)

    answer = await get(session, "get_video_transcription", video_no=video.video_no)

    segments = video.segments("visual")
    assert segments is not None
    assert answer["data"]["transcriptions"] == live_segments(segments)
    times = [(int(s["startTime"]), int(s["endTime"])) for s in answer["data"]["transcriptions"]]
    assert all(start <= end <= 1500 for start, end in times)


@pytest.mark.asyncio
async def test_unknown_paths_and_wrong_methods_are_plain_http_errors(
    session: aiohttp.ClientSession,
) -> None:
    async with session.get(PREFIX + "no_such_endpoint") as missing:
        assert missing.status == 404
    async with session.get(PREFIX + "list_videos") as wrong_method:
        assert wrong_method.status == 405
