"""The converter: wire payloads (both transcript shapes, every quirk) to frozen models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from memories_async import DecodeError, Segment, Transcript, TranscriptKind, Video, VideoStatus
from memories_async._converter import (
    structure_transcript,
    structure_unique_ids,
    structure_video,
    structure_video_page,
)
from memories_async._protocol import parse_response

ASKED = "VI606041694843813888"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# --- strategies ----------------------------------------------------------------------------------

# Text as the service sends it: any non-surrogate characters, with commas, quotes and newlines
# made likely.
texts = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from([",", '"', "'", "\n", "\r", " ", "\t", "é", "中", "🎬", "\\"]),
    ),
    max_size=40,
)

SEGMENT_KEYS = {"index", "content", "startTime", "endTime", "text", "start", "end"}
DATA_KEYS = {"transcriptions", "transcription", "createTime", "create_time", "videoNo", "video_no"}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)


def junk(reserved: set[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Random extra fields, plus the ones newer answers are known to carry."""
    known = st.fixed_dictionaries(
        {},
        optional={
            "video_bucket": st.just("memories-prod-bucket"),
            "video_blob": texts,
            "success": st.booleans(),
            "score": st.floats(allow_nan=False, allow_infinity=False),
        },
    )
    extra = st.dictionaries(texts.filter(lambda k: k not in reserved), json_values, max_size=3)
    return st.builds(lambda a, b: {**b, **a}, known, extra)


live_segments = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=10**9),
        st.integers(min_value=0, max_value=10**6),
        st.integers(min_value=0, max_value=10**6),
        texts,
    ),
    max_size=15,
)

times = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)
documented_segments = st.lists(st.tuples(times, times, texts), max_size=15)
millis = st.integers(min_value=0, max_value=4_102_444_800_000)  # up to 2100


def from_millis(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def through_the_wire(data: Any) -> Any:
    """Send ``data`` in a real envelope through JSON and the protocol layer."""
    raw = orjson.dumps({"code": "0000", "msg": "success", "data": data, "success": True})
    return parse_response(200, {}, raw, endpoint="get_audio_transcription", video_no=ASKED)


# --- transcripts: property tests -----------------------------------------------------------------


@given(
    segments=live_segments,
    video_no=st.sampled_from([ASKED, "VI625685456915968000", "PI-606041694843813888"]),
    created=st.none() | millis,
    kind=st.sampled_from(TranscriptKind),
    top_junk=junk(DATA_KEYS),
    segment_junk=st.lists(junk(SEGMENT_KEYS), min_size=15, max_size=15),
    wire=st.booleans(),
)
def test_live_shape_round_trips(
    segments: list[tuple[int, int, int, str]],
    video_no: str,
    created: int | None,
    kind: TranscriptKind,
    top_junk: dict[str, Any],
    segment_junk: list[dict[str, Any]],
    wire: bool,
) -> None:
    data: dict[str, Any] = {
        **top_junk,
        "videoNo": video_no,
        "transcriptions": [
            {
                **segment_junk[position],
                "index": index,
                "content": text,
                "startTime": str(start),
                "endTime": str(end),
            }
            for position, (index, start, end, text) in enumerate(segments)
        ],
    }
    if created is not None:
        data["createTime"] = str(created)
    if wire:
        data = through_the_wire(data)

    transcript = structure_transcript(data, video_no=ASKED, kind=kind)

    assert transcript.video_no == video_no
    assert transcript.kind is kind
    assert transcript.segments == tuple(
        Segment(index, float(start), float(end), text) for index, start, end, text in segments
    )
    assert all(type(s.start) is float and type(s.end) is float for s in transcript.segments)
    assert all(type(s.index) is int for s in transcript.segments)
    assert transcript.created_at == (None if created is None else from_millis(created))


@given(
    segments=documented_segments,
    kind=st.sampled_from(TranscriptKind),
    top_junk=junk(DATA_KEYS),
    segment_junk=st.lists(junk(SEGMENT_KEYS), min_size=15, max_size=15),
    wire=st.booleans(),
)
def test_documented_shape_round_trips(
    segments: list[tuple[float, float, str]],
    kind: TranscriptKind,
    top_junk: dict[str, Any],
    segment_junk: list[dict[str, Any]],
    wire: bool,
) -> None:
    data: dict[str, Any] = {
        **top_junk,
        "transcription": [
            {**segment_junk[position], "text": text, "start": start, "end": end}
            for position, (start, end, text) in enumerate(segments)
        ],
    }
    if wire:
        data = through_the_wire(data)

    transcript = structure_transcript(data, video_no=ASKED, kind=kind)

    assert transcript.video_no == ASKED
    assert transcript.kind is kind
    assert transcript.segments == tuple(
        Segment(position, start, end, text) for position, (start, end, text) in enumerate(segments)
    )
    assert transcript.created_at is None


LIVE_FIELDS = ["index", "content", "startTime", "endTime"]
BAD_VALUES: dict[str, list[Any]] = {
    "index": ["abc", "", None, True, 1.5, [0], {}],
    "content": [True, [1], {"a": 1}],
    "startTime": ["abc", "", None, True, [0], {}],
    "endTime": ["1:20", "", None, False, [0], {}],
}


@given(
    segments=live_segments.filter(bool),
    data=st.data(),
)
def test_wrong_type_names_the_live_wire_field(
    segments: list[tuple[int, int, int, str]], data: st.DataObject
) -> None:
    items: list[dict[str, Any]] = [
        {"index": i, "content": t, "startTime": str(s), "endTime": str(e)}
        for i, s, e, t in segments
    ]
    position = data.draw(st.integers(min_value=0, max_value=len(items) - 1))
    field = data.draw(st.sampled_from(LIVE_FIELDS))
    bad = data.draw(st.sampled_from(BAD_VALUES[field]))
    items[position][field] = bad

    with pytest.raises(DecodeError) as info:
        structure_transcript(
            {"videoNo": ASKED, "transcriptions": items}, video_no=ASKED, kind=TranscriptKind.AUDIO
        )
    assert info.value.field == f"$.transcriptions[{position}].{field}"
    assert not info.value.retryable
    assert info.value.field in str(info.value)
    assert "\n" not in str(info.value)


# --- transcripts: examples -----------------------------------------------------------------------

LIVE_EXAMPLE = {
    "videoNo": ASKED,
    "transcriptions": [
        {
            "index": 0,
            "content": "Under a rocky overhang, three people are washing clothes.",
            "startTime": "0",
            "endTime": "8",
        },
        {"index": 1, "content": " And then,", "startTime": "26", "endTime": "26"},
    ],
}


def test_live_example() -> None:
    transcript = structure_transcript(LIVE_EXAMPLE, video_no=ASKED, kind=TranscriptKind.VISUAL)
    assert transcript == Transcript(
        video_no=ASKED,
        kind=TranscriptKind.VISUAL,
        segments=(
            Segment(0, 0.0, 8.0, "Under a rocky overhang, three people are washing clothes."),
            Segment(1, 26.0, 26.0, " And then,"),
        ),
    )


@pytest.mark.parametrize(
    "data",
    [
        None,
        "null",
        "",
        {},
        {"videoNo": ASKED},
        {"transcriptions": []},
        {"transcriptions": None},
        {"transcription": []},
        {"transcription": None},
        {"transcriptions": None, "transcription": None},
    ],
    ids=repr,
)
def test_nothing_to_give_is_empty_transcript(data: Any) -> None:
    transcript = structure_transcript(data, video_no=ASKED, kind=TranscriptKind.AUDIO)
    assert transcript == Transcript(video_no=ASKED, kind=TranscriptKind.AUDIO)
    assert transcript.is_empty


def test_answered_video_no_is_kept() -> None:
    transcript = structure_transcript(
        {"videoNo": "VI2", "transcriptions": []}, video_no="VI1", kind=TranscriptKind.AUDIO
    )
    assert transcript.video_no == "VI2"


@pytest.mark.parametrize("answered", [None, "", 5])
def test_unusable_answered_video_no_falls_back_to_asked(answered: Any) -> None:
    transcript = structure_transcript(
        {"videoNo": answered, "transcriptions": []}, video_no="VI1", kind=TranscriptKind.AUDIO
    )
    assert transcript.video_no == "VI1"


def test_snake_case_video_no_accepted() -> None:
    transcript = structure_transcript(
        {"video_no": "VI2", "transcriptions": []}, video_no="VI1", kind=TranscriptKind.AUDIO
    )
    assert transcript.video_no == "VI2"


def test_live_shape_takes_precedence_over_documented() -> None:
    data = {
        "transcriptions": [{"index": 0, "content": "live", "startTime": "1", "endTime": "2"}],
        "transcription": [{"text": "documented", "start": 5.0, "end": 6.0}],
    }
    transcript = structure_transcript(data, video_no=ASKED, kind=TranscriptKind.AUDIO)
    assert transcript.segments == (Segment(0, 1.0, 2.0, "live"),)


def test_documented_shape_with_index_keeps_it() -> None:
    data = {"transcription": [{"index": 7, "text": "a", "start": 1.5, "end": 2.25}]}
    transcript = structure_transcript(data, video_no=ASKED, kind=TranscriptKind.AUDIO)
    assert transcript.segments == (Segment(7, 1.5, 2.25, "a"),)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("26", "30", (26.0, 30.0)),
        (" 26 ", "30\n", (26.0, 30.0)),
        ("1.5", "2.25", (1.5, 2.25)),
        (3, 4.5, (3.0, 4.5)),
    ],
)
def test_time_coercion(start: Any, end: Any, expected: tuple[float, float]) -> None:
    data = {"transcriptions": [{"index": "0", "content": "x", "startTime": start, "endTime": end}]}
    (segment,) = structure_transcript(data, video_no=ASKED, kind=TranscriptKind.AUDIO).segments
    assert (segment.start, segment.end) == expected
    assert segment.index == 0


@pytest.mark.parametrize(("content", "text"), [(None, ""), (5, "5"), ("", "")])
def test_content_coercion(content: Any, text: str) -> None:
    data = {"transcriptions": [{"index": 0, "content": content, "startTime": "0", "endTime": "1"}]}
    (segment,) = structure_transcript(data, video_no=ASKED, kind=TranscriptKind.AUDIO).segments
    assert segment.text == text


@pytest.mark.parametrize("value", ["NaN", "inf", "-Infinity"])
def test_non_finite_time_refused(value: str) -> None:
    data = {"transcriptions": [{"index": 0, "content": "x", "startTime": value, "endTime": "1"}]}
    with pytest.raises(DecodeError) as info:
        structure_transcript(data, video_no=ASKED, kind=TranscriptKind.AUDIO)
    assert info.value.field == "$.transcriptions[0].startTime"


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"index": 0, "content": "x", "endTime": "1"}, "$.transcriptions[0].startTime"),
        ({"index": 0, "content": "x", "startTime": "1"}, "$.transcriptions[0].endTime"),
    ],
)
def test_missing_live_field_named(item: dict[str, Any], field: str) -> None:
    with pytest.raises(DecodeError) as info:
        structure_transcript({"transcriptions": [item]}, video_no=ASKED, kind=TranscriptKind.AUDIO)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"text": "x", "start": "soon", "end": 1.0}, "$.transcription[0].start"),
        ({"text": "x", "start": 0.0}, "$.transcription[0].end"),
        ({"text": ["x"], "start": 0.0, "end": 1.0}, "$.transcription[0].text"),
    ],
)
def test_documented_shape_field_named(item: dict[str, Any], field: str) -> None:
    with pytest.raises(DecodeError) as info:
        structure_transcript({"transcription": [item]}, video_no=ASKED, kind=TranscriptKind.AUDIO)
    assert info.value.field == field


def test_wrong_type_at_index_three() -> None:
    items = [
        {"index": i, "content": "x", "startTime": str(i), "endTime": str(i + 1)} for i in range(5)
    ]
    items[3]["startTime"] = "three"
    with pytest.raises(DecodeError) as info:
        structure_transcript({"transcriptions": items}, video_no=ASKED, kind=TranscriptKind.VISUAL)
    assert info.value.field == "$.transcriptions[3].startTime"


@pytest.mark.parametrize("item", ["text", 5, None, [1, 2]], ids=repr)
def test_segment_that_is_not_an_object(item: Any) -> None:
    with pytest.raises(DecodeError) as info:
        structure_transcript({"transcriptions": [item]}, video_no=ASKED, kind=TranscriptKind.AUDIO)
    assert info.value.field is not None
    assert info.value.field.startswith("$.transcriptions[0]")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"transcriptions": "not a list"}, "$.transcriptions"),
        ({"transcriptions": {"0": {}}}, "$.transcriptions"),
        ({"transcriptions": 3}, "$.transcriptions"),
        ({"transcription": "x"}, "$.transcription"),
    ],
)
def test_non_list_transcriptions_refused(data: dict[str, Any], field: str) -> None:
    with pytest.raises(DecodeError) as info:
        structure_transcript(data, video_no=ASKED, kind=TranscriptKind.AUDIO)
    assert info.value.field == field
    assert not info.value.retryable


@pytest.mark.parametrize("data", [[1, 2], 5, "abc", True], ids=repr)
def test_data_that_is_not_an_object_refused(data: Any) -> None:
    with pytest.raises(DecodeError) as info:
        structure_transcript(data, video_no=ASKED, kind=TranscriptKind.AUDIO)
    assert info.value.field == "$"


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        ("1755245460412", datetime(2025, 8, 15, 8, 11, 0, 412000, tzinfo=UTC)),
        (1755245460412, datetime(2025, 8, 15, 8, 11, 0, 412000, tzinfo=UTC)),
        ("0", EPOCH),
        ("null", None),
        (None, None),
        ("", None),
        ("2025-08-15T08:11:00", datetime(2025, 8, 15, 8, 11, tzinfo=UTC)),
        (
            "2025-08-15T10:11:00+02:00",
            datetime(2025, 8, 15, 10, 11, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_create_time(created: Any, expected: datetime | None) -> None:
    transcript = structure_transcript(
        {"transcriptions": [], "createTime": created}, video_no=ASKED, kind=TranscriptKind.AUDIO
    )
    assert transcript.created_at == expected
    if expected is not None:
        assert transcript.created_at is not None
        assert transcript.created_at.tzinfo is not None
        assert transcript.created_at.utcoffset() == expected.utcoffset()


def test_create_time_snake_case_accepted() -> None:
    transcript = structure_transcript(
        {"transcriptions": [], "create_time": "1755245460412"},
        video_no=ASKED,
        kind=TranscriptKind.AUDIO,
    )
    assert transcript.created_at == datetime(2025, 8, 15, 8, 11, 0, 412000, tzinfo=UTC)


@pytest.mark.parametrize("created", ["yesterday", True, [1]], ids=repr)
def test_bad_create_time_refused(created: Any) -> None:
    with pytest.raises(DecodeError):
        structure_transcript(
            {"transcriptions": [], "createTime": created},
            video_no=ASKED,
            kind=TranscriptKind.AUDIO,
        )


def test_bad_create_time_names_the_field() -> None:
    with pytest.raises(DecodeError) as info:
        structure_transcript(
            {"transcriptions": [], "createTime": "yesterday"},
            video_no=ASKED,
            kind=TranscriptKind.AUDIO,
        )
    assert info.value.field == "$.createTime"


# --- videos --------------------------------------------------------------------------------------

LISTED = {
    "video_no": "VI625685456915968000",
    "video_name": "clip.mp4",
    "status": "PARSE",
    "duration": "653",
    "size": "169612362",
    "create_time": "1755245460412",
    "cause": "null",
}


def test_video_with_strings_for_numbers() -> None:
    assert structure_video(LISTED) == Video(
        video_no="VI625685456915968000",
        status=VideoStatus.PARSE,
        name="clip.mp4",
        duration=653.0,
        size=169612362,
        created_at=datetime(2025, 8, 15, 8, 11, 0, 412000, tzinfo=UTC),
        cause=None,
    )


def test_video_with_numbers_and_metadata_fields() -> None:
    data = {
        **LISTED,
        "duration": 653.5,
        "size": 169612362,
        "create_time": 1755245460412,
        "cause": None,
        "fps": "29.97",
        "width": "1920",
        "height": 1080,
        "video_bucket": "bucket",
        "somethingNew": {"nested": [1, 2]},
    }
    video = structure_video(data)
    assert video is not None
    assert video.duration == 653.5
    assert video.size == 169612362
    assert type(video.size) is int
    assert video.fps == 29.97
    assert video.width == 1920
    assert video.height == 1080
    assert video.created_at == datetime(2025, 8, 15, 8, 11, 0, 412000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cause", "expected"),
    [("null", None), ("None", None), ("", None), (None, None), ("decode failed", "decode failed")],
)
def test_video_cause(cause: Any, expected: str | None) -> None:
    video = structure_video({**LISTED, "status": "FAILED", "cause": cause})
    assert video is not None
    assert video.cause == expected
    assert video.status.is_failed


@pytest.mark.parametrize(
    ("wire", "status"),
    [
        ("PARSE", VideoStatus.PARSE),
        ("parse", VideoStatus.PARSE),
        (" UNPARSE ", VideoStatus.UNPARSE),
        ("PARSE_ERROR", VideoStatus.PARSE_ERROR),
        ("FAIL", VideoStatus.FAIL),
        ("FAILED", VideoStatus.FAILED),
    ],
)
def test_video_known_statuses(wire: str, status: VideoStatus) -> None:
    video = structure_video({**LISTED, "status": wire})
    assert video is not None
    assert video.status is status
    assert video.status.is_known


def test_video_unknown_status_kept() -> None:
    video = structure_video({**LISTED, "status": "REVIEWING"})
    assert video is not None
    assert isinstance(video.status, VideoStatus)
    assert video.status == "REVIEWING"
    assert not video.status.is_known
    assert not video.status.is_ready
    assert not video.status.is_failed


def test_video_minimal() -> None:
    assert structure_video({"video_no": "VI1", "status": "UNPARSE"}) == Video(
        video_no="VI1", status=VideoStatus.UNPARSE
    )


@pytest.mark.parametrize("data", [None, "null", ""], ids=repr)
def test_unknown_video_is_none(data: Any) -> None:
    assert structure_video(data) is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"duration": "long"}, "$.duration"),
        ({"size": "big"}, "$.size"),
        ({"video_no": None}, "$.video_no"),
        ({"video_no": ["VI1"]}, "$.video_no"),
        ({"status": None}, "$.status"),
        ({"width": 12.5}, "$.width"),
    ],
)
def test_video_bad_field_named(change: dict[str, Any], field: str) -> None:
    with pytest.raises(DecodeError) as info:
        structure_video({**LISTED, **change})
    assert info.value.field == field
    assert not info.value.retryable


@pytest.mark.parametrize("missing", ["video_no", "status"])
def test_video_missing_required_field(missing: str) -> None:
    data = {k: v for k, v in LISTED.items() if k != missing}
    with pytest.raises(DecodeError) as info:
        structure_video(data)
    assert info.value.field == f"$.{missing}"


@pytest.mark.parametrize(
    ("change", "field"),
    [({"video_name": ["x"]}, "$.video_name"), ({"create_time": "soon"}, "$.create_time")],
)
def test_video_renamed_field_named_by_wire_name(change: dict[str, Any], field: str) -> None:
    with pytest.raises(DecodeError) as info:
        structure_video({**LISTED, **change})
    assert info.value.field == field


def test_fractional_size_string_refused() -> None:
    with pytest.raises(DecodeError):
        structure_video({**LISTED, "size": "1.5"})


def test_fractional_size_number_refused() -> None:
    with pytest.raises(DecodeError):
        structure_video({**LISTED, "size": 1.5})


def test_whole_float_size_accepted() -> None:
    video = structure_video({**LISTED, "size": 2.0, "width": "1920.0"})
    assert video is not None
    assert video.size == 2
    assert video.width == 1920


# --- video pages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "expected"), [("1", 1), (1, 1), ("  12 ", 12), ("null", None), (None, None)]
)
def test_video_page_total_count(total: Any, expected: int | None) -> None:
    videos, count = structure_video_page(
        {"videos": [LISTED], "current_page": 1, "page_size": 200, "total_count": total}
    )
    assert count == expected
    assert [v.video_no for v in videos] == ["VI625685456915968000"]


def test_video_page_total_count_missing() -> None:
    assert structure_video_page({"videos": []}) == ([], None)


@pytest.mark.parametrize("videos", [None, "null", []], ids=repr)
def test_video_page_without_videos(videos: Any) -> None:
    assert structure_video_page({"videos": videos, "total_count": "0"}) == ([], 0)


def test_video_page_without_videos_key() -> None:
    assert structure_video_page({"total_count": 3}) == ([], 3)


@pytest.mark.parametrize("data", [None, "null"], ids=repr)
def test_video_page_null_data(data: Any) -> None:
    assert structure_video_page(data) == ([], 0)


def test_video_page_keeps_order_and_every_video() -> None:
    items = [{**LISTED, "video_no": f"VI{i}"} for i in range(5)]
    videos, count = structure_video_page({"videos": items, "total_count": 5})
    assert [v.video_no for v in videos] == [f"VI{i}" for i in range(5)]
    assert count == 5


def test_video_page_bad_item_named() -> None:
    items = [LISTED, {**LISTED, "duration": "x"}]
    with pytest.raises(DecodeError) as info:
        structure_video_page({"videos": items})
    assert info.value.field == "$.videos[1].duration"


@pytest.mark.parametrize("data", [[LISTED], 5, "abc"], ids=repr)
def test_video_page_data_not_an_object(data: Any) -> None:
    with pytest.raises(DecodeError) as info:
        structure_video_page(data)
    assert info.value.field == "$"


def test_video_page_bad_total_count_refused() -> None:
    with pytest.raises(DecodeError):
        structure_video_page({"videos": [], "total_count": "many"})


def test_video_page_bad_total_count_named() -> None:
    with pytest.raises(DecodeError) as info:
        structure_video_page({"videos": [], "total_count": "many"})
    assert info.value.field == "$.total_count"


# --- unique ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"unique_ids": ["default", "holiday_2025"]}, ("default", "holiday_2025")),
        ({"unique_ids": []}, ()),
        ({"unique_ids": None}, ()),
        ({"unique_ids": "null"}, ()),
        ({}, ()),
        (None, ()),
        ("null", ()),
        (["default", "x"], ("default", "x")),
        ({"unique_ids": ["a", 5]}, ("a", "5")),
        ({"unique_ids": ["default"], "extra": 1}, ("default",)),
    ],
    ids=repr,
)
def test_unique_ids(data: Any, expected: tuple[str, ...]) -> None:
    assert structure_unique_ids(data) == expected


def test_unique_ids_bad_item_named() -> None:
    with pytest.raises(DecodeError) as info:
        structure_unique_ids({"unique_ids": ["default", None]})
    assert info.value.field == "$.unique_ids[1]"


@pytest.mark.parametrize("value", ["default", {"default": 1}], ids=repr)
def test_unique_ids_not_a_list_refused(value: Any) -> None:
    with pytest.raises(DecodeError) as info:
        structure_unique_ids({"unique_ids": value})
    assert info.value.field == "$.unique_ids"


# --- the fast twin of the JSON-line export -------------------------------------------------------
# (that it reads as structure_transcript does: tests/test_fast_paths.py)


@pytest.mark.parametrize("data", [None, [], "x", {"transcriptions": None}, {"segments": []}])
def test_live_rows_leave_other_shapes_to_structure_transcript(data: Any) -> None:
    from memories_async._converter import live_rows

    assert live_rows(data, video_no=ASKED) is None


@pytest.mark.parametrize("time", ["1e300", 1e300, -2e9, "1e10"])
def test_an_absurd_time_is_a_decode_error_naming_the_field(time: Any) -> None:
    # A time of 1e300 seconds would make a 620-character subtitle timestamp.
    from memories_async._converter import live_rows

    data = {"transcriptions": [{"index": 0, "content": "x", "startTime": "0", "endTime": time}]}
    assert live_rows(data, video_no=ASKED) is None
    with pytest.raises(DecodeError, match=r"\$\.transcriptions\[0\]\.endTime"):
        structure_transcript(data, video_no=ASKED, kind=TranscriptKind.VISUAL)
    fine = {"transcriptions": [{"index": 0, "content": "x", "startTime": "0", "endTime": 9.9e8}]}
    assert structure_transcript(fine, video_no=ASKED, kind=TranscriptKind.VISUAL).duration == 9.9e8


@pytest.mark.parametrize(
    ("items", "field"),
    [
        (
            [
                {"index": 0, "content": "a", "startTime": "1", "endTime": "2"},
                {"text": "b", "start": "x", "end": 2},
            ],
            "$.transcriptions[1].start",
        ),
        (
            [
                {"text": "b", "start": 1, "end": 2},
                {"index": 1, "content": "a", "startTime": "x", "endTime": "2"},
            ],
            "$.transcriptions[1].startTime",
        ),
    ],
)
def test_a_field_is_named_in_the_shape_of_its_own_segment(
    items: list[dict[str, Any]], field: str
) -> None:
    # Each segment is read in its own shape; the error names the field as that segment
    # spells it, not as the first segment of the list does.
    with pytest.raises(DecodeError) as info:
        structure_transcript({"transcriptions": items}, video_no=ASKED, kind=TranscriptKind.VISUAL)
    assert info.value.field == field


def test_a_time_too_large_for_a_float_is_a_decode_error() -> None:
    # float() raises OverflowError, not ValueError, for an integer beyond any float.
    data = {"transcriptions": [{"index": 0, "content": "x", "startTime": 10**400, "endTime": 1}]}
    with pytest.raises(DecodeError, match=r"\$\.transcriptions\[0\]\.startTime"):
        structure_transcript(data, video_no=ASKED, kind=TranscriptKind.VISUAL)
