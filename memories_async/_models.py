"""The data the SDK hands out: plain, frozen, snake_case attrs classes.

Models know nothing about the wire. Every renaming, coercion and shape quirk of
the memories.ai answers lives in :mod:`memories_async._converter`.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import NamedTuple

import attrs


class TranscriptKind(enum.StrEnum):
    """Which transcription of a video: scene captions or speech."""

    VISUAL = "visual"
    """Visual transcription (scene captions), ``get_video_transcription``."""
    AUDIO = "audio"
    """Speech transcription, ``get_audio_transcription``."""


class VideoStatus(enum.StrEnum):
    """Processing status of a video.

    The service uses several words for failure on different pages; any value
    not listed here is kept as an *unknown* status instead of raising, so
    ``VideoStatus("REVIEWING")`` works and ``.is_known`` is ``False``.
    """

    PARSE = "PARSE"
    """Processed: transcripts can be read."""
    UNPARSE = "UNPARSE"
    """Still processing."""
    PARSE_ERROR = "PARSE_ERROR"
    FAIL = "FAIL"
    FAILED = "FAILED"

    @classmethod
    def _missing_(cls, value: object) -> VideoStatus | None:
        if not isinstance(value, str):
            return None
        # An unknown status becomes a pseudo-member carrying the raw word.
        member = str.__new__(cls, value)
        member._name_ = value
        member._value_ = value
        return member

    @property
    def is_known(self) -> bool:
        """Whether the status is one of the documented words."""
        return self._name_ in type(self).__members__

    @property
    def is_ready(self) -> bool:
        """Whether transcripts can be read (status ``PARSE``)."""
        return self is VideoStatus.PARSE

    @property
    def is_processing(self) -> bool:
        """Whether the video is still being processed (status ``UNPARSE``)."""
        return self is VideoStatus.UNPARSE

    @property
    def is_failed(self) -> bool:
        """Whether processing failed, under any of the documented failure words."""
        return self in _FAILED_STATUSES


_FAILED_STATUSES = frozenset({VideoStatus.PARSE_ERROR, VideoStatus.FAIL, VideoStatus.FAILED})


class Segment(NamedTuple):
    """One timed piece of a transcript.

    ``start`` and ``end`` are seconds from the start of the video; ``start ==
    end`` happens, and consecutive segments may leave gaps.

    The one model that is a named tuple rather than an attrs class: a long
    transcript holds hundreds of segments, and a tuple is the cheapest
    immutable record Python builds (a quarter less CPU per segment than a
    frozen attrs instance built through its slots). It unpacks as
    ``index, start, end, text``.
    """

    index: int  # type: ignore[assignment]  # the field shadows tuple.index(), by design
    start: float
    end: float
    text: str

    @property
    def duration(self) -> float:
        """Length of the segment in seconds (``0`` for zero-length segments)."""
        return max(0.0, self.end - self.start)


@attrs.frozen(slots=True)
class Transcript:
    """The transcription of one video, of one kind.

    An empty ``segments`` tuple means the service had nothing to give: the
    video has no speech, is not processed yet, or the ``unique_id`` does not
    match the one it was uploaded under (the service does not tell these
    apart).
    """

    video_no: str
    kind: TranscriptKind
    segments: tuple[Segment, ...] = ()
    created_at: datetime | None = None

    @property
    def is_empty(self) -> bool:
        """Whether the transcript has no segments."""
        return not self.segments

    @property
    def text(self) -> str:
        """The segment texts, stripped and joined by newlines."""
        return "\n".join(s.text.strip() for s in self.segments)

    @property
    def duration(self) -> float:
        """End time of the last segment in seconds (``0`` when empty)."""
        return max((s.end for s in self.segments), default=0.0)


@attrs.frozen(slots=True)
class Video:
    """A video of a library, as ``list_videos`` and ``get_metadata`` describe it."""

    video_no: str
    status: VideoStatus
    name: str | None = None
    duration: float | None = None
    """Seconds."""
    size: int | None = None
    """Bytes."""
    created_at: datetime | None = None
    cause: str | None = None
    """Why processing failed, when the service says."""
    fps: float | None = None
    width: int | None = None
    height: int | None = None
