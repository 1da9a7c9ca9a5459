"""The frozen models: statuses, segments, transcripts, videos."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from memories_async import Segment, Transcript, TranscriptKind, Video, VideoStatus

# --- VideoStatus ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "ready", "processing", "failed"),
    [
        ("PARSE", True, False, False),
        ("UNPARSE", False, True, False),
        ("PARSE_ERROR", False, False, True),
        ("FAIL", False, False, True),
        ("FAILED", False, False, True),
    ],
)
def test_known_statuses(word: str, ready: bool, processing: bool, failed: bool) -> None:
    status = VideoStatus(word)
    assert status is VideoStatus[word]
    assert status.is_known
    assert status.is_ready is ready
    assert status.is_processing is processing
    assert status.is_failed is failed
    assert status == word
    assert str(status) == word


@pytest.mark.parametrize("word", ["REVIEWING", "QUEUED", "parse", "", "PARSE "])
def test_unknown_status_is_tolerated(word: str) -> None:
    status = VideoStatus(word)
    assert isinstance(status, VideoStatus)
    assert status.value == word
    assert status == word
    assert str(status) == word
    assert not status.is_known
    assert not status.is_ready
    assert not status.is_processing
    assert not status.is_failed


def test_unknown_status_does_not_join_the_members() -> None:
    VideoStatus("SOMETHING_NEW")
    assert "SOMETHING_NEW" not in VideoStatus.__members__
    assert len(VideoStatus) == 5


@pytest.mark.parametrize("value", [5, None, 1.5])
def test_status_from_non_string_refused(value: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the enum's own error
        VideoStatus(value)


def test_transcript_kinds() -> None:
    assert TranscriptKind("visual") is TranscriptKind.VISUAL
    assert TranscriptKind("audio") is TranscriptKind.AUDIO
    assert {k.value for k in TranscriptKind} == {"visual", "audio"}


# --- Segment -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "duration"),
    [(0.0, 8.0, 8.0), (26.0, 26.0, 0.0), (1.5, 4.0, 2.5), (10.0, 4.0, 0.0)],
)
def test_segment_duration_clamps_at_zero(start: float, end: float, duration: float) -> None:
    assert Segment(0, start, end, "t").duration == duration


def test_segment_is_frozen() -> None:
    segment = Segment(0, 0.0, 1.0, "a")
    with pytest.raises(AttributeError):
        segment.text = "b"  # type: ignore[misc]


def test_segment_unpacks() -> None:
    index, start, end, text = Segment(3, 1.0, 2.0, "x")
    assert (index, start, end, text) == (3, 1.0, 2.0, "x")


def test_segment_equality_and_hash() -> None:
    assert Segment(1, 0.0, 1.0, "a") == Segment(1, 0.0, 1.0, "a")
    assert hash(Segment(1, 0.0, 1.0, "a")) == hash(Segment(1, 0.0, 1.0, "a"))
    assert Segment(1, 0.0, 1.0, "a") != Segment(2, 0.0, 1.0, "a")


# --- Transcript ----------------------------------------------------------------------------------


def test_empty_transcript() -> None:
    transcript = Transcript(video_no="VI1", kind=TranscriptKind.AUDIO)
    assert transcript.is_empty
    assert transcript.segments == ()
    assert transcript.text == ""
    assert transcript.duration == 0.0
    assert transcript.created_at is None


def test_transcript_text_strips_and_joins() -> None:
    transcript = Transcript(
        video_no="VI1",
        kind=TranscriptKind.AUDIO,
        segments=(
            Segment(0, 0.0, 2.0, " Hello there."),
            Segment(1, 2.0, 5.0, "General Kenobi!  "),
            Segment(2, 5.0, 5.0, '\tzwölf, "quoted"'),
        ),
    )
    assert not transcript.is_empty
    assert transcript.text == 'Hello there.\nGeneral Kenobi!\nzwölf, "quoted"'


def test_transcript_duration_is_last_end() -> None:
    transcript = Transcript(
        video_no="VI1",
        kind=TranscriptKind.VISUAL,
        segments=(Segment(0, 0.0, 8.0, "a"), Segment(1, 20.0, 26.0, "b")),
    )
    assert transcript.duration == 26.0


def test_transcript_duration_is_max_end_even_out_of_order() -> None:
    transcript = Transcript(
        video_no="VI1",
        kind=TranscriptKind.VISUAL,
        segments=(Segment(0, 0.0, 30.0, "a"), Segment(1, 20.0, 26.0, "b")),
    )
    assert transcript.duration == 30.0


def test_transcript_is_frozen() -> None:
    transcript = Transcript(video_no="VI1", kind=TranscriptKind.AUDIO)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        transcript.video_no = "VI2"  # type: ignore[misc]


# --- Video ---------------------------------------------------------------------------------------


def test_video_defaults_and_frozen() -> None:
    created = datetime(2025, 8, 15, tzinfo=UTC)
    video = Video(video_no="VI1", status=VideoStatus.PARSE, created_at=created)
    assert video.name is None
    assert video.duration is None
    assert video.size is None
    assert video.cause is None
    assert video.fps is None
    assert video.width is None
    assert video.height is None
    assert video.created_at == created
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        video.status = VideoStatus.FAIL  # type: ignore[misc]
