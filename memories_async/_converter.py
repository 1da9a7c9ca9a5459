"""Wire payloads to models: every quirk of the memories.ai answers lives here.

The service's answers disagree with its documentation and with themselves:

* transcripts arrive as ``transcriptions`` of ``{index, content, startTime,
  endTime}`` with the times as strings of whole seconds (live answers), or as
  the documented ``transcription`` of ``{text, start, end}`` with floats;
* ``data: null`` and an empty list both mean "nothing to give";
* numbers arrive as strings in some versions and as numbers in others;
* ``cause`` may hold the literal string ``"null"``;
* ``createTime`` / ``create_time`` are epoch milliseconds, as strings or numbers;
* unknown extra fields come and go and are ignored.

Structuring uses a fast cattrs converter; when it fails, the payload is
structured again with detailed validation to name the offending field in the
:class:`~memories_async.DecodeError`.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import cattrs
from cattrs.cols import namedtuple_dict_structure_factory
from cattrs.gen import make_dict_structure_fn, override

from ._errors import DecodeError
from ._models import Segment, Transcript, TranscriptKind, Video, VideoStatus

LARGEST = 1e9
"""The largest magnitude a number of the API may have (a billion seconds is 31 years):
beyond, it is a fault of the answer, which would make a subtitle timestamp hundreds of
characters long."""


def _to_float(value: Any, _type: object = float) -> float:
    """A time or any number of the answer: every rule there is for one, in one place.

    Not a boolean; what ``float()`` reads (it strips whitespace itself); finite and within
    :data:`LARGEST`. :func:`_live_items` inlines these three steps for speed (a call per
    time costs a fifth of its loop: 13.2 µs instead of 11.0 for 50 segments); a Hypothesis
    test (``tests/test_fast_paths.py``) holds the two equal on any value.
    """
    if type(value) is bool:
        raise TypeError("expected a number, got a boolean")
    result = float(value)
    # Also false for NaN and infinities.
    if not -LARGEST <= result <= LARGEST:
        if not math.isfinite(result):
            raise ValueError(f"expected a finite number, got {value!r}")
        raise ValueError(f"expected a number within ±{LARGEST:g}, got {value!r}")
    return result


def _to_int(value: Any, _type: object = int) -> int:
    if isinstance(value, bool):
        raise TypeError("expected a number, got a boolean")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"expected a whole number, got {value!r}")
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        return _to_int(float(text)) if "." in text else int(text)
    return int(value)


def _to_str(value: Any, _type: object = str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected a string, got {type(value).__name__}")


def _text(value: Any, _type: object = str) -> str:
    return "" if value is None else _to_str(value)


def _null(value: Any) -> bool:
    """Whether a wire value means "absent": null, empty, or the literal string "null"."""
    return value is None or (isinstance(value, str) and value.strip() in ("", "null", "None"))


def _optional(convert: Any) -> Any:
    def structure(value: Any, _type: object) -> Any:
        return None if _null(value) else convert(value)

    return structure


def _to_datetime(value: Any, _type: object = datetime) -> datetime:
    if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
        parsed = datetime.fromisoformat(value.strip())
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.fromtimestamp(_to_int(value) / 1000, tz=UTC)


def _to_status(value: Any, _type: object = VideoStatus) -> VideoStatus:
    return VideoStatus(_to_str(value).strip().upper())


LIVE_LIST = "transcriptions"
"""The key of the segments in the live shape of an answer."""
DOCUMENTED_LIST = "transcription"
"""The key of the segments in the documented shape."""
CREATED_KEYS = ("createTime", "create_time")
"""The keys of a transcript's creation time, the first present wins."""

LIVE_NAMES: Mapping[str, str] = {
    "index": "index",
    "start": "startTime",
    "end": "endTime",
    "text": "content",
}
"""The live shape of a segment: the wire name of each field of :class:`Segment`. The
cattrs hooks, the hot path and the errors naming a field all read it here."""

_LIVE_KEYS = tuple(LIVE_NAMES[field] for field in Segment._fields)
_LIVE_MARK = LIVE_NAMES["text"]


def _is_live(item: Any) -> bool:
    """Whether a segment item is in the live shape (it holds ``content``), else in the
    documented one: the one test that decides, for the cattrs hook, the hot path and the
    errors alike."""
    return isinstance(item, Mapping) and _LIVE_MARK in item


def _configure(converter: cattrs.Converter) -> cattrs.Converter:
    converter.register_structure_hook(float, _to_float)
    converter.register_structure_hook(int, _to_int)
    converter.register_structure_hook(str, _to_str)
    converter.register_structure_hook(float | None, _optional(_to_float))
    converter.register_structure_hook(int | None, _optional(_to_int))
    converter.register_structure_hook(str | None, _optional(_to_str))
    converter.register_structure_hook(datetime | None, _optional(_to_datetime))
    converter.register_structure_hook(VideoStatus, _to_status)

    live_segment = namedtuple_dict_structure_factory(
        Segment,
        converter,
        "from_converter",
        False,
        True,
        text=override(rename=LIVE_NAMES["text"], struct_hook=_text),
        start=override(rename=LIVE_NAMES["start"]),
        end=override(rename=LIVE_NAMES["end"]),
    )
    documented_segment = namedtuple_dict_structure_factory(
        Segment, converter, "from_converter", False, True, text=override(struct_hook=_text)
    )
    converter.register_structure_hook(
        Segment,
        lambda d, t: live_segment(d, t) if _is_live(d) else documented_segment(d, t),
    )
    converter.register_structure_hook(
        Video,
        make_dict_structure_fn(
            Video,
            converter,
            name=override(rename="video_name"),
            created_at=override(rename="create_time"),
        ),
    )
    return converter


_fast = _configure(cattrs.Converter(detailed_validation=False))
_detailed = _configure(cattrs.Converter(detailed_validation=True))


_VIDEO_WIRE_NAMES = {".name": ".video_name", ".created_at": ".create_time"}
_ITEM_FIELD = re.compile(r"\[(\d+)\]\.(\w+)$")


def _decode_error(exc: Exception, what: str, path: str, payload: Any) -> DecodeError:
    if not isinstance(exc, cattrs.BaseValidationError):
        return DecodeError(f"unexpected {what} in the answer: {exc} at {path}", field=path)
    details = cattrs.transform_error(exc, path=path)
    first = details[0] if details else str(exc)
    reason, _, field = first.rpartition(" @ ")
    if not reason:
        return DecodeError(f"unexpected {what} in the answer: {first}")
    if what.startswith("video"):
        for attribute, wire in _VIDEO_WIRE_NAMES.items():
            if field.endswith(attribute):
                field = field[: -len(attribute)] + wire
    elif (match := _ITEM_FIELD.search(field)) and isinstance(payload, list):
        # The segment's field by its wire name, in the shape that segment was read in.
        item = payload[int(match[1])]
        if _is_live(item):
            field = field[: match.start(2)] + LIVE_NAMES.get(match[2], match[2])
    return DecodeError(f"unexpected {what} in the answer: {reason} at {field}", field=field)


def _structure(payload: Any, cls: Any, what: str, path: str) -> Any:
    try:
        return _fast.structure(payload, cls)
    except Exception:  # noqa: S110 - structured again below, to name the field
        pass
    try:
        _detailed.structure(payload, cls)
    except Exception as exc:
        raise _decode_error(exc, what, path, payload) from exc
    raise DecodeError(f"unexpected {what} in the answer")  # pragma: no cover


def _segment_items(data: Mapping[str, Any]) -> tuple[str, list[Any]]:
    items = data.get(LIVE_LIST)
    if type(items) is list:
        return LIVE_LIST, items
    for key in (LIVE_LIST, DOCUMENTED_LIST):
        items = data.get(key)
        if items is not None:
            if not isinstance(items, list):
                raise DecodeError(
                    f"unexpected transcript in the answer: {key} is a"
                    f" {type(items).__name__}, not a list",
                    field=f"$.{key}",
                )
            return key, items
    return LIVE_LIST, []


def structure_transcript(data: Any, *, video_no: str, kind: TranscriptKind) -> Transcript:
    """Build a :class:`Transcript` from the ``data`` of a transcription answer.

    ``data`` may be ``None`` or hold no segments: the result is then an empty
    transcript. Segments without an ``index`` (documented shape) are numbered
    by position. Raises :class:`DecodeError` naming the field that cannot be read.
    """
    if type(data) is dict:
        items = _common_items(data)
        if items is not None:
            segments = _live_segments(items)
            if segments is not None:
                return Transcript(_answered_video_no(data, video_no), kind, segments)
    elif data is None or _null(data):
        return Transcript(video_no=video_no, kind=kind)
    if type(data) is not dict and not isinstance(data, Mapping):
        raise DecodeError(
            f"unexpected transcript in the answer: data is a {type(data).__name__}",
            field="$",
        )
    key, items = _segment_items(data)
    segments = _live_segments(items)
    if segments is None:
        items = [
            {**item, "index": position} if isinstance(item, dict) and "index" not in item else item
            for position, item in enumerate(items)
        ]
        segments = _structure(items, tuple[Segment, ...], "transcript", f"$.{key}")
    created = next((data[key] for key in CREATED_KEYS if key in data), None)
    return Transcript(
        video_no=_answered_video_no(data, video_no),
        kind=kind,
        segments=segments,
        created_at=None
        if created is None
        else _structure(created, datetime | None, "transcript", "$.createTime"),
    )


def _common_items(data: dict[str, Any]) -> list[Any] | None:
    """The segments of the common answer, which the fast paths read: a ``transcriptions``
    list and no creation time (else ``None``)."""
    items = data.get(LIVE_LIST)
    return items if type(items) is list and data.keys().isdisjoint(CREATED_KEYS) else None


def _live_segments(items: list[Any]) -> tuple[Segment, ...] | None:
    """The hot path: well-formed live-shape segments, or ``None`` to take the cattrs path.

    Segments are built with ``tuple.__new__``, skipping the generated ``__new__`` of the
    named tuple: building segments is the largest cost of reading a long transcript. The
    result is identical: a Hypothesis test (``tests/test_fast_paths.py``) compares it with
    the cattrs path's on well-formed and damaged segments.
    """
    fields = _live_items(items, False)
    return None if fields is None else tuple(map(_new_segment, fields))


def _live_rows(items: list[Any]) -> list[dict[str, Any]] | None:
    """:func:`_live_segments` as the rows of a JSON line, one dict per segment."""
    return _live_items(items, True)


def _live_items(items: list[Any], rows: bool) -> list[Any] | None:
    """Each well-formed live-shape segment as its ``(index, start, end, text)`` or, with
    ``rows``, as the dict of those fields; ``None`` on anything else.

    It accepts a subset of what the cattrs hooks accept for the live shape (integer
    ``index``, string ``content``, times as :func:`_to_float` reads them, inlined); on
    anything else it returns ``None`` and the cattrs path structures the segments again,
    accepting the rest or raising the error that names the field.

    One loop for both results: the test of ``rows`` per segment costs nothing measurable,
    where building the dicts from the tuples afterwards cost 3 µs per transcript of 50
    segments, some 2 % of the JSON-line export's CPU.
    """
    if not items:
        return []
    first = items[0]
    if type(first) is not dict or not _is_live(first):
        return None
    index_key, start_key, end_key, text_key = _LIVE_KEYS
    low, high = -LARGEST, LARGEST
    built: list[Any] = []
    append = built.append
    try:
        for item in items:
            index = item[index_key]
            text = item[text_key]
            raw_start = item[start_key]
            raw_end = item[end_key]
            if (
                type(index) is not int
                or type(text) is not str
                or type(raw_start) is bool
                or type(raw_end) is bool
            ):
                return None
            start = float(raw_start)
            end = float(raw_end)
            # Also false for NaN and infinities.
            if not (low <= start <= high and low <= end <= high):
                return None
            if rows:
                append({"index": index, "start": start, "end": end, "text": text})
            else:
                append((index, start, end, text))
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    return built


_new_segment = functools.partial(tuple.__new__, Segment)


def live_rows(data: Any, *, video_no: str) -> tuple[str, list[dict[str, Any]]] | None:
    """The fast twin of :func:`structure_transcript` for the common answer, as plain rows.

    For an answer in the live shape without a creation time whose every segment the hot
    path accepts, returns the video number answered (or ``video_no``) and one dict per
    segment, ``{"index", "start", "end", "text"}``: the fields of the :class:`Segment`
    that :func:`structure_transcript` builds, in its order, with the same values. For
    anything else returns ``None``: the caller then takes :func:`structure_transcript`,
    which accepts the rest or raises the error that names the field.

    It is what an export to JSON lines needs, built without the segment objects it
    would otherwise build and take apart again (a Hypothesis test compares the two
    paths, up to the JSON line).
    """
    if type(data) is not dict:
        return None
    items = _common_items(data)
    if items is None:
        return None
    rows = _live_rows(items)
    if rows is None:
        return None
    return _answered_video_no(data, video_no), rows


def _answered_video_no(data: Mapping[str, Any], asked: str) -> str:
    answered = data.get("videoNo", data.get("video_no"))
    return answered if isinstance(answered, str) and answered else asked


def structure_video(data: Any) -> Video | None:
    """Build a :class:`Video` from a ``list_videos`` item or ``get_metadata`` data.

    ``None`` (an unknown video number) gives ``None``.
    """
    if _null(data):
        return None
    return _structure(data, Video, "video", "$")  # type: ignore[no-any-return]


def structure_video_page(data: Any) -> tuple[list[Video], int | None]:
    """Read one ``list_videos`` page: its videos and the ``total_count`` when given."""
    if _null(data):
        return [], 0
    if not isinstance(data, Mapping):
        raise DecodeError(
            f"unexpected video list in the answer: data is a {type(data).__name__}", field="$"
        )
    items = data.get("videos")
    if _null(items):
        items = []
    videos = _structure(items, list[Video], "video list", "$.videos")
    total = _structure(data.get("total_count"), int | None, "video list", "$.total_count")
    return videos, total


def structure_unique_ids(data: Any) -> tuple[str, ...]:
    """Read the ``unique_ids`` of a ``list_unique_ids`` answer."""
    if _null(data):
        return ()
    if isinstance(data, Mapping):
        data = data.get("unique_ids")
        if _null(data):
            return ()
    if not isinstance(data, list):
        raise DecodeError(
            f"unexpected unique_id list in the answer: a {type(data).__name__}, not a list",
            field="$.unique_ids",
        )
    return _structure(data, tuple[str, ...], "unique_id list", "$.unique_ids")  # type: ignore[no-any-return]
