"""The fake server's in-memory video library: videos, their transcripts, namespaces.

A :class:`FakeLibrary` maps video numbers to :class:`FakeVideo` records. Transcripts
are either given explicitly (a sequence of :class:`FakeSegment`) or marked
:class:`Generated`, in which case they are produced deterministically on demand
from the library seed and the video number, so a library of 100,000 videos costs
only its metadata until a transcript is actually requested.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import attrs

from memories_async._models import TranscriptKind
from memories_async.testing import _generate


@attrs.frozen(slots=True)
class FakeSegment:
    """One timed piece of a fake transcript, in whole seconds.

    ``start == end`` is allowed (the real service produces such segments); ``end``
    before ``start`` or a negative time raises :class:`ValueError`.
    """

    start: int
    end: int
    text: str

    def __attrs_post_init__(self) -> None:
        if self.start < 0 or self.end < self.start:
            msg = f"segment times must satisfy 0 <= start <= end, got {self.start}..{self.end}"
            raise ValueError(msg)


@attrs.frozen(slots=True)
class Generated:
    """Marks a transcript that is generated on demand instead of stored.

    The segments depend only on ``seed``, the video number, the transcript kind
    and the video's duration, so the same library seed always yields the same
    transcript text and timings.
    """

    seed: int = 0


TranscriptSource = tuple[FakeSegment, ...] | Generated | None
"""A transcript as stored on a :class:`FakeVideo`: explicit, generated, or absent."""


def _to_source(value: Sequence[FakeSegment] | Generated | None) -> TranscriptSource:
    if value is None or isinstance(value, Generated):
        return value
    return tuple(value)


def _to_tags(value: Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


#: Statuses the real service documents; any other string is served as is.
KNOWN_STATUSES = ("PARSE", "UNPARSE", "PARSE_ERROR", "FAIL", "FAILED")


@attrs.frozen(slots=True)
class FakeVideo:
    """One video of the fake library with its metadata and transcripts.

    ``video_no`` starting with ``PI-`` makes a public-library video, reachable
    only through the ``get_public_*`` endpoints and belonging to no namespace;
    any other number is a private video of namespace ``unique_id``.

    ``visual`` and ``audio`` are the two transcripts: a sequence of segments
    (an empty one is served as ``"transcriptions": []``), :class:`Generated`
    for a transcript made on demand, or ``None`` for no transcript at all
    (served as ``data: null``, as the service answers for a video without
    speech). Transcripts are only served while ``status`` is ``"PARSE"``.
    ``cause`` is the failure reason (served as the string ``"null"`` when
    ``None``). Sizes are bytes, ``duration`` seconds, ``create_time``
    milliseconds since the epoch.
    """

    video_no: str
    unique_id: str = "default"
    status: str = "PARSE"
    video_name: str = "video.mp4"
    duration: int = 60
    size: int = 12_000_000
    create_time: int = 1_755_245_460_412
    fps: int = 30
    width: int = 1920
    height: int = 1080
    tags: tuple[str, ...] = attrs.field(default=(), converter=_to_tags)
    cause: str | None = None
    visual: TranscriptSource = attrs.field(default=(), converter=_to_source)
    audio: TranscriptSource = attrs.field(default=None, converter=_to_source)

    def __attrs_post_init__(self) -> None:
        if not self.video_no:
            msg = "video_no must be a non-empty string such as 'VI606041694843813888'"
            raise ValueError(msg)
        if not self.unique_id:
            msg = "unique_id must be a non-empty string; the service's default is 'default'"
            raise ValueError(msg)

    @property
    def is_public(self) -> bool:
        """Whether this is a public-library video (number starting with ``PI-``)."""
        return self.video_no.startswith("PI-")

    def segments(self, kind: TranscriptKind | str, /) -> tuple[FakeSegment, ...] | None:
        """Return the transcript of ``kind`` (``"visual"`` or ``"audio"``), generating it if needed.

        ``None`` means the video has no such transcript. Status is not taken
        into account here: this is what the server will serve once the video is
        in status ``PARSE``.
        """
        kind = TranscriptKind(kind)
        source = self.visual if kind is TranscriptKind.VISUAL else self.audio
        if isinstance(source, Generated):
            rows = _generate.segments(source.seed, self.video_no, kind.value, self.duration)
            return tuple(FakeSegment(start, end, text) for start, end, text in rows)
        return source


class FakeLibrary:
    """A mutable, in-memory set of :class:`FakeVideo` keyed by video number.

    Build one empty and :meth:`add` videos, or :meth:`generate` a realistic
    library from a seed. Private videos are listed per namespace, newest first
    (by ``create_time``, then by number). Every change bumps :attr:`revision`,
    which servers use to drop rendered answers that may be stale.
    """

    def __init__(self, videos: Iterable[FakeVideo] = ()) -> None:
        self._videos: dict[str, FakeVideo] = {}
        self._listings: dict[str, list[FakeVideo]] | None = None
        self.revision = 0
        """Incremented by every change to the library."""
        self.add(*videos)

    @classmethod
    def generate(
        cls,
        size: int = 1000,
        *,
        seed: int = 0,
        unique_ids: Sequence[str] = ("default",),
        public: int = 0,
    ) -> FakeLibrary:
        """Generate a deterministic library of ``size`` private and ``public`` public videos.

        The same arguments always produce the same numbers (``VI`` + 18 digits,
        ``PI-`` + 18 digits), metadata and transcripts. About 86% of the videos
        are ``PARSE``, 6% ``UNPARSE`` and the rest failed under the words
        ``PARSE_ERROR``, ``FAIL`` and ``FAILED``; about one in eight has no
        speech. Private videos are spread over ``unique_ids``. Transcripts (from
        a few segments to about 600) are only made when first read, so
        100,000 videos take a fraction of a second to generate.

        Raises :class:`ValueError` if ``size`` or ``public`` is negative or
        above 1,000,000, or ``unique_ids`` is empty or holds an empty string.
        """
        for name, value in (("size", size), ("public", public)):
            if not 0 <= value <= _generate.MAX_VIDEOS:
                msg = f"{name!r} must be between 0 and {_generate.MAX_VIDEOS:,}, got {value}"
                raise ValueError(msg)
        if not unique_ids or not all(unique_ids):
            msg = "'unique_ids' must hold at least one non-empty string, e.g. ('default',)"
            raise ValueError(msg)
        marker = Generated(seed)
        library = cls()
        videos = library._videos
        for row in _generate.metadata(seed, size, public, tuple(unique_ids)):
            video = FakeVideo(
                row.video_no,
                row.unique_id,
                row.status,
                row.video_name,
                row.duration,
                row.size,
                row.create_time,
                row.fps,
                row.width,
                row.height,
                row.tags,
                row.cause,
                marker,
                marker if row.speech else None,
            )
            videos[video.video_no] = video
        return library

    def add(self, *videos: FakeVideo) -> None:
        """Add videos; raises :class:`ValueError` if a number is already present."""
        for video in videos:
            if video.video_no in self._videos:
                msg = f"video {video.video_no!r} is already in the library; use replace()"
                raise ValueError(msg)
        for video in videos:
            self._videos[video.video_no] = video
        self._changed()

    def replace(self, video_no: str, /, **changes: Any) -> FakeVideo:
        """Change fields of one video (e.g. ``status="PARSE"``) and return the new record.

        Raises :class:`KeyError` for an unknown number and :class:`TypeError`
        for an unknown field.
        """
        video = attrs.evolve(self._videos[video_no], **changes)
        if video.video_no != video_no:
            del self._videos[video_no]
            if video.video_no in self._videos:
                msg = f"video {video.video_no!r} is already in the library"
                raise ValueError(msg)
        self._videos[video.video_no] = video
        self._changed()
        return video

    def remove(self, video_no: str, /) -> FakeVideo:
        """Remove one video and return it; raises :class:`KeyError` if absent."""
        video = self._videos.pop(video_no)
        self._changed()
        return video

    def get(self, video_no: str, /) -> FakeVideo | None:
        """Return the video with this number, or ``None``."""
        return self._videos.get(video_no)

    def __getitem__(self, video_no: str, /) -> FakeVideo:
        return self._videos[video_no]

    def __contains__(self, video_no: object, /) -> bool:
        return video_no in self._videos

    def __len__(self) -> int:
        return len(self._videos)

    def __iter__(self) -> Iterator[FakeVideo]:
        return iter(list(self._videos.values()))

    def __repr__(self) -> str:
        public = sum(1 for video in self._videos.values() if video.is_public)
        return f"<FakeLibrary videos={len(self._videos)} public={public}>"

    def videos(self, unique_id: str | None = None, *, status: str | None = None) -> list[FakeVideo]:
        """Return private videos, newest first, optionally of one namespace and status.

        With ``unique_id=None`` every private video is returned; public videos
        are never included (see :meth:`public_videos`).
        """
        listings = self._listing_index()
        if unique_id is None:
            found = sorted(
                (video for group in listings.values() for video in group), key=_newest_first
            )
        else:
            found = list(listings.get(unique_id, ()))
        if status is not None:
            found = [video for video in found if video.status == status]
        return found

    def public_videos(self) -> list[FakeVideo]:
        """Return the public-library (``PI-``) videos, newest first."""
        return sorted((v for v in self._videos.values() if v.is_public), key=_newest_first)

    def unique_ids(self) -> list[str]:
        """Return the namespaces that hold videos, plus ``"default"``, sorted."""
        return sorted({"default", *self._listing_index()})

    def listing(self, unique_id: str) -> Sequence[FakeVideo]:
        """Return the namespace's private videos newest first, without copying.

        The result must not be modified; it is the server's list_videos index.
        """
        return self._listing_index().get(unique_id, ())

    def _listing_index(self) -> dict[str, list[FakeVideo]]:
        if self._listings is None:
            listings: dict[str, list[FakeVideo]] = {}
            for video in self._videos.values():
                if not video.is_public:
                    listings.setdefault(video.unique_id, []).append(video)
            for group in listings.values():
                group.sort(key=_newest_first)
            self._listings = listings
        return self._listings

    def _changed(self) -> None:
        self._listings = None
        self.revision += 1


def _newest_first(video: FakeVideo) -> tuple[int, str]:
    return (-video.create_time, video.video_no)
