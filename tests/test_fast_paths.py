"""Every fast path of the package against its slow twin, on the same inputs.

Each fast path exists because a benchmark measured it (``docs/benchmarks.md``); each
answers a subset of the inputs and leaves the rest to a general path. The property
tested here, with Hypothesis on well-formed and damaged inputs alike, is the same for
all of them: when the fast path answers (does not hand over to the slow one), it answers
exactly what the slow path answers for the same input: same values, same types, same
sign of zero, and never a value where the slow path raises.

* converter: the inlined time rule of the hot loop against ``_to_float`` (the cattrs
  hook); the live segments of the hot loop against the cattrs converter; the JSON-line
  rows (``_live_rows``) against the segments; the JSON line of ``live_rows`` against the
  line ``render`` writes for ``structure_transcript``'s transcript;
* formats: the whole-transcript branch of ``jsonl_record`` against the segment-by-segment
  ``_checked_record``, errors included; the ASCII shortcut of a JSON line against the
  escaping of every line break orjson leaves;
* id files: the common line (a number alone) in ``iter_id_lines`` against
  ``parse_id_line``, line numbers and errors included;
* protocol: the ``"0000"`` shortcut of ``parse_response`` (HTTP 200 only) against the
  general reading (the same body with HTTP 201);
* governor: ``try_acquire`` first, then ``acquire`` (what the client does) against
  ``acquire`` alone, on virtual time: the same slot for every caller, in call order, at
  the rate;

Retries have no fast path: one loop (``_retry.Retrying``) makes every attempt of a call,
the first included (``tests/test_retry.py``).
"""

from __future__ import annotations

import asyncio
import io
import math
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from memories_async import (
    DecodeError,
    MemoriesError,
    RateGovernor,
    Segment,
    TranscriptKind,
)
from memories_async._converter import (
    LARGEST,
    _live_items,
    _live_rows,
    _live_segments,
    _structure,
    _to_float,
    live_rows,
    structure_transcript,
)
from memories_async._formats import (
    ExportFormat,
    _checked_record,
    _jsonl_line,
    jsonl_line_of_rows,
    jsonl_record,
    to_jsonl_line,
)
from memories_async._ids import IdInputError, iter_id_lines, parse_id_line
from memories_async._models import Transcript
from memories_async._protocol import parse_response
from memories_async._quota import slot_interval
from memories_async._sinks import render

from ._virtual import T0, VirtualEventLoop
from .test_converter import ASKED, json_values, millis, texts

# --- converter: one time -------------------------------------------------------------------------

# Numeric strings as a service might write them: padded with any whitespace, signs,
# exponents, underscores, and the words float() knows.
numeric_strings = st.builds(
    lambda pad, number, tail: f"{pad}{number}{tail}",
    st.text(alphabet=st.characters(categories=["Zs", "Zl", "Zp", "Cc"]), max_size=2),
    st.from_regex(r"\A[-+]?(\d{1,12}(\.\d{0,6})?|\.\d{1,6})([eE][-+]?\d{1,3})?\Z")
    | st.sampled_from(["1_000", "1__0", "nan", "-inf", "Infinity", "1e9", "-1e9", "1.0000001e9"]),
    st.text(alphabet=st.sampled_from([" ", "\t", "\n", "\u3000", "\x00", "x"]), max_size=2),
)
time_values = st.one_of(
    st.floats(),  # NaN, infinities and huge values included
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=10**308, max_value=10**400),  # float() overflows
    st.sampled_from([LARGEST, -LARGEST, math.nextafter(LARGEST, math.inf), -0.0]),
    st.booleans(),
    st.none(),
    numeric_strings,
    texts,
    st.binary(max_size=4),
    st.lists(st.integers(), max_size=1),
)


@given(value=time_values, at=st.sampled_from(["startTime", "endTime"]))
def test_the_hot_loop_reads_a_time_as_the_cattrs_hook_does(value: Any, at: str) -> None:
    item = {"index": 0, "content": "", "startTime": 0, "endTime": 0, at: value}
    fast = _live_items([item], False)
    try:
        expected = _to_float(value)
    except (TypeError, ValueError, OverflowError):
        assert fast is None  # the one field that is wrong sends it to the slow path
        return
    assert fast is not None
    ((_, start, end, _),) = fast
    got = start if at == "startTime" else end
    assert type(got) is float
    assert repr(got) == repr(expected)  # -0.0 included


# --- converter: segments -------------------------------------------------------------------------

# Values a segment field may hold on the wire, well-formed or not.
field_values = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63),
    st.booleans(),
    st.none(),
    st.floats(),
    time_values,
    texts,
    st.lists(st.integers(), max_size=2),
    st.dictionaries(texts, st.integers(), max_size=1),
)
good_values = {
    "index": st.integers(min_value=-(2**63), max_value=2**63),
    "content": texts,
    "startTime": numeric_strings | st.integers(-(10**9), 10**9) | st.floats(-1e9, 1e9),
    "endTime": numeric_strings | st.integers(-(10**9), 10**9) | st.floats(-1e9, 1e9),
}


@st.composite
def wire_item(draw: st.DrawFn) -> Any:
    """A live segment, mostly well-formed; one time in five damaged, or not a segment."""
    item: dict[str, Any] = draw(st.dictionaries(texts, field_values, max_size=2))
    for field, good in good_values.items():
        fate = draw(st.integers(0, 19))
        if fate == 0:
            continue  # missing
        item[field] = draw(field_values if fate == 1 else good)
    return draw(st.just(item) | st.just(item) | st.just(item) | json_values)


wire_items = st.lists(wire_item(), max_size=12)


def outcome(function: Any, *args: Any) -> tuple[str, Any]:
    """``("value", what function returns)``, or ``("error", its ValueError's message)``."""
    try:
        return "value", function(*args)
    except ValueError as exc:
        return "error", str(exc)


def exact(value: Any) -> str:
    """A form that tells ``1`` from ``1.0`` and ``0.0`` from ``-0.0``."""
    return repr(value)


@given(items=wire_items)
def test_live_segments_are_what_the_cattrs_converter_builds(items: list[Any]) -> None:
    fast = _live_segments(items)
    if fast is None:
        return  # handed over: structure_transcript takes the cattrs path
    slow = _structure(items, tuple[Segment, ...], "transcript", "$.transcriptions")
    assert exact(fast) == exact(slow)
    assert all(type(s) is Segment for s in fast)


@given(items=wire_items)
def test_the_rows_of_the_json_line_are_the_segments(items: list[Any]) -> None:
    segments = _live_segments(items)
    rows = _live_rows(items)
    if segments is None:
        assert rows is None
    else:
        assert exact(rows) == exact([segment._asdict() for segment in segments])


@given(
    items=wire_items,
    answered=st.sampled_from([None, ASKED, "VI625685456915968000", "", 7]),
    created=st.none() | millis,
    created_key=st.sampled_from(["createTime", "create_time"]),
    kind=st.sampled_from(TranscriptKind),
    shape=st.sampled_from(["transcriptions", "transcription"]),
)
def test_the_json_line_of_live_rows_is_the_line_of_the_transcript(
    items: list[Any],
    answered: Any,
    created: int | None,
    created_key: str,
    kind: TranscriptKind,
    shape: str,
) -> None:
    data: dict[str, Any] = {shape: items}
    if answered is not None:
        data["videoNo"] = answered
    if created is not None:
        data[created_key] = created
    fast = live_rows(data, video_no=ASKED)
    try:
        transcript = structure_transcript(data, video_no=ASKED, kind=kind)
    except DecodeError:
        assert fast is None  # the slow path raises the error that names the field
        return
    if fast is None:
        return
    number, rows = fast
    assert number == transcript.video_no
    assert (not rows) == transcript.is_empty
    assert jsonl_line_of_rows(number, kind, rows) == render(transcript, ExportFormat.JSONL)


def test_the_fast_paths_answer_the_common_answer() -> None:
    # Not a test that cannot fail: the properties above hold vacuously if the fast paths
    # never answer; here they must.
    items = [{"index": 0, "content": " hi", "startTime": "1", "endTime": "2"}]
    assert _live_segments(items) == (Segment(0, 1.0, 2.0, " hi"),)
    assert live_rows({"transcriptions": items}, video_no=ASKED) == (
        ASKED,
        [{"index": 0, "start": 1.0, "end": 2.0, "text": " hi"}],
    )


# --- formats -------------------------------------------------------------------------------------

any_times = st.one_of(
    st.floats(),
    st.floats(min_value=-1e6, max_value=1e6),
    st.integers(-(10**6), 10**6),
    st.sampled_from([1e308, -1e308, -0.0]),  # two of them overflow a sum
)


@st.composite
def any_transcripts(draw: st.DrawFn) -> Transcript:
    """Transcripts as a user may build them: times as floats, integers, NaN, anything."""
    same = draw(st.booleans())  # mostly all floats, the fast branch
    times = st.floats(-1e6, 1e6) if same else any_times
    segments = draw(
        st.lists(st.builds(Segment, st.integers(-5, 10**6), times, times, texts), max_size=8)
    )
    return Transcript(
        video_no=draw(st.sampled_from([ASKED, "PI-1"]) | texts),
        kind=draw(st.sampled_from(TranscriptKind)),
        segments=tuple(segments),
        created_at=draw(st.none() | st.datetimes()),
    )


@given(transcript=any_transcripts())
def test_the_jsonl_record_of_a_whole_transcript_is_that_of_each_segment(
    transcript: Transcript,
) -> None:
    slow = outcome(_checked_record, transcript)
    assert exact(outcome(jsonl_record, transcript)) == exact(slow)  # errors included
    if slow[0] == "value":
        assert to_jsonl_line(transcript) == _jsonl_line(slow[1])


# Pieces whose UTF-8 holds the bytes E2 or 85, escaped or not (U+2028, U+2029, NEL; the
# euro sign, U+0105), and any text around them.
line_break_texts = st.lists(
    st.sampled_from(["\u2028", "\u2029", "\x85", "\u20ac", "\u0105", "a"])
    | st.text(st.characters(codec="utf-8"), max_size=3),
    max_size=6,
).map("".join)


@given(texts=st.lists(line_break_texts, max_size=4))
def test_the_ascii_shortcut_of_a_json_line_escapes_as_the_general_path(texts: list[str]) -> None:
    # The general path: every line break orjson leaves as it is, escaped; the shortcut
    # skips the replacements for an ASCII line and for a line without the bytes E2 or 85.
    record = {"segments": [{"text": text} for text in texts]}
    general = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
    for char in ("\u2028", "\u2029", "\x85"):
        general = general.replace(char.encode(), f"\\u{ord(char):04x}".encode())
    assert _jsonl_line(record) == general


# --- id files ------------------------------------------------------------------------------------

line_texts = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8", exclude_characters="\n"),
        st.sampled_from(["\t", " ", "#", "\ufeff", "\r", "V", "I", "0", "9", "-", "\x00", "\x85"]),
    ),
    max_size=30,
).map(lambda text: text.encode("utf-8"))
id_lines = st.one_of(
    line_texts,
    st.sampled_from([b"VI606041694843813888", b"PI-1", b"  VI1\r", b"VI1\taudio", b"#VI1"]),
    st.binary(max_size=8).map(lambda raw: raw.replace(b"\n", b"")),  # not UTF-8, often
)


@given(lines=st.lists(id_lines, max_size=10), last_ends=st.booleans())
def test_the_common_line_of_an_id_file_reads_as_parse_id_line_reads_it(
    lines: list[bytes], last_ends: bool
) -> None:
    expected: list[tuple[int, Any]] = []
    error: tuple[int, str] | None = None
    for number, raw in enumerate(lines, start=1):
        try:
            item = parse_id_line(raw)
        except ValueError as exc:
            error = (number, str(exc))
            break
        if item is not None:
            expected.append((number, item))
    block = b"\n".join(lines) + (b"\n" if last_ends and lines else b"")

    got: list[tuple[int, Any]] = []
    failed: tuple[int | None, str] | None = None
    try:
        got.extend(iter_id_lines(io.BytesIO(block), "ids.txt"))
    except IdInputError as exc:
        failed = (exc.line, exc.reason)
    assert (got, failed) == (expected, error)


# --- protocol ------------------------------------------------------------------------------------

codes = st.sampled_from(["0000", " 0000 ", 0, "0429", "9999", None, True, "0001"])


@given(
    code=codes,
    data=json_values,
    extra=st.dictionaries(st.sampled_from(["msg", "success", "x"]), json_values, max_size=2),
)
def test_the_success_shortcut_of_parse_response_reads_as_the_general_path(
    code: Any, data: Any, extra: dict[str, Any]
) -> None:
    # The shortcut takes HTTP 200 only: 201 takes the general path with the same body.
    body = orjson.dumps({**extra, "code": code, "data": data})
    outcomes = []
    for status in (200, 201):
        try:
            outcomes.append(("data", parse_response(status, {}, body, endpoint="e")))
        except MemoriesError as exc:
            outcomes.append((type(exc).__name__, exc.message))
    assert exact(outcomes[0]) == exact(outcomes[1])


# --- governor ------------------------------------------------------------------------------------

RATES = [1.0, 5.0, 50.0, 250.0]  # 250/s: slots within the slack are taken at once


@st.composite
def schedules(draw: st.DrawFn) -> tuple[float, int, list[tuple[float, bool, float]]]:
    """A rate, a burst, and callers: (seconds after the previous one, try_acquire first,
    a pause of the server asked for in between, 0 for none)."""
    rate = draw(st.sampled_from(RATES))
    interval = slot_interval(rate)
    gaps = st.one_of(
        st.just(0.0),
        st.floats(1e-6, 3 * interval),  # 0 above, and apart enough to move the clock
        st.integers(0, 6).map(lambda n: n * interval / 2),  # on slots, and halfway
    )
    pauses = st.just(0.0) | st.floats(0, 2 * interval)
    callers = draw(st.lists(st.tuples(gaps, st.booleans(), pauses), min_size=1, max_size=25))
    return rate, draw(st.integers(1, 3)), callers


def grants(
    rate: float, burst: int, callers: list[tuple[float, bool, float]], *, fast: bool
) -> list[float]:
    """The time each caller is given its slot, in call order, on virtual time; with
    ``fast``, the callers marked so try :meth:`try_acquire` before :meth:`acquire`."""
    loop = VirtualEventLoop()
    try:
        gov = RateGovernor(rate=rate, burst=burst, adaptive=False, clock=loop.time)
        granted: list[float] = [math.nan] * len(callers)

        async def caller(k: int, first: bool) -> None:
            sent = gov.try_acquire() if first else None
            granted[k] = sent if sent is not None else await gov.acquire()

        async def main() -> None:
            tasks = []
            for k, (gap, first, pause) in enumerate(callers):
                if pause and gap:
                    # Between two calls, never at the instant of one: acquire() takes its
                    # slot on the pacer's turn, one turn of the loop after the call, so a
                    # pause set in that same instant holds it and not try_acquire().
                    await asyncio.sleep(gap / 3)
                    gov.pause(pause)
                    await asyncio.sleep(gap - gap / 3)
                elif gap:
                    await asyncio.sleep(gap)
                # else: called in the same turn of the loop as the one before
                tasks.append(asyncio.create_task(caller(k, fast and first)))
            await asyncio.gather(*tasks)

        loop.run_until_complete(main())
        return granted
    finally:
        loop.close()


@given(schedule=schedules())
def test_try_acquire_grants_the_slots_acquire_alone_grants(
    schedule: tuple[float, int, list[tuple[float, bool, float]]],
) -> None:
    rate, burst, callers = schedule
    alone = grants(rate, burst, callers, fast=False)
    mixed = grants(rate, burst, callers, fast=True)
    assert mixed == alone
    # First come, first served, at the rate: in call order, and never more than the
    # burst plus one slot per interval in any span of time.
    assert mixed == sorted(mixed)
    interval = slot_interval(rate)
    slack = 0.001 if interval < 0.01 else 0.0
    for i in range(len(mixed)):
        for j in range(i + burst, len(mixed)):
            span = mixed[j] - mixed[i]
            assert j - i <= burst - 1 + (span + slack) / interval + 1e-6


def test_try_acquire_answers_when_a_slot_is_free() -> None:
    # The property above holds vacuously if try_acquire never answers.
    assert grants(5.0, 1, [(0.0, True, 0.0), (1.0, True, 0.0)], fast=True) == [T0, T0 + 1.0]
