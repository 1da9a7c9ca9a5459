"""Reading the video numbers of an export: id files, standard input, command-line arguments.

An id file holds one video number per line, UTF-8::

    # comments and blank lines are skipped
    VI606041694843813888
      VI606041694843813889      surrounding whitespace is ignored
    VI606041694843813890<TAB>audio<TAB>a kind in the second field: that pair only
    VI606041694843813891<TAB>anything else after the first TAB is ignored

A UTF-8 byte order mark at the start of a line (the first, or the first of each file
``cat`` joined) and ``\\r\\n`` line ends are accepted, so files
saved by Windows editors read as they look. The first TAB-separated field is the number; a
second field that names a kind (``visual`` or ``audio``) makes the line that one (video,
kind) pair, whatever kinds the export was asked for. That makes the failures file of an
export (``video_no<TAB>kind<TAB>code...``) a valid id file: pass it back to ``--ids`` to
retry exactly the pairs that failed. A number must hold no whitespace or control
character; a line breaking that rule, a line that is not UTF-8 and a line longer than
:data:`MAX_LINE_BYTES` raise :class:`IdInputError` naming the line.

Files are read lazily, one line at a time: a ten-million-line file costs the memory of the set
of distinct numbers the export keeps to drop duplicates, not of its text. Standard input is
read on a background thread so a slow producer (or a terminal) never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import os
import threading
from array import array
from collections.abc import AsyncGenerator, Generator, Iterable, Iterator
from typing import IO, Any

from ._errors import InvalidVideoNumberError
from ._models import TranscriptKind
from ._protocol import check_video_no, is_video_no

IdItem = str | tuple[str, TranscriptKind]
"""What a line of an id file stands for: a video number (every kind the export asks
for) or one (video number, kind) pair."""

_KINDS = {kind.value: kind for kind in TranscriptKind}

MAX_LINE_BYTES = 64 * 1024
"""Longest line an id file may hold; a longer one is not a list of video numbers."""

_BOM_CHAR = "\ufeff"
_COMMENT = "#"
"""What starts a comment line."""
_BLOCK_BYTES = 256 * 1024
_TOO_LONG = f"line longer than {MAX_LINE_BYTES} bytes"
_SURELY_SHORT = MAX_LINE_BYTES // 4  # characters: at most 4 UTF-8 bytes each
_YIELD_EVERY = 256
_PUMP_WINDOW = 1024


class NumberSet:
    """A set of video numbers, compact where it grows with the work and fast where it is
    looked up most.

    The service's numbers are ``VI`` and 18 digits: those are kept as integers (exactly:
    the digits have a fixed width), any other number as its string. Numbers added as an
    export runs live in a sorted ``array`` of 8 bytes each, looked up by bisection; the
    newest in a small set beside it, merged into the array whenever that set holds a
    quarter as many (at least :data:`_MERGE_AT`), so a run of adds costs a constant time
    each, amortised. Numbers :meth:`load`-ed from a ledger when an export resumes live in
    a plain set of integers (about 60 bytes each, a tenth of a microsecond to look up):
    every number of the input is looked up there, twice. What an export keeps to resume
    and to drop repeats is one of these per kind.
    """

    __slots__ = ("_loaded", "_other", "_recent", "_sorted")

    def __init__(self) -> None:
        self._loaded: set[int] = set()
        self._sorted = array("q")
        self._recent: set[int] = set()
        self._other: set[str] = set()

    @staticmethod
    def _pack(number: str) -> int | None:
        digits = number[2:]
        if len(number) == 20 and number.startswith("VI") and digits.isascii() and digits.isdigit():
            return int(digits)
        return None

    def _has(self, packed: int) -> bool:
        if packed in self._loaded or packed in self._recent:
            return True
        numbers = self._sorted
        if not numbers:
            return False
        at = bisect.bisect_left(numbers, packed)
        return at < len(numbers) and numbers[at] == packed

    def _add_packed(self, packed: int) -> None:
        recent = self._recent
        recent.add(packed)
        if len(recent) >= _MERGE_AT and len(recent) >= len(self._sorted) >> 2:
            # One pass over both, one number at a time: no list of every number.
            self._sorted = array("q", heapq.merge(self._sorted, sorted(recent)))
            self._recent = set()

    def add(self, number: str, /) -> None:
        """Add a number."""
        self.add_new(number)

    def add_new(self, number: str, /) -> bool:
        """Add a number; return whether it was new (``in`` and :meth:`add` in one step)."""
        packed = self._pack(number)
        if packed is None:
            if number in self._other:
                return False
            self._other.add(number)
            return True
        if self._has(packed):
            return False
        self._add_packed(packed)
        return True

    def load(self, number: str, /) -> None:
        """Add a number read from a ledger, where lookups are fast (see the class)."""
        packed = self._pack(number)
        if packed is None:
            self._other.add(number)
        elif not (self._recent or self._sorted) or not self._has(packed):
            self._loaded.add(packed)

    def discard(self, number: str, /) -> None:
        """Remove a number if present."""
        packed = self._pack(number)
        if packed is None:
            self._other.discard(number)
        elif packed in self._loaded:
            self._loaded.discard(packed)
        elif packed in self._recent:
            self._recent.discard(packed)
        else:
            numbers = self._sorted
            at = bisect.bisect_left(numbers, packed)
            if at < len(numbers) and numbers[at] == packed:
                del numbers[at]

    def __contains__(self, number: object, /) -> bool:
        if not isinstance(number, str):
            return False
        packed = self._pack(number)
        return number in self._other if packed is None else self._has(packed)

    def __len__(self) -> int:
        return len(self._loaded) + len(self._sorted) + len(self._recent) + len(self._other)


_MERGE_AT = 16_384
"""The fewest new numbers a :class:`NumberSet` merges into its array at once."""


class IdInputError(ValueError):
    """A line of an id file, or an argument, is not a video number.

    ``source`` names the file (``"<stdin>"`` for standard input, ``"argument"`` for the
    command line), ``line`` is the 1-based line or argument number and ``reason`` says what
    is wrong. ``str()`` is one line: ``ids.txt line 12: whitespace inside 'VI 12'``.
    """

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        where = source if line is None else f"{source} line {line}"
        super().__init__(f"{where}: {reason}")
        self.source = source
        self.line = line
        self.reason = reason


def parse_id_line(raw: bytes, /) -> IdItem | None:
    """Return what a line of an id file holds, or ``None`` for a blank line or a comment.

    That is the video number, or a ``(number, kind)`` pair when the second TAB-separated
    field names a kind. ``raw`` is one line as read from the file, with or without its
    line end; a leading byte order mark is dropped. Raises :class:`ValueError` with the
    reason when the line is not UTF-8 or its first field is not a valid video number.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    return _parse_text(text)


def _parse_text(text: str) -> IdItem | None:
    """:func:`parse_id_line` of a line already decoded."""
    if text.startswith(_BOM_CHAR):
        text = text[1:]
    text = text.strip()
    if not text or text[0] == _COMMENT:
        return None
    fields = text.split("\t", 2)
    field = fields[0]
    try:
        number = check_video_no(field)
    except InvalidVideoNumberError:
        number = field.strip()
        if any(c.isspace() for c in number):
            raise ValueError(f"whitespace inside the video number {number!r}") from None
        raise ValueError(f"a control or unprintable character in {number!r}") from None
    kind = _KINDS.get(fields[1].strip()) if len(fields) > 1 else None
    return number if kind is None else (number, kind)


def iter_id_lines(stream: IO[bytes], name: str, /) -> Iterator[tuple[int, IdItem]]:
    """Yield ``(line number, item)`` for every number (or pair) of an id file, lazily.

    Blank lines and ``#`` comments are skipped; duplicates are kept (the export drops them).
    Raises :class:`IdInputError` at the first malformed line, after yielding the numbers
    before it.

    The stream is read in blocks of at most :data:`_BLOCK_BYTES` (with ``read1`` when it
    has one, so a pipe hands over what it holds without waiting for a whole block), and
    the complete lines of each block are decoded and split at once: a million-line file
    is read in a fraction of a second, in memory bounded by the block.
    """
    read = getattr(stream, "read1", None) or stream.read
    line_no = 0
    carry = b""
    while True:
        data = read(_BLOCK_BYTES)
        end = data.rfind(b"\n") + 1 if data else len(data)
        if data and not end:  # no line ends here: keep it for the next block
            carry += data
            if len(carry) > MAX_LINE_BYTES:
                raise IdInputError(name, line_no + 1, _TOO_LONG)
            continue
        block = carry + data[:end] if data else carry
        carry = data[end:]
        if block:
            line_no = yield from _block_items(block, name, line_no)
        if not data:
            return


def _block_items(block: bytes, name: str, line_no: int) -> Generator[tuple[int, IdItem], None, int]:
    """Yield the ``(line number, item)`` of each line of ``block``, which holds whole lines
    (the last may lack its line end), numbered after ``line_no``; return the last number."""
    try:
        lines = block.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        # Line by line, to name the line that is not UTF-8.
        lines = [raw.decode("utf-8", "surrogateescape") for raw in block.split(b"\n")]
    if block.endswith(b"\n"):
        lines.pop()
    comment = _COMMENT
    for line in lines:
        line_no += 1
        text = line.strip()
        # The common line: a short number alone (no TAB, space, control character, BOM),
        # what parse_id_line() would return for it (a Hypothesis test holds the two
        # equal on lines of any characters).
        if len(line) <= _SURELY_SHORT and is_video_no(text) and text[0] != comment:
            yield line_no, text
            continue
        raw = line.encode("utf-8", "surrogateescape")
        if len(raw) > MAX_LINE_BYTES:
            raise IdInputError(name, line_no, _TOO_LONG)
        try:
            item = parse_id_line(raw)
        except ValueError as exc:
            raise IdInputError(name, line_no, str(exc)) from None
        if item is not None:
            yield line_no, item
    return line_no


def check_id_arguments(values: Iterable[str], /) -> list[str]:
    """Validate video numbers given as command-line arguments; return them stripped.

    Raises :class:`IdInputError` naming the first bad argument (1-based).
    """
    numbers = []
    for position, value in enumerate(values, start=1):
        try:
            numbers.append(check_video_no(value))
        except InvalidVideoNumberError as exc:
            raise IdInputError("argument", position, exc.message) from None
    return numbers


def count_distinct(stream: IO[bytes], name: str, /) -> set[IdItem]:
    """Read a whole id file, validating every line, and return its distinct items.

    This is the cheap first pass an export makes over a regular file before any request:
    it finds a malformed line up front and gives the progress display its total. Raises
    :class:`IdInputError` at the first malformed line.
    """
    return {item for _line, item in iter_id_lines(stream, name)}


async def aiter_numbers(numbers: Iterable[IdItem], /) -> AsyncGenerator[IdItem, None]:
    """Yield items from a synchronous iterable, letting the event loop run now and then.

    For in-memory lists and regular files, whose reads never block for long.
    """
    for count, number in enumerate(numbers, start=1):
        yield number
        if count % _YIELD_EVERY == 0:
            await asyncio.sleep(0)


class _FdReader:
    """``read1`` on a file descriptor, with ``os.read``: nothing but the descriptor."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def read1(self, size: int = -1) -> bytes:
        return os.read(self.fd, size if size > 0 else _BLOCK_BYTES)

    read = read1


def _raw_reader(stream: IO[bytes]) -> tuple[Any, int | None]:
    """What the pump reads: a duplicate of ``stream``'s descriptor (returned too, to be
    closed) when it has one, else ``stream`` itself (an in-memory stream never blocks).
    ``stream`` must not have been read from: what a buffered stream read ahead would be
    skipped."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return stream, None
    own = os.dup(fd)
    return _FdReader(own), own


async def aiter_stream_ids(stream: IO[bytes], name: str, /) -> AsyncGenerator[IdItem, None]:
    """Yield the items of a stream that may block (a pipe, a terminal), lazily.

    A daemon thread reads the stream and hands numbers to the event loop, at most
    :data:`_PUMP_WINDOW` ahead of the consumer, so a slow producer never blocks the loop and
    an interrupted export never waits for a read to return. Raises :class:`IdInputError` at
    the first malformed line, after yielding the numbers before it.

    The thread reads a duplicate of the stream's file descriptor with ``os.read``, never
    the stream object: a read blocked on a FIFO whose writer stays open (or on a terminal)
    then holds no lock of the stream's, so closing the stream, or the interpreter's exit,
    never waits for it (a buffered stream's lock held by a blocked reader hung the exit, or
    made it abort with "_enter_buffered_busy").
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    room = threading.Semaphore(_PUMP_WINDOW)
    stopped = threading.Event()

    def hand_over(tag: str, value: Any) -> bool:
        room.acquire()
        if stopped.is_set():
            return False
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (tag, value))
        except RuntimeError:  # the loop is closed: nobody is listening any more
            return False
        return True

    source, own_fd = _raw_reader(stream)

    def pump() -> None:
        try:
            for _line, item in iter_id_lines(source, name):
                if not hand_over("id", item):
                    return
        except Exception as exc:
            hand_over("error", exc)
        else:
            hand_over("end", None)
        finally:
            if own_fd is not None:
                os.close(own_fd)  # here, by the only thread that reads it

    thread = threading.Thread(target=pump, name="memories-async-ids", daemon=True)
    thread.start()
    try:
        while True:
            tag, value = await queue.get()
            room.release()
            if tag == "id":
                yield value
            elif tag == "error":
                raise value
            else:
                return
    finally:
        stopped.set()
        room.release()  # wake a pump waiting for room, so it sees the stop
