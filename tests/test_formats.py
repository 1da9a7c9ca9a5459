"""Tests of the export renderers: SubRip, WebVTT, text, JSONL and CSV."""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
import srt
import webvtt
from hypothesis import given, settings
from hypothesis import strategies as st

from memories_async._formats import (
    CSV_HEADER,
    CSV_LINE_TERMINATOR,
    INSTANT_CUE_DURATION,
    JSONL_SCHEMA_VERSION,
    ExportFormat,
    csv_rows,
    format_timestamp,
    jsonl_record,
    to_csv,
    to_jsonl_line,
    to_srt,
    to_txt,
    to_vtt,
    transcript_from_jsonl_record,
)
from memories_async._models import Segment, Transcript, TranscriptKind

property_test = settings(deadline=None)

HOSTILE_PIECES = [
    "-->",
    "--->",
    "- >",
    "\n",
    "\r\n",
    "\r",
    "\n\n",
    "\r\n\r\n",
    " ",
    "\t",
    "\x00",
    "\x1c",
    "\x85",
    "\u2028",
    "\u2029",
    "\u00a0",
    "<",
    ">",
    "&",
    "&amp;",
    "<i>",
    "</b>",
    "é",
    "日本語",
    "😀",
    "👩\u200d👩\u200d👧",
    "5",
    "-3",
    "12.",
    "12:00:00,000",
    "00:00:01,000 --> 00:00:02,000",
    "00:00:01.000 --> 00:00:02.000",
    "NOTE",
    "WEBVTT",
    '"',
    ",",
]

texts = st.lists(st.sampled_from(HOSTILE_PIECES) | st.text(max_size=8), max_size=10).map("".join)
# Exact millisecond times as floats, whole seconds as the service sends, and a few negatives.
times = (
    st.integers(0, 400_000_000).map(lambda ms: ms / 1000)
    | st.integers(0, 400_000).map(float)
    | st.integers(-5000, -1).map(lambda ms: ms / 1000)
)


@st.composite
def segments(draw: st.DrawFn, index: int) -> Segment:
    start = draw(times)
    shape = draw(st.sampled_from(["same", "later", "earlier", "any"]))
    if shape == "same":
        end_time = start
    elif shape == "later":
        end_time = start + draw(st.integers(1, 60_000)) / 1000
    elif shape == "earlier":
        end_time = start - draw(st.integers(1, 60_000)) / 1000
    else:
        end_time = draw(times)
    return Segment(index=index, start=start, end=end_time, text=draw(texts))


@st.composite
def transcripts(draw: st.DrawFn) -> Transcript:
    count = draw(st.integers(0, 12))
    return Transcript(
        video_no=draw(st.sampled_from(["VI606041694843813888", "PI-1"]) | st.text(max_size=12)),
        kind=draw(st.sampled_from(TranscriptKind)),
        segments=tuple(draw(segments(i)) for i in range(count)),
        created_at=draw(
            st.none()
            | st.datetimes(timezones=st.none() | st.just(UTC))
            | st.datetimes(
                timezones=st.integers(-1439, 1439).map(lambda m: timezone(timedelta(minutes=m)))
            )
        ),
    )


def expected_lines(text: str) -> list[str]:
    """The documented text normalization, written independently of the module."""
    lines = []
    for raw in text.splitlines():
        line = "".join(" " if unicodedata.category(c) == "Cc" else c for c in raw).strip()
        if line:
            lines.append(line)
    return lines


def expected_ms(seconds: float) -> int:
    """Milliseconds of a time drawn by ``times``, clamped at zero."""
    return max(0, round(seconds * 1000))


def expected_cues(transcript: Transcript) -> list[tuple[int, int, list[str]]]:
    cues = []
    for segment in transcript.segments:
        lines = expected_lines(segment.text)
        if not lines:
            continue
        start, end = expected_ms(segment.start), expected_ms(segment.end)
        if end <= start:
            end = start + round(INSTANT_CUE_DURATION * 1000)
        cues.append((start, end, lines))
    return sorted(cues, key=lambda cue: cue[0])


def vtt_unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def transcript(*segments: Segment, video_no: str = "VI1") -> Transcript:
    return Transcript(video_no=video_no, kind=TranscriptKind.AUDIO, segments=segments)


# format_timestamp


@pytest.mark.parametrize(
    ("seconds", "sep", "expected"),
    [
        (0, ",", "00:00:00,000"),
        (0.0, ".", "00:00:00.000"),
        (26, ",", "00:00:26,000"),
        (1.5, ".", "00:00:01.500"),
        (1.9995, ",", "00:00:02,000"),
        (1.9994, ",", "00:00:01,999"),
        (0.0005, ",", "00:00:00,001"),
        (0.0004999, ",", "00:00:00,000"),
        (59.9995, ",", "00:01:00,000"),
        (3599.9995, ".", "01:00:00.000"),
        (259.0395, ",", "00:04:19,040"),
        (86399.999, ",", "23:59:59,999"),
        (359999.9996, ",", "100:00:00,000"),
        (400000, ",", "111:06:40,000"),
    ],
)
def test_format_timestamp(seconds: float, sep: str, expected: str) -> None:
    assert format_timestamp(seconds, sep=sep) == expected


@pytest.mark.parametrize("seconds", [-0.001, -1.0, math.nan, math.inf, -math.inf])
def test_format_timestamp_rejects_times_outside_the_clock(seconds: float) -> None:
    with pytest.raises(ValueError, match="'seconds' must be a finite number >= 0"):
        format_timestamp(seconds, sep=",")


@pytest.mark.parametrize("sep", ["", ":", ";", ",,"])
def test_format_timestamp_rejects_unknown_separators(sep: str) -> None:
    with pytest.raises(ValueError, match="'sep' must be ','"):
        format_timestamp(1.0, sep=sep)


@property_test
@given(st.floats(min_value=0, max_value=1e7), st.sampled_from([",", "."]))
def test_format_timestamp_fields_stay_in_range(seconds: float, sep: str) -> None:
    match = re.fullmatch(r"(\d{2,}):(\d{2}):(\d{2})[,.](\d{3})", format_timestamp(seconds, sep=sep))
    assert match is not None
    hours, minutes, secs, millis = (int(g) for g in match.groups())
    assert minutes < 60
    assert secs < 60
    total = hours * 3600 + minutes * 60 + secs + millis / 1000
    assert abs(total - seconds) <= 0.0005 + 1e-9 * max(1.0, seconds)


@property_test
@given(st.integers(0, 10**12), st.sampled_from([",", "."]))
def test_format_timestamp_is_exact_on_milliseconds(ms: int, sep: str) -> None:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    expected = f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{millis:03d}"
    assert format_timestamp(ms / 1000, sep=sep) == expected


# SubRip


def test_srt_layout() -> None:
    t = transcript(
        Segment(0, 0.0, 8.0, " Under a rocky overhang, three people wash clothes."),
        Segment(1, 8.0, 12.5, "Second\r\n\r\n line"),
    )
    assert to_srt(t) == (
        "1\n00:00:00,000 --> 00:00:08,000\nUnder a rocky overhang, three people wash clothes.\n\n"
        "2\n00:00:08,000 --> 00:00:12,500\nSecond\nline\n\n"
    )


def test_srt_of_an_empty_transcript_is_empty() -> None:
    assert to_srt(transcript()) == ""
    assert list(srt.parse(to_srt(transcript()))) == []


def test_srt_skips_empty_text_and_keeps_numbering() -> None:
    t = transcript(Segment(0, 0, 1, "a"), Segment(1, 1, 2, " \r\n\t"), Segment(2, 2, 3, "b"))
    subs = list(srt.parse(to_srt(t)))
    assert [(s.index, s.content) for s in subs] == [(1, "a"), (2, "b")]


@pytest.mark.parametrize(
    ("start", "end", "expected_end"),
    [
        (26.0, 26.0, "00:00:27,000"),
        (26.0, 20.0, "00:00:27,000"),
        (1.0001, 1.0004, "00:00:02,000"),
        (-3.0, -1.0, "00:00:01,000"),
    ],
)
def test_srt_lengthens_cues_that_do_not_end_after_their_start(
    start: float, end: float, expected_end: str
) -> None:
    text = to_srt(transcript(Segment(0, start, end, "x")))
    assert text.splitlines()[1].endswith(f"--> {expected_end}")


def test_srt_neutralizes_arrows_and_number_lines() -> None:
    t = transcript(
        Segment(0, 0, 1, "a --> b ---> c"),
        Segment(1, 1, 2, "score\n3\n12:00:00,000 --> 12:00:01,000"),
    )
    subs = list(srt.parse(to_srt(t)))
    assert [s.content for s in subs] == ["a -> b -> c", "score\n3 12:00:00,000 -> 12:00:01,000"]


def test_srt_sorts_cues_by_start() -> None:
    t = transcript(Segment(0, 5, 6, "late"), Segment(1, 1, 2, "early"), Segment(2, 5, 7, "tie"))
    assert [s.content for s in srt.parse(to_srt(t))] == ["early", "late", "tie"]


@pytest.mark.parametrize(
    "render",
    [to_srt, to_vtt, to_txt, jsonl_record, to_jsonl_line, csv_rows],
    ids=lambda fn: fn.__name__,
)
@pytest.mark.parametrize(("start", "end"), [(0.0, math.nan), (math.inf, 1.0), (-math.inf, 1.0)])
def test_renderers_reject_non_finite_times(
    render: Callable[[Transcript], object], start: float, end: float
) -> None:
    with pytest.raises(ValueError, match="segment 7 of video 'VI1' has a time that is not"):
        render(transcript(Segment(7, start, end, "x")))


@property_test
@given(transcripts())
def test_srt_parses_back_with_the_documented_normalization(t: Transcript) -> None:
    output = to_srt(t)
    subs = list(srt.parse(output))
    cues = expected_cues(t)
    assert len(subs) == len(cues)
    for number, (sub, (start, end, lines)) in enumerate(zip(subs, cues, strict=True), start=1):
        assert sub.index == number
        assert sub.start == timedelta(milliseconds=start)
        assert sub.end == timedelta(milliseconds=end)
        assert sub.end > sub.start
        assert sub.proprietary == ""
        content_lines = sub.content.split("\n")
        assert all(content_lines)
        assert "-->" not in sub.content
        assert not any(re.fullmatch(r"-?[0-9]+\.?[0-9]*", line) for line in content_lines[:-1])
        assert " ".join(content_lines) == " ".join(re.sub("--+>", "->", ln) for ln in lines)
    assert output == "" or output.endswith("\n\n")


# WebVTT


def test_vtt_layout() -> None:
    t = transcript(Segment(0, 0.0, 8.0, " Fish & <chips> --> now"), video_no="VI606041694843813888")
    assert to_vtt(t) == (
        "WEBVTT\n\n"
        "NOTE audio transcript of video VI606041694843813888\n\n"
        "00:00:00.000 --> 00:00:08.000\nFish &amp; &lt;chips&gt; --&gt; now\n\n"
    )


def test_vtt_note_survives_a_hostile_video_number() -> None:
    output = to_vtt(transcript(Segment(0, 0, 1, "x"), video_no="A -->\n\nB"))
    assert "NOTE audio transcript of video A -> B\n\n" in output
    assert output.count("-->") == 1
    assert to_vtt(transcript(video_no=" ")) == "WEBVTT\n\nNOTE audio transcript\n\n"


@property_test
@given(transcripts())
def test_vtt_parses_back_with_the_documented_normalization(t: Transcript) -> None:
    output = to_vtt(t)
    vtt = webvtt.from_string(output, strict=True)
    cues = expected_cues(t)
    assert len(vtt.captions) == len(cues)
    for caption, (start, end, lines) in zip(vtt.captions, cues, strict=True):
        assert caption.start_time.in_milliseconds() == start
        assert caption.end_time.in_milliseconds() == end
        assert caption.identifier is None
        assert "-->" not in caption.raw_text
        assert not re.search(r"[<>]|&(?!amp;|lt;|gt;)", caption.raw_text)
        assert vtt_unescape(caption.raw_text) == "\n".join(lines)
    video = re.sub("--+>", "->", " ".join(expected_lines(t.video_no)))
    note = f"{t.kind.value} transcript" + (f" of video {video}" if video else "")
    comments = [*vtt.header_comments, *vtt.footer_comments]
    comments += [comment for caption in vtt.captions for comment in caption.comments]
    assert comments == [note]


# Plain text


def test_txt_one_line_per_segment() -> None:
    t = transcript(
        Segment(0, 0.0, 8.0, " first\r\nsecond "),
        Segment(1, 8.0, 9.0, "  "),
        Segment(2, 3661.9996, 3700.0, "third --> <b>"),
    )
    assert to_txt(t) == "first second\nthird --> <b>\n"
    assert to_txt(t, timestamps=True) == "[00:00:00] first second\n[01:01:02] third --> <b>\n"
    assert to_txt(transcript()) == ""


@property_test
@given(transcripts(), st.booleans())
def test_txt_keeps_order_and_lines(t: Transcript, timestamps: bool) -> None:
    output = to_txt(t, timestamps=timestamps)
    expected = [
        (seg, " ".join(expected_lines(seg.text))) for seg in t.segments if expected_lines(seg.text)
    ]
    assert output == "" or output.endswith("\n")
    lines = output.split("\n")[:-1] if output else []
    assert len(lines) == len(expected)
    for line, (seg, text) in zip(lines, expected, strict=True):
        if timestamps:
            ms = expected_ms(seg.start)
            stamp = f"[{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}] "
            assert line == stamp + text
        else:
            assert line == text


# JSONL


def test_jsonl_record_layout() -> None:
    created = datetime(2025, 8, 15, 8, 11, 0, 412000, tzinfo=UTC)
    t = Transcript(
        video_no="VI606041694843813888",
        kind=TranscriptKind.VISUAL,
        segments=(Segment(0, 0.0, 8.0, " a"), Segment(1, 8.0, 15.0, "b")),
        created_at=created,
    )
    assert jsonl_record(t) == {
        "schema": 1,
        "video_no": "VI606041694843813888",
        "kind": "visual",
        "created_at": "2025-08-15T08:11:00.412000+00:00",
        "segment_count": 2,
        "duration": 15.0,
        "segments": [
            {"index": 0, "start": 0.0, "end": 8.0, "text": " a"},
            {"index": 1, "start": 8.0, "end": 15.0, "text": "b"},
        ],
    }
    assert JSONL_SCHEMA_VERSION == 1


def test_jsonl_line_escapes_unicode_line_separators() -> None:
    line = to_jsonl_line(transcript(Segment(0, 0, 1, "a\u2028b\u2029c\x85d\ne")))
    assert line.endswith(b"\n")
    assert b"\\u2028" in line
    assert b"\\u2029" in line
    assert b"\\u0085" in line
    assert orjson.loads(line)["segments"][0]["text"] == "a\u2028b\u2029c\x85d\ne"


@property_test
@given(transcripts())
def test_jsonl_round_trip(t: Transcript) -> None:
    line = to_jsonl_line(t)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert len(line.decode().splitlines()) == 1
    record = orjson.loads(line)
    assert record == jsonl_record(t)
    assert record["segment_count"] == len(t.segments)
    assert transcript_from_jsonl_record(record) == t


def test_jsonl_reader_ignores_unknown_and_derived_keys() -> None:
    t = transcript(Segment(0, 1, 2, "x"))
    record = {**jsonl_record(t), "future": [1, 2], "segment_count": 99, "duration": -1}
    assert transcript_from_jsonl_record(record) == t


def _valid_record() -> dict[str, object]:
    return jsonl_record(transcript(Segment(0, 1, 2, "x")))


def _with_segment(*, drop: str = "", **changes: object) -> dict[str, object]:
    segment: dict[str, object] = {"index": 0, "start": 1.0, "end": 2.0, "text": "x", **changes}
    segment.pop(drop, None)
    return {**_valid_record(), "segments": [segment]}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({**_valid_record(), "schema": 2}, "'schema' must be 1"),
        ({**_valid_record(), "schema": True}, "'schema' must be 1"),
        ({k: v for k, v in _valid_record().items() if k != "schema"}, "'schema' must be 1"),
        ({k: v for k, v in _valid_record().items() if k != "video_no"}, "'video_no' is missing"),
        ({**_valid_record(), "video_no": 5}, "'video_no' must be a string"),
        ({**_valid_record(), "kind": "smell"}, "'kind' must be one of 'visual', 'audio'"),
        ({**_valid_record(), "created_at": "yesterday"}, "'created_at' must be an ISO 8601"),
        ({**_valid_record(), "created_at": 17}, "'created_at' must be a string"),
        ({**_valid_record(), "segments": "abc"}, "'segments' must be a list"),
        ({**_valid_record(), "segments": [3]}, "'segments\\[0\\]' must be an object"),
        (_with_segment(index=True), "'segments\\[0\\].index' must be an integer"),
        (_with_segment(start="1"), "'segments\\[0\\].start' must be a number"),
        (_with_segment(end=None), "'segments\\[0\\].end' must be a number"),
        (_with_segment(drop="text"), "'segments\\[0\\].text' is missing"),
    ],
)
def test_jsonl_reader_rejects_invalid_records(record: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        transcript_from_jsonl_record(record)


# CSV


def test_csv_layout() -> None:
    t = transcript(Segment(0, 0.0, 8.0, ' Hi, "you"\nthere'), Segment(1, 8.0, 9.5, "ok"))
    assert to_csv(t, header=True) == (
        "video_no,kind,index,start,end,text\r\n"
        'VI1,audio,0,0.0,8.0," Hi, ""you""\nthere"\r\n'
        "VI1,audio,1,8.0,9.5,ok\r\n"
    )
    assert to_csv(t, header=False) == to_csv(t, header=True).split("\r\n", 1)[1]
    assert CSV_LINE_TERMINATOR == "\r\n"


def test_csv_of_an_empty_transcript_has_no_rows() -> None:
    assert csv_rows(transcript()) == []
    assert to_csv(transcript(), header=False) == ""
    assert to_csv(transcript(), header=True) == "video_no,kind,index,start,end,text\r\n"


@property_test
@given(st.lists(transcripts(), max_size=3))
def test_csv_round_trip_of_a_stream(batch: list[Transcript]) -> None:
    output = "".join(to_csv(t, header=i == 0) for i, t in enumerate(batch))
    rows = list(csv.reader(io.StringIO(output, newline="")))
    expected = [
        (t.video_no, t.kind.value, str(s.index), repr(float(s.start)), repr(float(s.end)), s.text)
        for t in batch
        for s in t.segments
    ]
    if batch:
        assert tuple(rows[0]) == CSV_HEADER
        rows = rows[1:]
    assert [tuple(row) for row in rows] == expected
    assert [float(row[3]) for row in rows] == [float(s.start) for t in batch for s in t.segments]


# Formats


@pytest.mark.parametrize(
    ("fmt", "extension", "per_video"),
    [
        (ExportFormat.JSONL, ".jsonl", False),
        (ExportFormat.CSV, ".csv", False),
        (ExportFormat.SRT, ".srt", True),
        (ExportFormat.VTT, ".vtt", True),
        (ExportFormat.TXT, ".txt", True),
    ],
)
def test_export_formats(fmt: ExportFormat, extension: str, per_video: bool) -> None:
    assert fmt.extension == extension
    assert fmt.per_video is per_video
    assert ExportFormat(fmt.value) is fmt


def test_export_format_names() -> None:
    assert [f.value for f in ExportFormat] == ["jsonl", "csv", "srt", "vtt", "txt"]


def test_the_renderers_are_public_and_are_those_of_the_export() -> None:
    import memories_async
    from memories_async import _formats

    transcript = Transcript(
        "VI1", TranscriptKind.AUDIO, (Segment(0, 0.0, 1.5, " hello"), Segment(1, 2.0, 3.0, "bye"))
    )
    assert memories_async.to_srt is _formats.to_srt
    assert memories_async.to_vtt is _formats.to_vtt
    # The names the export's writers use are the public functions.
    assert _formats.to_txt is memories_async.to_text
    assert _formats.jsonl_record is memories_async.to_json_record
    assert memories_async.to_srt(transcript) == (
        "1\n00:00:00,000 --> 00:00:01,500\nhello\n\n2\n00:00:02,000 --> 00:00:03,000\nbye\n\n"
    )
    assert memories_async.to_text(transcript) == "hello\nbye\n"
    record = memories_async.to_json_record(transcript)
    assert record["segment_count"] == 2
    assert transcript_from_jsonl_record(record) == transcript
