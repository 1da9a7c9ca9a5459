"""Renderers that turn a :class:`~memories_async.Transcript` into the export formats.

Every function here is pure: it takes a transcript and returns ``str`` or ``bytes``. Opening
files, naming them and keeping the ledger that lets an export resume belong to the exporter.

Formats
=======

:class:`ExportFormat` names the five formats. Three are written as one file per transcript
(``srt``, ``vtt``, ``txt``); two are streams that hold every transcript of an export in a single
file, one record or row after another (``jsonl``, ``csv``).

Subtitles and text: what is done to the segments
================================================

``to_srt``, ``to_vtt`` and ``to_text`` write text meant to be read by people and players, so they
make every input representable:

* **Line breaks.** The text is split on every line boundary :meth:`str.splitlines` knows
  (``\\n``, ``\\r\\n``, ``\\r``, U+2028, NEL, …). Each line has its control characters (tab,
  NUL, …) replaced by spaces and is stripped of surrounding whitespace (the service's ``content``
  often starts with a space); lines left empty are dropped, because a blank line ends a cue in
  both subtitle formats.
* **Empty text.** A segment whose text is empty after that is skipped: a cue without text shows
  nothing, and some SubRip readers reject it. Cue numbers stay consecutive.
* **Times.** Times are rounded to the nearest millisecond, halves up, as the number is written
  (``1.9995`` gives ``00:00:02,000``). A negative time becomes ``0``. A cue whose end is not
  after its start (``start == end`` happens in the service's answers; ``end < start`` is clamped)
  lasts :data:`INSTANT_CUE_DURATION` (one second, the resolution of the service's times), so that
  players show it and no reader sees a cue that ends before it starts. Hours get as many digits
  as they need (``111:06:40,000``) instead of being clamped. A time that is not a finite number
  raises :exc:`ValueError`.
* **Order.** Subtitle cues are sorted by start time, keeping the given order for equal starts;
  the service sends segments in that order already. ``to_text`` keeps the given order.
* **SubRip text.** SubRip has no escaping: every run of two or more hyphens followed by ``>``
  becomes ``->`` so no text line reads as a timing line, and a line holding only a number is
  joined to the line after it, since a number line followed by a line starting with a time is
  read as the start of a new cue. Tags such as ``<i>`` are left as they are.
* **WebVTT text.** ``&``, ``<`` and ``>`` are escaped as ``&amp;``, ``&lt;`` and ``&gt;``, which
  also turns any ``-->`` into ``--&gt;``: players show the text exactly as it was.

Lines end with ``\\n``.

JSONL schema, version 1
=======================

:func:`to_jsonl_line` writes one JSON object per transcript on one line, UTF-8, ending with
``\\n``. U+2028, U+2029 and NEL are written as ``\\u`` escapes, so no line-splitting rule can
break a record in two::

    {"schema": 1,                       always 1 for this layout
     "video_no": "VI606041694843813888",
     "kind": "visual",                  "visual" or "audio"
     "created_at": "2025-08-15T08:11:00.412000+00:00",   ISO 8601, or null when unknown
     "segment_count": 2,                derived: len(segments)
     "duration": 15.0,                  derived: the largest segment end, 0.0 when empty
     "segments": [{"index": 0, "start": 0.0, "end": 8.0, "text": " The text, verbatim"}, ...]}

``start``, ``end`` and ``duration`` are seconds as JSON numbers; segment texts are kept exactly as
the service sent them. Readers must ignore keys they do not know: adding a key does not change
the version, while renaming, removing or changing the meaning of one does.
:func:`transcript_from_jsonl_record` reads a record back into the same transcript.

CSV
===

:func:`to_csv` writes one row per segment with the columns of :data:`CSV_HEADER`, in the
``excel`` dialect of :mod:`csv`: minimal quoting (fields holding commas, quotes or line breaks
are quoted, quotes doubled) and rows ending with ``\\r\\n`` (:data:`CSV_LINE_TERMINATOR`, as
RFC 4180 says). Line breaks inside a text are written as they are, inside quotes. Times are
written as Python writes floats (``8.0``). Texts are verbatim, so one starting with ``=``, ``+``,
``-`` or ``@`` may be taken for a formula by a spreadsheet. A transcript without segments has no
rows: the export records which videos are done in its ledger, not in the CSV file.
"""

from __future__ import annotations

import csv
import decimal
import enum
import io
import math
import operator
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

import orjson

from ._models import Segment, Transcript, TranscriptKind

INSTANT_CUE_DURATION = 1.0
"""Seconds a subtitle cue lasts when its segment ends at or before its start."""

JSONL_SCHEMA_VERSION = 1
"""The ``schema`` value of the JSONL records this module writes and reads."""

CSV_HEADER: tuple[str, ...] = ("video_no", "kind", "index", "start", "end", "text")
"""Column names of the CSV export, in order."""

CSV_LINE_TERMINATOR = "\r\n"
"""What ends every CSV row (RFC 4180)."""

CsvRow = tuple[str, str, int, float, float, str]
"""One CSV row: video number, kind, segment index, start, end and text."""


class ExportFormat(enum.StrEnum):
    """An output format of the export, by the name the command line uses."""

    JSONL = "jsonl"
    """One JSON record per transcript, all in one stream file."""
    CSV = "csv"
    """One row per segment, all transcripts in one stream file."""
    SRT = "srt"
    """A SubRip subtitle file per transcript."""
    VTT = "vtt"
    """A WebVTT subtitle file per transcript."""
    TXT = "txt"
    """A plain text file per transcript, one line per segment."""

    @property
    def extension(self) -> str:
        """The file name suffix, with its dot (``".srt"``)."""
        return f".{self.value}"

    @property
    def per_video(self) -> bool:
        """Whether each transcript gets a file of its own, rather than a line in a stream."""
        return self in _PER_VIDEO_FORMATS


_PER_VIDEO_FORMATS = frozenset({ExportFormat.SRT, ExportFormat.VTT, ExportFormat.TXT})

# Rounding must not depend on the decimal context of the caller's thread.
_DECIMAL_CONTEXT = decimal.Context(prec=64)
_INSTANT_CUE_MS = round(INSTANT_CUE_DURATION * 1000)
_TIMESTAMP_SEPARATORS = frozenset({",", "."})
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ARROW = re.compile(r"--+>")
# The cue index pattern of SubRip readers such as the ``srt`` package.
_NUMBER_LINE = re.compile(r"-?[0-9]+\.?[0-9]*")
_VTT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# The line breaks that orjson leaves unescaped, in UTF-8: LINE SEPARATOR, PARAGRAPH
# SEPARATOR and NEXT LINE.
_LS, _PS, _NEL = "\u2028".encode(), "\u2029".encode(), "\x85".encode()


class _Cue(NamedTuple):
    start: int
    end: int
    lines: list[str]


def format_timestamp(seconds: float, /, *, sep: str) -> str:
    """Format a time in seconds as ``HH:MM:SS`` + *sep* + ``mmm``.

    Use ``sep=","`` for SubRip and ``sep="."`` for WebVTT. The time is rounded to the nearest
    millisecond, halves up, as the number is written: ``1.9995`` gives ``00:00:02,000``, and
    carries propagate, so no field ever reads ``60`` or ``1000``. Hours have at least two digits
    and more when needed (``400000`` gives ``111:06:40,000``).

    Raises :exc:`ValueError` if *seconds* is negative or not finite, or *sep* is neither
    ``","`` nor ``"."``.
    """
    if sep not in _TIMESTAMP_SEPARATORS:
        raise ValueError(f"'sep' must be ',' (SubRip) or '.' (WebVTT), got {sep!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"'seconds' must be a finite number >= 0, got {seconds!r}")
    return _clock(_milliseconds(seconds), sep)


def to_srt(transcript: Transcript, /) -> str:
    """Render a transcript as a SubRip (``.srt``) file.

    Cues are numbered from 1, each written as its number, a ``HH:MM:SS,mmm --> HH:MM:SS,mmm``
    line and its text, followed by a blank line. Text and times are normalized as the rendering
    rules describe (blank lines dropped, empty segments skipped, ``-->`` rewritten as
    ``->``, number-only lines joined to the next, zero-length cues lengthened, cues sorted by
    start). A transcript with nothing to show gives ``""``.

    Raises :exc:`ValueError` if a segment time is not a finite number.
    """
    blocks = []
    for number, cue in enumerate(_cues(transcript), start=1):
        text = "\n".join(_srt_lines(cue.lines))
        timing = f"{_clock(cue.start, ',')} --> {_clock(cue.end, ',')}"
        blocks.append(f"{number}\n{timing}\n{text}\n\n")
    return "".join(blocks)


def to_vtt(transcript: Transcript, /) -> str:
    """Render a transcript as a WebVTT (``.vtt``) file.

    The file starts with a ``WEBVTT`` line and a ``NOTE`` naming the transcript's kind and video
    number, followed by one cue per segment: a ``HH:MM:SS.mmm --> HH:MM:SS.mmm`` line and the
    text, with ``&``, ``<`` and ``>`` escaped, each cue followed by a blank line. Text and times
    are normalized as the rendering rules describe. Cues carry no identifier or settings.

    Raises :exc:`ValueError` if a segment time is not a finite number.
    """
    video = _one_line(transcript.video_no)
    note = f"NOTE {transcript.kind.value} transcript"
    blocks = ["WEBVTT\n\n", f"{note} of video {video}\n\n" if video else f"{note}\n\n"]
    for cue in _cues(transcript):
        text = "\n".join(line.translate(_VTT_ESCAPES) for line in cue.lines)
        blocks.append(f"{_clock(cue.start, '.')} --> {_clock(cue.end, '.')}\n{text}\n\n")
    return "".join(blocks)


def to_text(transcript: Transcript, /, *, timestamps: bool = False) -> str:
    """Render a transcript as plain text, one line per segment, in the given order.

    The lines of a segment's text are joined by spaces, after the normalization the rendering
    rules describe; segments with no text are skipped. With ``timestamps=True`` each
    line starts with the segment's start as ``[HH:MM:SS] `` (rounded to the millisecond, then
    truncated to the second). Every line ends with ``\\n``; a transcript with no text gives
    ``""``.

    Raises :exc:`ValueError` if a segment time is not a finite number.
    """
    lines = []
    for segment in transcript.segments:
        start, _ = _span(transcript, segment)
        text = " ".join(_clean_lines(segment.text))
        if not text:
            continue
        if timestamps:
            lines.append(f"[{_clock(start, None)}] {text}\n")
        else:
            lines.append(f"{text}\n")
    return "".join(lines)


def to_json_record(transcript: Transcript, /) -> dict[str, object]:
    """Return the JSONL record of a transcript as plain JSON-ready data (schema version 1).

    The layout is described in the rendering rules. Texts are verbatim, times are floats,
    ``created_at`` is an ISO 8601 string or ``None``.

    Raises :exc:`ValueError` if a segment time is not a finite number (JSON has no NaN).
    """
    segments = transcript.segments
    _, starts, ends, _ = zip(*segments, strict=True) if segments else _NO_COLUMNS
    # The common case, checked a whole transcript at a time: every time a float, and
    # their sum finite (a NaN or an infinity makes it NaN or infinite; an overflow
    # of finite times too, and the slow path then finds them all finite). A Hypothesis
    # test holds the two paths equal, errors included.
    if {*map(type, starts), *map(type, ends)} <= _FLOAT and math.isfinite(sum(starts) + sum(ends)):
        rows = [
            {"index": index, "start": start, "end": end, "text": text}
            for index, start, end, text in segments
        ]
        return _record(
            transcript.video_no, transcript.kind, transcript.created_at, rows, _duration(ends)
        )
    return _checked_record(transcript)


to_txt = to_text
"""The ``txt`` export's name of :func:`to_text`."""
jsonl_record = to_json_record
"""The JSONL export's name of :func:`to_json_record`."""

_NO_COLUMNS: tuple[tuple[float, ...], ...] = ((), (), (), ())
_FLOAT = frozenset({float})


def _checked_record(transcript: Transcript) -> dict[str, object]:
    """:func:`to_json_record` one segment at a time: times converted to floats, and the
    error naming the first segment whose time is not finite."""
    rows: list[dict[str, object]] = []
    for segment in transcript.segments:
        _require_finite(transcript, segment)
        rows.append(
            {
                "index": segment.index,
                "start": float(segment.start),
                "end": float(segment.end),
                "text": segment.text,
            }
        )
    return _record(
        transcript.video_no,
        transcript.kind,
        transcript.created_at,
        rows,
        _duration(map(_END, rows)),
    )


def _duration(ends: Iterable[float]) -> float:
    """The ``duration`` of a record: the largest segment end, ``0.0`` when there is none."""
    return max(ends, default=0.0)


def _record(
    video_no: str,
    kind: TranscriptKind,
    created_at: datetime | None,
    rows: Sequence[Mapping[str, object]],
    duration: float,
) -> dict[str, object]:
    return {
        "schema": JSONL_SCHEMA_VERSION,
        "video_no": video_no,
        "kind": kind.value,
        "created_at": None if created_at is None else created_at.isoformat(),
        "segment_count": len(rows),
        "duration": duration,
        "segments": rows,
    }


def to_jsonl_line(transcript: Transcript, /) -> bytes:
    """Return the JSONL record of a transcript as one UTF-8 line ending with ``b"\\n"``.

    See :func:`to_json_record` for the content. Apart from the final ``\\n``, the line holds no
    byte or character that any line-splitting rule treats as a line break.

    Raises :exc:`ValueError` if a segment time is not a finite number.
    """
    return _jsonl_line(to_json_record(transcript))


def jsonl_line_of_rows(
    video_no: str, kind: TranscriptKind, rows: Sequence[Mapping[str, object]], /
) -> bytes:
    """The :func:`to_jsonl_line` of a transcript without a creation time whose segments are
    ``rows`` (``{"index", "start", "end", "text"}`` dicts, times finite floats), without
    building the transcript; see :func:`~memories_async._converter.live_rows`."""
    return _jsonl_line(_record(video_no, kind, None, rows, _duration(map(_END, rows))))


_END = operator.itemgetter("end")


def _jsonl_line(record: dict[str, object]) -> bytes:
    line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
    if line.isascii():
        return line
    # orjson leaves U+2028, U+2029 and U+0085 as they are; their UTF-8 forms hold the
    # bytes E2 and 85, which a line rarely holds at all (one memchr each to know).
    if b"\xe2" in line:
        line = line.replace(_LS, b"\\u2028").replace(_PS, b"\\u2029")
    if b"\x85" in line:
        line = line.replace(_NEL, b"\\u0085")
    return line


def transcript_from_jsonl_record(record: Mapping[str, object], /) -> Transcript:
    """Rebuild the transcript a JSONL record was made from.

    The inverse of :func:`to_json_record`:
    ``transcript_from_jsonl_record(to_json_record(t)) == t``.
    The derived keys ``segment_count`` and ``duration`` and any unknown key are ignored.

    Raises :exc:`ValueError`, naming the offending key, if the record is not a version 1 record
    or a value has the wrong type.
    """
    schema = record.get("schema")
    if type(schema) is not int or schema != JSONL_SCHEMA_VERSION:
        raise _invalid_record(f"'schema' must be {JSONL_SCHEMA_VERSION}, got {schema!r}")
    video_no = _string(record, "video_no")
    kind_value = _string(record, "kind")
    try:
        kind = TranscriptKind(kind_value)
    except ValueError:
        choices = ", ".join(repr(k.value) for k in TranscriptKind)
        raise _invalid_record(f"'kind' must be one of {choices}, got {kind_value!r}") from None
    created_at = None
    if _get(record, "created_at") is not None:
        text = _string(record, "created_at")
        try:
            created_at = datetime.fromisoformat(text)
        except ValueError:
            raise _invalid_record(
                f"'created_at' must be an ISO 8601 time or null, got {text!r}"
            ) from None
    raw_segments = _get(record, "segments")
    if not isinstance(raw_segments, Sequence) or isinstance(raw_segments, str | bytes):
        raise _invalid_record(f"'segments' must be a list, got {type(raw_segments).__name__}")
    segments = tuple(_segment(item, f"segments[{i}]") for i, item in enumerate(raw_segments))
    return Transcript(video_no=video_no, kind=kind, segments=segments, created_at=created_at)


def csv_rows(transcript: Transcript, /) -> list[CsvRow]:
    """Return the CSV rows of a transcript, one per segment in the given order.

    Each row follows :data:`CSV_HEADER`; the text is verbatim. A transcript without segments
    has no rows.

    Raises :exc:`ValueError` if a segment time is not a finite number.
    """
    rows: list[CsvRow] = []
    for segment in transcript.segments:
        _require_finite(transcript, segment)
        rows.append(
            (
                transcript.video_no,
                transcript.kind.value,
                segment.index,
                float(segment.start),
                float(segment.end),
                segment.text,
            )
        )
    return rows


def to_csv(transcript: Transcript, /, *, header: bool) -> str:
    """Render the CSV rows of a transcript, preceded by :data:`CSV_HEADER` if *header*.

    Quoting and line endings are those the rendering rules describe; outputs can be
    concatenated into one file, with ``header=True`` for the first only. Write the result to a
    file opened with ``newline=""`` so that line endings are kept as they are.

    Raises :exc:`ValueError` if a segment time is not a finite number.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=CSV_LINE_TERMINATOR)
    if header:
        writer.writerow(CSV_HEADER)
    writer.writerows(csv_rows(transcript))
    return buffer.getvalue()


def _milliseconds(seconds: float) -> int:
    """Round a time in seconds to whole milliseconds, halves up, from its written form."""
    written = decimal.Decimal(float.__repr__(float(seconds)))
    scaled = written.scaleb(3, context=_DECIMAL_CONTEXT)
    return int(scaled.to_integral_value(rounding=decimal.ROUND_HALF_UP, context=_DECIMAL_CONTEXT))


def _clock(milliseconds: int, sep: str | None) -> str:
    """Format milliseconds as ``HH:MM:SS`` + *sep* + ``mmm``, or ``HH:MM:SS`` if *sep* is None."""
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    clock = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    return clock if sep is None else f"{clock}{sep}{millis:03d}"


def _require_finite(transcript: Transcript, segment: Segment) -> None:
    if not (math.isfinite(segment.start) and math.isfinite(segment.end)):
        raise ValueError(
            f"segment {segment.index} of video {transcript.video_no!r} has a time that is not "
            f"a finite number (start={segment.start!r}, end={segment.end!r})"
        )


def _span(transcript: Transcript, segment: Segment) -> tuple[int, int]:
    """Return a segment's cue start and end in milliseconds, clamped and lengthened."""
    _require_finite(transcript, segment)
    start = _milliseconds(max(segment.start, 0.0))
    end = _milliseconds(max(segment.end, 0.0))
    if end <= start:
        end = start + _INSTANT_CUE_MS
    return start, end


def _clean_lines(text: str) -> list[str]:
    """Split text into its non-empty lines, without control characters or outer whitespace."""
    lines = (_CONTROL_CHARACTER.sub(" ", line).strip() for line in text.splitlines())
    return [line for line in lines if line]


def _cues(transcript: Transcript) -> list[_Cue]:
    """Return the subtitle cues of a transcript: timed, cleaned, non-empty, sorted by start."""
    cues = []
    for segment in transcript.segments:
        start, end = _span(transcript, segment)
        lines = _clean_lines(segment.text)
        if lines:
            cues.append(_Cue(start, end, lines))
    cues.sort(key=lambda cue: cue.start)
    return cues


def _srt_lines(lines: list[str]) -> list[str]:
    """Make cleaned lines safe as SubRip cue text: no arrows, no line holding only a number."""
    safe: list[str] = []
    for line in lines:
        unarrowed = _ARROW.sub("->", line)
        if safe and _NUMBER_LINE.fullmatch(safe[-1]):
            safe[-1] = f"{safe[-1]} {unarrowed}"
        else:
            safe.append(unarrowed)
    return safe


def _one_line(text: str) -> str:
    """Return *text* as one line without arrows, for a WebVTT comment."""
    return _ARROW.sub("->", " ".join(_clean_lines(text)))


def _invalid_record(problem: str) -> ValueError:
    """Return the error for a malformed JSONL record; wrong types included, so one type to catch."""
    return ValueError(f"invalid jsonl record: {problem}")


def _get(mapping: Mapping[str, object], where: str) -> object:
    """Return the value at *where* (``"segments[2].start"`` reads key ``"start"``) of *mapping*."""
    try:
        return mapping[where.rpartition(".")[2]]
    except KeyError:
        raise _invalid_record(f"{where!r} is missing") from None


def _string(mapping: Mapping[str, object], where: str) -> str:
    value = _get(mapping, where)
    if not isinstance(value, str):
        raise _invalid_record(f"{where!r} must be a string, got {value!r}")
    return value


def _number(mapping: Mapping[str, object], where: str) -> float:
    value = _get(mapping, where)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid_record(f"{where!r} must be a number, got {value!r}")
    return float(value)


def _segment(item: object, where: str) -> Segment:
    if not isinstance(item, Mapping):
        raise _invalid_record(f"{where!r} must be an object, got {item!r}")
    index = _get(item, f"{where}.index")
    if type(index) is not int:
        raise _invalid_record(f"'{where}.index' must be an integer, got {index!r}")
    return Segment(
        index=index,
        start=_number(item, f"{where}.start"),
        end=_number(item, f"{where}.end"),
        text=_string(item, f"{where}.text"),
    )
