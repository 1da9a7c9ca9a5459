"""Reading video numbers: id file lines, whole files, arguments, and the stdin pump."""

from __future__ import annotations

import asyncio
import io
import os
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memories_async import TranscriptKind
from memories_async._ids import (
    MAX_LINE_BYTES,
    IdInputError,
    IdItem,
    NumberSet,
    aiter_numbers,
    aiter_stream_ids,
    check_id_arguments,
    count_distinct,
    iter_id_lines,
    parse_id_line,
)

VIDEO = "VI606041694843813888"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"VI606041694843813888\n", VIDEO),
        (b"VI606041694843813888", VIDEO),
        (b"VI606041694843813888\r\n", VIDEO),
        (b"\xef\xbb\xbfVI606041694843813888\r\n", VIDEO),
        (b"   VI606041694843813888  \t \n", VIDEO),
        # A kind in the second field: that pair (the failures file's lines).
        (b"VI606041694843813888\tvisual\t0001\t3\tAPI error\n", (VIDEO, TranscriptKind.VISUAL)),
        (b"VI606041694843813888 \taudio\n", (VIDEO, TranscriptKind.AUDIO)),
        (b"VI606041694843813888\t audio \tx\n", (VIDEO, TranscriptKind.AUDIO)),
        # Anything else there is ignored.
        (b"VI606041694843813888\tAudio\n", VIDEO),
        (b"VI606041694843813888\tboth\n", VIDEO),
        (b"VI606041694843813888\t\tvisual\n", VIDEO),
        (b"PI-590000000000000001\n", "PI-590000000000000001"),
        ("VIé-ß\n".encode(), "VIé-ß"),
        (b"\n", None),
        (b"\r\n", None),
        (b"   \t  \n", None),
        (b"# a comment\n", None),
        (b"   # an indented comment\n", None),
        (b"#VI606041694843813888\n", None),
        (b"\xef\xbb\xbf# header with a BOM\n", None),
    ],
)
def test_parse_id_line_accepts(raw: bytes, expected: IdItem | None) -> None:
    assert parse_id_line(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"VI 606041694843813888\n", "whitespace inside"),
        (b"VI606041694843813888 # trailing comment\n", "whitespace inside"),
        (b"VI6060\x0016948\n", "control"),
        (b"VI6060\x1b[31m\n", "control"),
        (b"VI\xff\xfe606\n", "not UTF-8"),
    ],
)
def test_parse_id_line_rejects(raw: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_id_line(raw)


def test_iter_id_lines_numbers_lines_and_keeps_duplicates() -> None:
    text = b"\xef\xbb\xbf# ids\r\nVI1\r\n\r\n  VI2  \r\nVI1\r\nVI3"
    assert list(iter_id_lines(io.BytesIO(text), "ids.txt")) == [
        (2, "VI1"),
        (4, "VI2"),
        (5, "VI1"),
        (6, "VI3"),
    ]


def test_iter_id_lines_reports_the_malformed_line_after_the_good_ones() -> None:
    lines = iter_id_lines(io.BytesIO(b"VI1\n# c\nVI2\nVI 3\nVI4\n"), "ids.txt")
    assert next(lines) == (1, "VI1")
    assert next(lines) == (3, "VI2")
    with pytest.raises(IdInputError) as caught:
        next(lines)
    error = caught.value
    assert (error.source, error.line) == ("ids.txt", 4)
    assert str(error) == "ids.txt line 4: whitespace inside the video number 'VI 3'"
    assert "\n" not in str(error)


def test_a_bom_after_concatenation_is_tolerated() -> None:
    text = b"\xef\xbb\xbfVI1\n\xef\xbb\xbfVI2\n"
    assert [n for _, n in iter_id_lines(io.BytesIO(text), "x")] == ["VI1", "VI2"]


def test_an_overlong_line_is_malformed_not_loaded() -> None:
    stream = io.BytesIO(b"VI1\n" + b"A" * (MAX_LINE_BYTES + 10) + b"\nVI2\n")
    lines = iter_id_lines(stream, "big.bin")
    assert next(lines) == (1, "VI1")
    with pytest.raises(IdInputError, match="line 2: line longer than"):
        next(lines)


def test_a_line_of_exactly_the_limit_is_read() -> None:
    number = "V" * (MAX_LINE_BYTES - 1)
    stream = io.BytesIO(number.encode() + b"\n")
    assert list(iter_id_lines(stream, "x")) == [(1, number)]


class _CountingStream(io.BytesIO):
    """Counts the bytes handed out, to prove that reading is lazy."""

    def __init__(self, data: bytes, *, most: int | None = None) -> None:
        super().__init__(data)
        self.bytes_read = 0
        self.most = most

    def read1(self, size: int | None = -1) -> bytes:
        if self.most is not None and size is not None and size >= 0:
            size = min(size, self.most)
        data = super().read1(size)
        self.bytes_read += len(data)
        return data


def test_iter_id_lines_reads_lazily() -> None:
    data = b"".join(f"VI{n}\n".encode() for n in range(1_000_000))
    stream = _CountingStream(data)
    lines = iter_id_lines(stream, "ids.txt")
    assert next(lines) == (1, "VI0")
    assert 0 < stream.bytes_read < len(data) / 10


_MIXED = (
    b"\xef\xbb\xbfVI1\r\n# a comment\n\n  VI2  \nVI3\taudio\tE\nVI4\tvisual\n"
    b"\xef\xbb\xbfVI5\nVI6\tnot a kind\n\xc3\xa9t\xc3\xa9\n#VI7\nVI8"
)


@pytest.mark.parametrize("most", [1, 2, 3, 5, 7, 64, None])
def test_lines_split_across_reads_are_read_as_whole_lines(most: int | None) -> None:
    # However the stream hands its bytes over (a pipe gives what it holds), each line
    # is the line parse_id_line reads, with its own number.
    expected = [
        (n, item)
        for n, raw in enumerate(_MIXED.split(b"\n"), start=1)
        if (item := parse_id_line(raw)) is not None
    ]
    assert expected[-1] == (11, "VI8")  # the last line has no line end
    assert list(iter_id_lines(_CountingStream(_MIXED, most=most), "x")) == expected


@pytest.mark.parametrize("most", [1, 3, None])
@pytest.mark.parametrize(
    ("bad", "reason"),
    [(b"VI\xff2", "not UTF-8"), (b"VI 2", "whitespace"), (b"VI\x012", "control")],
)
def test_a_malformed_line_is_named_wherever_the_reads_split(
    most: int | None, bad: bytes, reason: str
) -> None:
    stream = _CountingStream(b"VI1\n\xc3\xa9\n" + bad + b"\nVI3\n", most=most)
    lines = iter_id_lines(stream, "f")
    assert [next(lines), next(lines)] == [(1, "VI1"), (2, "\u00e9")]
    with pytest.raises(IdInputError, match=f"f line 3: .*{reason}"):
        next(lines)


def test_an_overlong_line_without_a_line_end_is_refused_before_it_is_read_whole() -> None:
    stream = _CountingStream(b"VI1\n" + b"A" * (50 * MAX_LINE_BYTES), most=MAX_LINE_BYTES // 2)
    lines = iter_id_lines(stream, "big.bin")
    assert next(lines) == (1, "VI1")
    with pytest.raises(IdInputError, match="line 2: line longer than"):
        next(lines)
    assert stream.bytes_read < 4 * MAX_LINE_BYTES


def test_an_overlong_line_of_wide_characters_is_measured_in_bytes() -> None:
    wide = "\u00e9" * (MAX_LINE_BYTES // 2 + 1)  # under the limit in characters, not in bytes
    with pytest.raises(IdInputError, match="line 1: line longer than"):
        list(iter_id_lines(io.BytesIO(wide.encode()), "x"))
    fits = "\u00e9" * (MAX_LINE_BYTES // 2)
    assert list(iter_id_lines(io.BytesIO(fits.encode()), "x")) == [(1, fits)]


def test_count_distinct_validates_the_whole_file() -> None:
    assert count_distinct(io.BytesIO(b"VI1\nVI2\nVI1\n# x\n"), "f") == {"VI1", "VI2"}
    with pytest.raises(IdInputError, match="f line 1000"):
        count_distinct(io.BytesIO(b"VI1\n" * 999 + b"bad id\n"), "f")


def test_check_id_arguments_names_the_bad_argument() -> None:
    assert check_id_arguments([" VI1 ", "VI2"]) == ["VI1", "VI2"]
    with pytest.raises(IdInputError) as caught:
        check_id_arguments(["VI1", "VI\t2"])
    assert caught.value.line == 2
    assert str(caught.value).startswith("argument line 2: ")
    with pytest.raises(IdInputError, match="empty"):
        check_id_arguments(["  "])


@pytest.mark.asyncio
async def test_aiter_numbers_yields_everything_and_lets_the_loop_run() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    numbers = [f"VI{n}" for n in range(1000)]
    assert [n async for n in aiter_numbers(numbers)] == numbers
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ticks >= 3


@pytest.mark.asyncio
async def test_aiter_stream_ids_reads_a_pipe_on_a_thread() -> None:
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as reader:

        def produce() -> None:
            with os.fdopen(write_fd, "wb") as writer:
                for n in range(3000):
                    writer.write(f"VI{n}\n".encode())
                writer.write(b"# done\n")

        producer = threading.Thread(target=produce)
        producer.start()
        got = [n async for n in aiter_stream_ids(reader, "<stdin>")]
        producer.join()
    assert got == [f"VI{n}" for n in range(3000)]


@pytest.mark.asyncio
async def test_aiter_stream_ids_raises_the_malformed_line_after_the_good_ones() -> None:
    stream = io.BytesIO(b"VI1\nVI2\nVI\x073\n")
    got = []
    with pytest.raises(IdInputError, match="<stdin> line 3: a control"):
        async for number in aiter_stream_ids(stream, "<stdin>"):
            got.append(number)
    assert got == ["VI1", "VI2"]


@pytest.mark.asyncio
async def test_aiter_stream_ids_stops_its_thread_when_left_early() -> None:
    stream = io.BytesIO(b"".join(f"VI{n}\n".encode() for n in range(5000)))
    before = {t.ident for t in threading.enumerate()}
    numbers = aiter_stream_ids(stream, "<stdin>")
    assert await anext(numbers) == "VI0"
    await numbers.aclose()
    pumps = [
        t for t in threading.enumerate() if t.name == "memories-async-ids" and t.ident not in before
    ]
    for thread in pumps:
        thread.join(timeout=10)
        assert not thread.is_alive()


def test_number_set_holds_any_number_exactly() -> None:
    numbers = NumberSet()
    for number in ["VI606041694843813888", "VI006041694843813888", "PI-590000000000000001"]:
        numbers.add(number)
    numbers.add("VI606041694843813888")
    assert len(numbers) == 3
    assert "VI606041694843813888" in numbers
    assert "VI006041694843813888" in numbers
    assert "VI06041694843813888" not in numbers  # one digit short: another number
    assert "VI6060416948438138880" not in numbers
    assert "PI-590000000000000001" in numbers
    assert "VI٦06041694843813888" not in numbers  # digits, not ASCII ones
    assert 606041694843813888 not in numbers


def test_number_set_add_new_says_whether_the_number_was_new() -> None:
    numbers = NumberSet()
    for number in ["VI606041694843813888", "PI-590000000000000001", "VI٦06041694843813888"]:
        assert numbers.add_new(number)
        assert not numbers.add_new(number)
        assert number in numbers
    assert not numbers.add_new("VI606041694843813888")
    assert numbers.add_new("VI606041694843813889")
    assert len(numbers) == 4


def test_number_set_discard() -> None:
    numbers = NumberSet()
    for number in ["VI606041694843813888", "PI-590000000000000001"]:
        numbers.add(number)
        numbers.discard(number)
        assert number not in numbers
        numbers.discard(number)  # absent: nothing happens
    assert len(numbers) == 0


_NUMBERS = st.one_of(
    st.integers(min_value=0, max_value=10**18 - 1).map(lambda n: f"VI{n:018d}"),
    st.integers(min_value=0, max_value=40).map(lambda n: f"VI{n:018d}"),  # repeats
    st.sampled_from(["PI-590000000000000001", "VI12", "VI٦06041694843813888", "x"]),
)
_OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["add", "add_new", "discard", "load"]), _NUMBERS),
    max_size=300,
)


@settings(max_examples=200, deadline=None)
@given(operations=_OPERATIONS)
def test_number_set_behaves_as_a_set(operations: list[tuple[str, str]]) -> None:
    # Merges happen every 4 new numbers here, so a short run goes through many of them.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("memories_async._ids._MERGE_AT", 4)
        numbers, model = NumberSet(), set[str]()
        for operation, number in operations:
            if operation == "add_new":
                assert numbers.add_new(number) == (number not in model)
            else:
                getattr(numbers, operation)(number)
            if operation == "discard":
                model.discard(number)
            else:
                model.add(number)
            assert len(numbers) == len(model)
        assert all(n in numbers for n in model)
